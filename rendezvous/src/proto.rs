//! The wire protocol: length-prefixed, versioned binary frames.
//!
//! Every frame starts with a fixed 16-byte header:
//!
//! | bytes | field                                   |
//! |-------|-----------------------------------------|
//! | 0..4  | magic `EXRL`                            |
//! | 4     | protocol version ([`VERSION`])          |
//! | 5     | frame kind ([`Kind`])                   |
//! | 6..8  | metadata length, big endian (≤ [`MAX_META`]) |
//! | 8..16 | payload length, big endian              |
//!
//! then `meta_len` bytes of metadata (the typed fields of the message) and
//! `payload_len` bytes of opaque payload (the mailbox contents of a put or
//! of a get's answer).
//!
//! Parsing is two-phase, as in mini-redis: [`FrameHeader::check`] validates
//! the header alone — magic, version, kind and both lengths against the
//! receiver's limits — so an oversized frame is refused before a single
//! byte of its body is read; only then is the metadata parsed
//! ([`Request::parse`], [`Response::parse`]). Nothing here panics on
//! untrusted input; a fuzz target and a property test hold it to that.
//!
//! One QUIC connection carries one authenticated job; each operation uses
//! its own bidirectional stream: the client writes one request frame and
//! finishes, the relay answers with one response frame. A put is the one
//! exception: the client sends the header and metadata, waits for an
//! interim [`Status::Continue`] (the relay has reserved memory for the
//! body), and only then sends the body. A put that must wait for memory
//! thus waits as a header, not as a body parked in the relay's buffers.

use std::time::Duration;

use thiserror::Error;

/// The four magic bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"EXRL";
/// The protocol version this build speaks; a peer speaking another is refused.
pub const VERSION: u8 = 1;
/// Length of the fixed frame header.
pub const HEADER_LEN: usize = 16;
/// Largest metadata section accepted, so metadata can be read into memory
/// without further checks.
pub const MAX_META: usize = 1024;
/// Longest mailbox name, in bytes.
pub const MAX_MAILBOX_LEN: usize = 255;
/// Longest job id, in bytes.
pub const MAX_JOB_LEN: usize = 128;
/// Longest token, in bytes (a hex HMAC-SHA-256 is 64).
pub const MAX_TOKEN_LEN: usize = 128;
/// Longest human-readable message in a response.
pub const MAX_MESSAGE_LEN: usize = 512;

/// ALPN protocol id negotiated by relay and clients.
pub const ALPN: &[u8] = b"excam-relay/1";

/// QUIC application close codes used on whole connections.
pub mod close {
    /// Normal close by the client.
    pub const DONE: u32 = 0;
    /// The job token did not verify; the client should not retry.
    pub const AUTH_FAILED: u32 = 1;
    /// The peer broke the protocol (bad frame, no hello in time).
    pub const PROTOCOL: u32 = 2;
    /// The relay is shutting down; clients reconnect and retry.
    pub const SHUTDOWN: u32 = 3;
    /// The relay holds its maximum number of connections.
    pub const CONNECTION_LIMIT: u32 = 4;
    /// Stream stop code: the relay refused the request before reading its body.
    pub const REFUSED: u32 = 5;
}

