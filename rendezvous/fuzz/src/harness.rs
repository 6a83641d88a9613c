//! Structure-aware harness of the relay protocol at the message level: a
//! stream of requests and responses of every kind, with arbitrary field
//! values, raw junk and flipped bytes between them, read frame after frame
//! the way the relay and its clients read a QUIC stream (header, checked
//! alone; then metadata; then payload), in pieces of arbitrary sizes.
//!
//! Checked: the streaming reader and the in-memory parser
//! ([`decode_frame`]) agree on every frame; a frame written from a valid
//! message reads back as that message with its payload, as long as no
//! junk came before it; whatever is accepted writes back to the bytes it
//! was read from; a hello's token never shows in `Debug` output.
//!
//! Shared by the cargo-fuzz target `messages` and
//! `rendezvous/tests/fuzz_replay.rs`.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use excam_rendezvous::proto::{
    check_job, check_mailbox, decode_frame, FrameHeader, Message, ProtoError, Request, Response,
    Status, HEADER_LEN, MAX_MESSAGE_LEN, MAX_TOKEN_LEN,
};

/// Pieces per input at most.
const MAX_PIECES: usize = 32;

/// One piece of the stream.
#[derive(Arbitrary, Debug, Clone)]
pub enum Piece {
    /// A hello.
    Hello {
        /// Job id.
        job: String,
        /// Token.
        token: String,
    },
    /// A put and its body.
    Put {
        /// Mailbox.
        mailbox: String,
        /// Timeout, ms.
        timeout_ms: u32,
        /// Body.
        payload: Vec<u8>,
    },
    /// A get.
    Get {
        /// Mailbox.
        mailbox: String,
        /// Timeout, ms.
        timeout_ms: u32,
    },
    /// An end-job.
    EndJob,
    /// A response and, if OK, its payload.
    Response {
        /// Status byte (any value).
        status: u8,
        /// Message.
        message: String,
        /// Payload.
        payload: Vec<u8>,
    },
    /// Junk.
    Raw(Vec<u8>),
    /// A byte of the stream so far flipped.
    Flip {
        /// Where, modulo the length so far.
        at: u32,
        /// With what.
        xor: u8,
    },
}

/// Input of [`stream`].
#[derive(Arbitrary, Debug)]
pub struct StreamInput {
    /// The reader's payload limit.
    pub limit: u32,
    /// Sizes of the reads the stream arrives in (cycled; 0 means 1).
    pub reads: Vec<u8>,
    /// The stream.
    pub pieces: Vec<Piece>,
}

fn status_of(b: u8) -> Option<Status> {
    // Status has no public from_u8: find it by its encoding.
    let all = [
        Status::Ok,
        Status::Evicted,
        Status::Timeout,
        Status::Conflict,
        Status::TooLarge,
        Status::RelayFull,
        Status::JobEnded,
        Status::LimitReached,
        Status::BadRequest,
        Status::ShuttingDown,
        Status::Continue,
    ];
    all.into_iter().find(|s| *s as u8 == b)
}

fn text_ok(s: &str, max: usize, may_be_empty: bool) -> bool {
    (may_be_empty || !s.is_empty()) && s.len() <= max && !s.chars().any(char::is_control)
}