/// Kinds of frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// First request on a connection: job id and token.
    Hello = 1,
    /// Fill a mailbox; the payload is the contents.
    Put = 2,
    /// Wait for a mailbox and read it.
    Get = 3,
    /// Drop every mailbox of the job.
    EndJob = 4,
    /// The relay's answer to any request.
    Response = 0x80,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Put,
            3 => Kind::Get,
            4 => Kind::EndJob,
            0x80 => Kind::Response,
            _ => return None,
        })
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    /// The frame does not start with [`MAGIC`].
    #[error("not an excam relay frame (bad magic)")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {0} (this build speaks {VERSION})")]
    BadVersion(u8),
    /// The kind byte names no known frame.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// The metadata section is longer than [`MAX_META`].
    #[error("metadata of {0} bytes exceeds the limit of {MAX_META}")]
    MetaTooLarge(usize),
    /// The payload is longer than the receiver accepts.
    #[error("payload of {len} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Length the header claims.
        len: u64,
        /// Largest payload the receiver accepts.
        limit: u64,
    },
    /// A frame of this kind may not carry a payload.
    #[error("a {0:?} frame carries no payload")]
    UnexpectedPayload(Kind),
    /// The metadata ended before a field did.
    #[error("metadata truncated")]
    Truncated,
    /// The metadata has bytes after its last field.
    #[error("{0} stray bytes after the metadata")]
    TrailingBytes(usize),
    /// A text field is empty, too long, not UTF-8 or holds control characters.
    #[error("invalid {0}")]
    BadText(&'static str),
    /// The status byte of a response names no known status.
    #[error("unknown status {0}")]
    UnknownStatus(u8),
    /// A response arrived where a request was expected, or the reverse.
    #[error("unexpected {0:?} frame")]
    UnexpectedKind(Kind),
}

/// A checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the frame carries.
    pub kind: Kind,
    /// Length of the metadata that follows the header.
    pub meta_len: u16,
    /// Length of the payload that follows the metadata.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Serialises the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = self.kind as u8;
        out[6..8].copy_from_slice(&self.meta_len.to_be_bytes());
        out[8..16].copy_from_slice(&self.payload_len.to_be_bytes());
        out
    }

    /// Phase one: validates a header before anything after it is read.
    ///
    /// `max_payload` is the largest payload the receiver will take; frames
    /// that cannot carry a payload must declare none.
    ///
    /// # Errors
    /// Any [`ProtoError`] about magic, version, kind or lengths.
    pub fn check(buf: &[u8; HEADER_LEN], max_payload: u64) -> Result<FrameHeader, ProtoError> {
        if buf[0..4] != MAGIC {
            return Err(ProtoError::BadMagic);
        }
        if buf[4] != VERSION {
            return Err(ProtoError::BadVersion(buf[4]));
        }
        let kind = Kind::from_u8(buf[5]).ok_or(ProtoError::UnknownKind(buf[5]))?;
        let meta_len = u16::from_be_bytes([buf[6], buf[7]]);
        if usize::from(meta_len) > MAX_META {
            return Err(ProtoError::MetaTooLarge(meta_len.into()));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&buf[8..16]);
        let payload_len = u64::from_be_bytes(len);
        let may_carry = matches!(kind, Kind::Put | Kind::Response);
        if payload_len > 0 && !may_carry {
            return Err(ProtoError::UnexpectedPayload(kind));
        }
        if payload_len > max_payload {
            return Err(ProtoError::PayloadTooLarge {
                len: payload_len,
                limit: max_payload,
            });
        }
        Ok(FrameHeader {
            kind,
            meta_len,
            payload_len,
        })
    }
}

/// A request from a client. The payload of a put travels after the frame's
/// metadata and is not part of this value. Its `Debug` output hides a
/// hello's token: requests end up in logs and error messages, and a token
/// lets its holder read, fill and end the job's mailboxes.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Authenticates the connection for one job.
    Hello {
        /// The job id the token was minted for.
        job: String,
        /// Hex HMAC-SHA-256 of the job id under the relay's secret.
        token: String,
    },
    /// Fills a mailbox with the frame's payload.
    Put {
        /// Mailbox name within the job.
        mailbox: String,
        /// How long the relay may wait for memory before answering `RelayFull`.
        timeout: Duration,
    },
    /// Waits for a mailbox to be filled and returns its contents.
    Get {
        /// Mailbox name within the job.
        mailbox: String,
        /// How long the relay waits before answering `Timeout`.
        timeout: Duration,
    },
    /// Ends the job: all its mailboxes are dropped and its waiters released.
    EndJob,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Hello { job, token: _ } => f
                .debug_struct("Hello")
                .field("job", job)
                .field("token", &"<hidden>")
                .finish(),
            Request::Put { mailbox, timeout } => f
                .debug_struct("Put")
                .field("mailbox", mailbox)
                .field("timeout", timeout)
                .finish(),
            Request::Get { mailbox, timeout } => f
                .debug_struct("Get")
                .field("mailbox", mailbox)
                .field("timeout", timeout)
                .finish(),
            Request::EndJob => f.write_str("EndJob"),
        }
    }
}

/// Outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// Done; a get's answer carries the contents as payload.
    Ok = 0,
    /// The mailbox was filled once but has been dropped (memory or TTL).
    Evicted = 1,
    /// The mailbox was not filled within the get's timeout.
    Timeout = 2,
    /// A put brought bytes different from what the mailbox holds.
    Conflict = 3,
    /// The put is larger than the relay's message limit.
    TooLarge = 4,
    /// No memory became free within the put's timeout.
    RelayFull = 5,
    /// The job has ended.
    JobEnded = 6,
    /// A count limit (jobs, mailboxes) is reached.
    LimitReached = 7,
    /// The request was malformed.
    BadRequest = 8,
    /// The relay is shutting down; retry after reconnecting.
    ShuttingDown = 9,
    /// Interim answer to a put: memory is reserved, send the body. A
    /// final answer follows on the same stream.
    Continue = 10,
}

impl Status {
    fn from_u8(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Ok,
            1 => Status::Evicted,
            2 => Status::Timeout,
            3 => Status::Conflict,
            4 => Status::TooLarge,
            5 => Status::RelayFull,
            6 => Status::JobEnded,
            7 => Status::LimitReached,
            8 => Status::BadRequest,
            9 => Status::ShuttingDown,
            10 => Status::Continue,
            _ => return None,
        })
    }
}

/// The relay's answer; a get's contents follow as payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Outcome.
    pub status: Status,
    /// Human-readable detail, possibly empty.
    pub message: String,
}

/// A cursor over metadata that fails instead of panicking.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.buf.len() < n {
            return Err(ProtoError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ProtoError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ProtoError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A text field prefixed by its length as a u8.
    fn short_text(&mut self, what: &'static str, max: usize) -> Result<String, ProtoError> {
        let len = usize::from(self.u8()?);
        let bytes = self.take(len)?;
        text(bytes, what, max, false)
    }

    fn finish(self) -> Result<(), ProtoError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::TrailingBytes(self.buf.len()))
        }
    }
}

fn text(
    bytes: &[u8],
    what: &'static str,
    max: usize,
    may_be_empty: bool,
) -> Result<String, ProtoError> {
    if (bytes.is_empty() && !may_be_empty) || bytes.len() > max {
        return Err(ProtoError::BadText(what));
    }
    let s = std::str::from_utf8(bytes).map_err(|_| ProtoError::BadText(what))?;
    if s.chars().any(char::is_control) {
        return Err(ProtoError::BadText(what));
    }
    Ok(s.to_owned())
}

/// Checks a mailbox name the way the relay will: 1..=255 bytes of UTF-8
/// without control characters.
///
/// # Errors
/// [`ProtoError::BadText`] when the name is not acceptable.
pub fn check_mailbox(name: &str) -> Result<(), ProtoError> {
    text(name.as_bytes(), "mailbox name", MAX_MAILBOX_LEN, false).map(drop)
}

/// Checks a job id: 1..=128 bytes of UTF-8 without control characters.
///
/// # Errors
/// [`ProtoError::BadText`] when the id is not acceptable.
pub fn check_job(job: &str) -> Result<(), ProtoError> {
    text(job.as_bytes(), "job id", MAX_JOB_LEN, false).map(drop)
}