/// The frame a piece writes, and the message and payload a reader must
/// find in it if it is valid.
fn write(piece: &Piece, limit: u64) -> (Vec<u8>, Option<(Message, Vec<u8>)>) {
    let ms = |t: u32| Duration::from_millis(t.into());
    match piece {
        Piece::Hello { job, token } => {
            let req = Request::Hello {
                job: job.clone(),
                token: token.clone(),
            };
            let ok = check_job(job).is_ok() && text_ok(token, MAX_TOKEN_LEN, false);
            (
                req.encode(0),
                ok.then(|| (Message::Request(req), Vec::new())),
            )
        }
        Piece::Put {
            mailbox,
            timeout_ms,
            payload,
        } => {
            let req = Request::Put {
                mailbox: mailbox.clone(),
                timeout: ms(*timeout_ms),
            };
            let mut b = req.encode(payload.len() as u64);
            b.extend_from_slice(payload);
            let ok = check_mailbox(mailbox).is_ok() && payload.len() as u64 <= limit;
            (b, ok.then(|| (Message::Request(req), payload.clone())))
        }
        Piece::Get {
            mailbox,
            timeout_ms,
        } => {
            let req = Request::Get {
                mailbox: mailbox.clone(),
                timeout: ms(*timeout_ms),
            };
            let ok = check_mailbox(mailbox).is_ok();
            (
                req.encode(0),
                ok.then(|| (Message::Request(req), Vec::new())),
            )
        }
        Piece::EndJob => (
            Request::EndJob.encode(0),
            Some((Message::Request(Request::EndJob), Vec::new())),
        ),
        Piece::Response {
            status,
            message,
            payload,
        } => match status_of(*status) {
            Some(s) => {
                let payload = if s == Status::Ok {
                    payload.clone()
                } else {
                    Vec::new()
                };
                let resp = Response {
                    status: s,
                    message: message.clone(),
                };
                let mut b = resp.encode(payload.len() as u64);
                b.extend_from_slice(&payload);
                // Long messages are cut on a char boundary when written.
                let ok = text_ok(message, MAX_MESSAGE_LEN, true) && payload.len() as u64 <= limit;
                (b, ok.then_some((Message::Response(resp), payload)))
            }
            None => {
                let mut b = Response::status(Status::Ok).encode(0);
                b[HEADER_LEN] = *status;
                (b, None)
            }
        },
        Piece::Raw(v) => (v.clone(), None),
        Piece::Flip { .. } => (Vec::new(), None),
    }
}

/// A reader over `buf` that hands out bytes in reads of the given sizes,
/// as a QUIC stream does.
struct Chunked<'a> {
    buf: &'a [u8],
    pos: usize,
    reads: &'a [u8],
    k: usize,
}

impl Chunked<'_> {
    /// Reads exactly `n` bytes in pieces; `None` at the end of the stream.
    fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(1 << 16));
        while out.len() < n {
            if self.pos >= self.buf.len() {
                return None;
            }
            let step = self
                .reads
                .get(self.k % self.reads.len().max(1))
                .map_or(n, |&r| usize::from(r).max(1));
            self.k += 1;
            let take = step.min(n - out.len()).min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
        }
        Some(out)
    }
}

/// What the streaming reader made of one frame.
#[derive(Debug, PartialEq)]
enum Read {
    Frame(Message, Vec<u8>),
    Refused(ProtoError),
}

/// Reads one frame as the relay does: header alone, then metadata, then
/// payload. `None` at the end of the stream (or inside a frame).
fn read_frame(r: &mut Chunked<'_>, limit: u64) -> Option<Read> {
    let h: [u8; HEADER_LEN] = r.read_exact(HEADER_LEN)?.try_into().expect("header");
    let header = match FrameHeader::check(&h, limit) {
        Ok(h) => h,
        Err(e) => return Some(Read::Refused(e)),
    };
    let meta = r.read_exact(usize::from(header.meta_len))?;
    let message = match header.kind {
        excam_rendezvous::proto::Kind::Response => {
            Response::parse(&header, &meta).map(Message::Response)
        }
        _ => Request::parse(&header, &meta).map(Message::Request),
    };
    let message = match message {
        Ok(m) => m,
        Err(e) => return Some(Read::Refused(e)),
    };
    let payload = r.read_exact(usize::try_from(header.payload_len).ok()?)?;
    Some(Read::Frame(message, payload))
}