fn put_short(out: &mut Vec<u8>, s: &str) {
    // Callers validate lengths first; truncating here would corrupt, so clamp
    // defensively and let the peer's parser refuse.
    let len = u8::try_from(s.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

/// Whole milliseconds, rounded up so a waiter never gives up early.
fn timeout_ms(d: Duration) -> u32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u32::try_from(ms).unwrap_or(u32::MAX)
}

impl Request {
    /// The frame kind this request travels in.
    pub fn kind(&self) -> Kind {
        match self {
            Request::Hello { .. } => Kind::Hello,
            Request::Put { .. } => Kind::Put,
            Request::Get { .. } => Kind::Get,
            Request::EndJob => Kind::EndJob,
        }
    }

    /// Serialises header and metadata; a put's payload of `payload_len`
    /// bytes must follow. Timeouts are carried in whole milliseconds,
    /// rounded up and saturating at about 49 days.
    pub fn encode(&self, payload_len: u64) -> Vec<u8> {
        let mut meta = Vec::new();
        match self {
            Request::Hello { job, token } => {
                put_short(&mut meta, job);
                put_short(&mut meta, token);
            }
            Request::Put { mailbox, timeout } | Request::Get { mailbox, timeout } => {
                meta.extend_from_slice(&timeout_ms(*timeout).to_be_bytes());
                put_short(&mut meta, mailbox);
            }
            Request::EndJob => {}
        }
        let header = FrameHeader {
            kind: self.kind(),
            meta_len: meta.len() as u16, // at most 1 + 255 + 1 + 255 bytes
            payload_len,
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(&meta);
        out
    }

    /// Phase two: parses the metadata of a frame whose header passed
    /// [`FrameHeader::check`].
    ///
    /// # Errors
    /// A [`ProtoError`] for truncated, trailing or invalid fields.
    pub fn parse(header: &FrameHeader, meta: &[u8]) -> Result<Request, ProtoError> {
        let mut c = Cursor { buf: meta };
        let req = match header.kind {
            Kind::Hello => Request::Hello {
                job: c.short_text("job id", MAX_JOB_LEN)?,
                token: c.short_text("token", MAX_TOKEN_LEN)?,
            },
            Kind::Put | Kind::Get => {
                let timeout = Duration::from_millis(c.u32()?.into());
                let mailbox = c.short_text("mailbox name", MAX_MAILBOX_LEN)?;
                if header.kind == Kind::Put {
                    Request::Put { mailbox, timeout }
                } else {
                    Request::Get { mailbox, timeout }
                }
            }
            Kind::EndJob => Request::EndJob,
            Kind::Response => return Err(ProtoError::UnexpectedKind(Kind::Response)),
        };
        c.finish()?;
        Ok(req)
    }
}

impl Response {
    /// A response with a status and no message.
    pub fn status(status: Status) -> Response {
        Response {
            status,
            message: String::new(),
        }
    }

    /// Serialises header and metadata; `payload_len` bytes of payload must follow.
    pub fn encode(&self, payload_len: u64) -> Vec<u8> {
        let mut msg = self.message.as_bytes();
        if msg.len() > MAX_MESSAGE_LEN {
            // Cut on a char boundary so the peer's UTF-8 check passes.
            let mut end = MAX_MESSAGE_LEN;
            while !self.message.is_char_boundary(end) {
                end -= 1;
            }
            msg = &msg[..end];
        }
        let mut meta = Vec::with_capacity(3 + msg.len());
        meta.push(self.status as u8);
        meta.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        meta.extend_from_slice(msg);
        let header = FrameHeader {
            kind: Kind::Response,
            meta_len: meta.len() as u16,
            payload_len,
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(&meta);
        out
    }

    /// Phase two for responses.
    ///
    /// # Errors
    /// A [`ProtoError`] for a non-response frame or invalid fields.
    pub fn parse(header: &FrameHeader, meta: &[u8]) -> Result<Response, ProtoError> {
        if header.kind != Kind::Response {
            return Err(ProtoError::UnexpectedKind(header.kind));
        }
        let mut c = Cursor { buf: meta };
        let b = c.u8()?;
        let status = Status::from_u8(b).ok_or(ProtoError::UnknownStatus(b))?;
        let len = usize::from(c.u16()?);
        let message = text(c.take(len)?, "message", MAX_MESSAGE_LEN, true)?;
        c.finish()?;
        if status != Status::Ok && header.payload_len > 0 {
            return Err(ProtoError::UnexpectedPayload(Kind::Response));
        }
        Ok(Response { status, message })
    }
}

/// A complete frame parsed from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A client's request.
    Request(Request),
    /// A relay's answer.
    Response(Response),
}

/// A frame decoded from memory by [`decode_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The request or response.
    pub message: Message,
    /// The payload that followed the metadata.
    pub payload: &'a [u8],
    /// Bytes of the buffer the frame took up.
    pub used: usize,
}

/// Parses one whole frame from the start of `buf`, as a stream reader would
/// but from memory: the entry point of the fuzz target and property tests.
///
/// Returns `Ok(None)` when `buf` holds only part of a valid frame.
///
/// # Errors
/// Whatever [`FrameHeader::check`] or the metadata parsers refuse.
pub fn decode_frame(buf: &[u8], max_payload: u64) -> Result<Option<Decoded<'_>>, ProtoError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(head);
    let header = FrameHeader::check(&h, max_payload)?;
    let meta_end = HEADER_LEN + usize::from(header.meta_len);
    let Some(meta) = buf.get(HEADER_LEN..meta_end) else {
        return Ok(None);
    };
    let message = if header.kind == Kind::Response {
        Message::Response(Response::parse(&header, meta)?)
    } else {
        Message::Request(Request::parse(&header, meta)?)
    };
    let Ok(payload_len) = usize::try_from(header.payload_len) else {
        return Ok(None);
    };
    let Some(end) = meta_end.checked_add(payload_len) else {
        return Ok(None);
    };
    let Some(payload) = buf.get(meta_end..end) else {
        return Ok(None);
    };
    Ok(Some(Decoded {
        message,
        payload,
        used: end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_round_trips() {
        let req = Request::Put {
            mailbox: "state/17/final".into(),
            timeout: Duration::from_millis(1500),
        };
        let mut frame = req.encode(3);
        frame.extend_from_slice(b"abc");
        let d = decode_frame(&frame, 10).unwrap().unwrap();
        assert_eq!(d.message, Message::Request(req));
        assert_eq!(d.payload, b"abc");
        assert_eq!(d.used, frame.len());
    }

    #[test]
    fn header_refuses_huge_payload_alone() {
        let h = FrameHeader {
            kind: Kind::Put,
            meta_len: 10,
            payload_len: 10 << 30,
        }
        .encode();
        assert_eq!(
            FrameHeader::check(&h, 256 << 20),
            Err(ProtoError::PayloadTooLarge {
                len: 10 << 30,
                limit: 256 << 20
            })
        );
    }

    #[test]
    fn get_may_not_carry_payload() {
        let frame = Request::Get {
            mailbox: "m".into(),
            timeout: Duration::ZERO,
        }
        .encode(1);
        let h: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
        assert_eq!(
            FrameHeader::check(&h, 100),
            Err(ProtoError::UnexpectedPayload(Kind::Get))
        );
    }

    #[test]
    fn debug_hides_the_hello_token() {
        let token = "0123456789abcdef".repeat(4);
        let hello = Request::Hello {
            job: "job-7".into(),
            token: token.clone(),
        };
        // Also as a parsed message, the form a server would log.
        let parsed = decode_frame(&hello.encode(0), 0).unwrap().unwrap().message;
        for shown in [
            format!("{hello:?}"),
            format!("{hello:#?}"),
            format!("{parsed:?}"),
        ] {
            assert!(!shown.contains(&token), "{shown}");
            assert!(!shown.contains("0123456789"), "{shown}");
            assert!(
                shown.contains("job-7") && shown.contains("<hidden>"),
                "{shown}"
            );
        }
        let put = Request::Put {
            mailbox: "state/1/final".into(),
            timeout: Duration::from_secs(2),
        };
        assert_eq!(
            format!("{put:?}"),
            r#"Put { mailbox: "state/1/final", timeout: 2s }"#
        );
        assert_eq!(format!("{:?}", Request::EndJob), "EndJob");
    }

    #[test]
    fn other_version_is_refused() {
        let mut frame = Request::EndJob.encode(0);
        frame[4] = 2;
        assert_eq!(decode_frame(&frame, 0), Err(ProtoError::BadVersion(2)));
    }
}