/// Runs one input (see the module doc).
pub fn stream(input: &StreamInput) {
    let limit = u64::from(input.limit);
    let mut buf = Vec::new();
    // (start, end, expected message) of frames written in sync.
    let mut expected = Vec::new();
    let mut in_sync = true;
    for p in input.pieces.iter().take(MAX_PIECES) {
        if let Piece::Flip { at, xor } = p {
            if !buf.is_empty() && *xor != 0 {
                let n = buf.len();
                buf[*at as usize % n] ^= xor;
                // Every frame from the flipped one on is in doubt.
                let at = *at as usize % n;
                expected.retain(|(_, end, _)| *end <= at);
                in_sync = false;
            }
            continue;
        }
        let (bytes, valid) = write(p, limit);
        match valid {
            Some(m) if in_sync => expected.push((buf.len(), buf.len() + bytes.len(), m)),
            _ => in_sync = false,
        }
        buf.extend_from_slice(&bytes);
    }

    let mut r = Chunked {
        buf: &buf,
        pos: 0,
        reads: &input.reads,
        k: 0,
    };
    let mut frames = 0;
    loop {
        let start = r.pos;
        let mem = decode_frame(&buf[start..], limit);
        let Some(read) = read_frame(&mut r, limit) else {
            // The stream ended inside a frame: the parser must not claim
            // a whole one (it may still refuse a bad header).
            assert!(
                !matches!(mem, Ok(Some(_))),
                "parser found a frame the reader did not"
            );
            break;
        };
        match read {
            Read::Refused(e) => {
                assert_eq!(mem, Err(e), "reader and parser disagree at {start}");
                break;
            }
            Read::Frame(message, payload) => {
                let d = mem
                    .expect("the parser refused a frame the reader took")
                    .expect("the parser wants more of a frame the reader took");
                assert_eq!(d.message, message);
                assert_eq!(d.payload, &payload[..]);
                assert_eq!(d.used, r.pos - start);
                // What was accepted writes back to exactly its bytes.
                let head = match &message {
                    Message::Request(q) => q.encode(payload.len() as u64),
                    Message::Response(s) => s.encode(payload.len() as u64),
                };
                assert_eq!(&head[..], &buf[start..r.pos - payload.len()]);
                if let Message::Request(Request::Hello { job, token }) = &message {
                    let shown = format!("{message:?}");
                    assert!(shown.contains("<hidden>"), "{shown}");
                    // The job name is shown: a token that is part of it
                    // (the fuzzer makes such pairs) is not a leak.
                    let rest = shown.replace(&format!("{job:?}"), "");
                    if !"<hidden>".contains(token.as_str()) {
                        assert!(!rest.contains(&format!("{token:?}")), "token in {shown}");
                    }
                }
                if let Some(i) = expected.iter().position(|(s, _, _)| *s == start) {
                    let (_, _, (m, p)) = &expected[i];
                    assert_eq!(m, &message, "a valid frame read back as another");
                    assert_eq!(p, &payload);
                }
                frames += 1;
            }
        }
    }
    // Every frame written in sync before any junk was read back.
    assert!(
        frames >= expected.len(),
        "{} valid frames written, {frames} read",
        expected.len()
    );
}

/// Runs the harness `target` on raw fuzzer bytes.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "messages" => {
            if let Ok(i) = StreamInput::arbitrary_take_rest(Unstructured::new(data)) {
                stream(&i);
            }
        }
        "frame_parser" => frame_parser(data),
        other => panic!("no harness {other}"),
    }
}

/// Target `frame_parser`: no input may panic the in-memory frame parser,
/// and whatever it accepts must re-encode to exactly the bytes it was
/// parsed from. The first 8 bytes choose the receiver's payload limit, so
/// the limit check is fuzzed too; the rest is the frame.
pub fn frame_parser(data: &[u8]) {
    let (limit, frame) = match data.split_first_chunk::<8>() {
        Some((l, rest)) => (u64::from_le_bytes(*l), rest),
        None => (1 << 20, data),
    };
    if let Ok(Some(d)) = decode_frame(frame, limit) {
        assert!(d.used <= frame.len());
        assert!(d.payload.len() as u64 <= limit);
        let head = match &d.message {
            Message::Request(r) => r.encode(d.payload.len() as u64),
            Message::Response(r) => r.encode(d.payload.len() as u64),
        };
        assert_eq!(&head[..], &frame[..d.used - d.payload.len()]);
    }
}

/// Seeds: every kind of piece, well formed, then streams of them with
/// junk and flips, from a fixed pseudo-random sequence.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x51_7cc1_b727_220a;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    };
    (0..200)
        .map(|i| {
            let n = 8 + (i % 50) * 12;
            (0..n).map(|_| next()).collect()
        })
        .collect()
}
