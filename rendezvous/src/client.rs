//! The relay client a worker uses: one QUIC connection (re-made as needed),
//! one stream per operation, retries across connection loss.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::{Connection, ConnectionError, Endpoint, RecvStream, VarInt};
use tokio::time::Instant;
use tracing::debug;

use crate::error::{ClientError, ConfigError};
use crate::proto::{self, close, FrameHeader, Request, Response, Status, HEADER_LEN};
use crate::tls::{client_crypto, ServerAuth, SELF_SIGNED_NAME};

/// How long [`RelayClient::close`] gives the endpoint to send the close.
const CLOSE_FLUSH: Duration = Duration::from_millis(20);

/// Settings of a [`RelayClient`]. [`ClientConfig::new`] gives the defaults.
/// Its `Debug` output hides the token.
#[derive(Clone)]
pub struct ClientConfig {
    /// Relay address, `host:port` (resolved at every connection attempt, so a
    /// relay that moves behind a DNS name is found again).
    pub relay: String,
    /// How to trust the relay's certificate.
    pub auth: ServerAuth,
    /// TLS server name; `None` means [`SELF_SIGNED_NAME`] when pinning and
    /// the host part of `relay` when verifying against roots.
    pub server_name: Option<String>,
    /// Job id the token was minted for.
    pub job: String,
    /// The job's token.
    pub token: String,
    /// How long the relay may wait for memory before a put fails with
    /// `RelayFull`. Default 60 s.
    pub put_timeout: Duration,
    /// How long an operation keeps reconnecting after losing the relay
    /// before giving up with `Unavailable`. Default 120 s.
    pub retry_for: Duration,
    /// First pause between reconnection attempts; doubles up to `backoff_max`.
    /// Default 50 ms.
    pub backoff_initial: Duration,
    /// Longest pause between reconnection attempts. Default 2 s.
    pub backoff_max: Duration,
    /// Bound on one connection attempt. Default 5 s.
    pub connect_timeout: Duration,
    /// Largest get answer accepted. Default 1 GiB.
    pub max_message: u64,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("relay", &self.relay)
            .field("auth", &self.auth)
            .field("server_name", &self.server_name)
            .field("job", &self.job)
            .field("token", &"<hidden>")
            .field("put_timeout", &self.put_timeout)
            .field("retry_for", &self.retry_for)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        relay: impl Into<String>,
        auth: ServerAuth,
        job: impl Into<String>,
        token: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            relay: relay.into(),
            auth,
            server_name: None,
            job: job.into(),
            token: token.into(),
            put_timeout: Duration::from_secs(60),
            retry_for: Duration::from_secs(120),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            max_message: 1 << 30,
        }
    }
}

/// A connection to a relay, authenticated for one job.
///
/// Every operation is idempotent, so when the connection drops the client
/// reconnects with exponential backoff and repeats the operation; a `get`
/// keeps waiting across a relay restart (for the producer to put again).
pub struct RelayClient {
    cfg: ClientConfig,
    quic: quinn::ClientConfig,
    server_name: String,
    endpoint: Endpoint,
    conn: tokio::sync::Mutex<Option<Connection>>,
    retries: AtomicU64,
    first_retry: std::sync::Mutex<Option<String>>,
}

/// Outcome of one attempt at an operation.
enum Attempt {
    /// Connection trouble: reconnect and try again.
    Retry(String),
    /// An answer or error that retrying cannot change.
    Fatal(ClientError),
}

fn classify(e: &ConnectionError, connecting: bool) -> Attempt {
    match e {
        ConnectionError::ApplicationClosed(c)
            if c.error_code == VarInt::from_u32(close::AUTH_FAILED) =>
        {
            Attempt::Fatal(ClientError::Auth)
        }
        // Raised locally during a handshake: our own verification failed
        // (wrong fingerprint, bad chain). No retry will change that.
        ConnectionError::TransportError(t) if connecting => {
            Attempt::Fatal(ClientError::Tls(t.to_string()))
        }
        ConnectionError::VersionMismatch => Attempt::Fatal(ClientError::Tls(e.to_string())),
        other => Attempt::Retry(other.to_string()),
    }
}

fn read_err(e: quinn::ReadError) -> Attempt {
    match e {
        quinn::ReadError::ConnectionLost(c) => classify(&c, false),
        other => Attempt::Retry(other.to_string()),
    }
}

fn write_err(e: quinn::WriteError) -> Attempt {
    match e {
        quinn::WriteError::ConnectionLost(c) => classify(&c, false),
        other => Attempt::Retry(other.to_string()),
    }
}

fn read_exact_err(e: quinn::ReadExactError) -> Attempt {
    match e {
        quinn::ReadExactError::ReadError(r) => read_err(r),
        other => Attempt::Retry(other.to_string()),
    }
}

/// The QUIC transport settings clients connect with. Public so the
/// benchmark's raw `quinn` baseline can send with the same ones.
pub fn client_transport() -> quinn::TransportConfig {
    let mut transport = crate::transport::base_transport();
    // Keep-alives let a dead relay be noticed in seconds, not minutes.
    transport
        .keep_alive_interval(Some(Duration::from_secs(2)))
        .max_idle_timeout(Some(Duration::from_secs(10).try_into().expect("in range")))
        .stream_receive_window(VarInt::from_u32(4 << 20))
        .receive_window(VarInt::from_u32(8 << 20));
    transport
}

/// Reads a response frame and its payload.
async fn read_response(
    recv: &mut RecvStream,
    max_payload: u64,
) -> Result<(Response, Bytes), Attempt> {
    let mut h = [0u8; HEADER_LEN];
    recv.read_exact(&mut h).await.map_err(read_exact_err)?;
    let header = FrameHeader::check(&h, max_payload).map_err(|e| Attempt::Fatal(e.into()))?;
    let mut meta = vec![0u8; usize::from(header.meta_len)];
    recv.read_exact(&mut meta).await.map_err(read_exact_err)?;
    let resp = Response::parse(&header, &meta).map_err(|e| Attempt::Fatal(e.into()))?;
    let len = usize::try_from(header.payload_len).map_err(|_| {
        Attempt::Fatal(ClientError::TooLarge("answer exceeds address space".into()))
    })?;
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        match recv
            .read_chunk(len - buf.len(), true)
            .await
            .map_err(read_err)?
        {
            Some(chunk) => buf.extend_from_slice(&chunk.bytes),
            None => return Err(Attempt::Retry("answer cut short".into())),
        }
    }
    Ok((resp, buf.freeze()))
}

/// Waits for the end of a stream whose final answer has been read. Dropping
/// a receive stream before its end tells the relay to stop sending, and the
/// relay would then not know the answer was delivered (it makes a read
/// mailbox evictable only on delivery).
async fn read_end(recv: &mut RecvStream) {
    while let Ok(Some(_)) = recv.read_chunk(usize::MAX, true).await {}
}

/// Maps a refusal to its error; `ShuttingDown` is retried.
fn status_error(resp: Response, mailbox: &str) -> Attempt {
    let m = mailbox.to_owned();
    Attempt::Fatal(match resp.status {
        // Only a broken relay sends these where a refusal belongs.
        Status::Ok | Status::Continue => {
            ClientError::BadRequest(format!("unexpected {:?} answer", resp.status))
        }
        Status::ShuttingDown => return Attempt::Retry("relay shutting down".into()),
        Status::Evicted => ClientError::Evicted(m),
        Status::Timeout => ClientError::Timeout(m),
        Status::Conflict => ClientError::Conflict(m),
        Status::TooLarge => ClientError::TooLarge(resp.message),
        Status::RelayFull => ClientError::RelayFull(resp.message),
        Status::JobEnded => ClientError::JobEnded,
        Status::LimitReached => ClientError::LimitReached(resp.message),
        Status::BadRequest => ClientError::BadRequest(resp.message),
    })
}

async fn resolve(relay: &str) -> Result<SocketAddr, ClientError> {
    let mut addrs = tokio::net::lookup_host(relay)
        .await
        .map_err(|_| ConfigError::BadAddress(relay.into()))?;
    addrs
        .next()
        .ok_or_else(|| ConfigError::BadAddress(relay.into()).into())
}

impl RelayClient {
    /// Connects and authenticates, retrying an unreachable relay for
    /// `retry_for`. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::Auth`] for a wrong token, [`ClientError::Tls`] when the
    /// relay's certificate is not trusted, [`ClientError::Unavailable`] when
    /// the relay stays unreachable, [`ClientError::Config`] for bad settings.
    pub async fn connect(cfg: ClientConfig) -> Result<RelayClient, ClientError> {
        proto::check_job(&cfg.job).map_err(ConfigError::from)?;
        let addr = resolve(&cfg.relay).await?;
        let server_name = match (&cfg.server_name, &cfg.auth) {
            (Some(n), _) => n.clone(),
            (None, ServerAuth::Pinned(_)) => SELF_SIGNED_NAME.to_string(),
            (None, ServerAuth::Roots(_)) => host_part(&cfg.relay).to_string(),
        };
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_crypto(&cfg.auth)?)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
        quic.transport_config(Arc::new(client_transport()));
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("valid")
        } else {
            "0.0.0.0:0".parse().expect("valid")
        };
        let endpoint = crate::net::endpoint(bind, crate::net::CLIENT_SOCKET_BUFFER, None)
            .map_err(|e| ConfigError::Io(bind.to_string(), e))?;
        let client = RelayClient {
            cfg,
            quic,
            server_name,
            endpoint,
            conn: tokio::sync::Mutex::new(None),
            retries: AtomicU64::new(0),
            first_retry: std::sync::Mutex::new(None),
        };
        let deadline = Instant::now() + client.cfg.retry_for;
        client.connection(deadline).await?;
        Ok(client)
    }

    /// How many times an operation or connection attempt was retried, and
    /// why the first one was: a health measure for benchmarks and logs.
    pub fn retries(&self) -> (u64, Option<String>) {
        let why = self.first_retry.lock().map(|g| g.clone()).unwrap_or(None);
        (self.retries.load(Ordering::Relaxed), why)
    }

    fn note_retry(&self, why: &str) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.first_retry.lock() {
            // The first reason is the cause; later ones are often its echo
            // (operations sharing the connection that was closed).
            g.get_or_insert_with(|| why.to_owned());
        }
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Stores `data` in `mailbox`. Succeeds if the mailbox already holds the
    /// same bytes (a duplicate from a speculative or retried worker).
    ///
    /// # Errors
    /// [`ClientError::Conflict`] if it holds other bytes,
    /// [`ClientError::RelayFull`] if no memory freed within `put_timeout`,
    /// [`ClientError::TooLarge`] past the relay's message limit,
    /// [`ClientError::Unavailable`] if the relay could not be reached.
    pub async fn put(&self, mailbox: &str, data: Bytes) -> Result<(), ClientError> {
        proto::check_mailbox(mailbox).map_err(ConfigError::from)?;
        let deadline = Instant::now() + self.cfg.retry_for;
        let timeout = self.cfg.put_timeout;
        self.with_retry(deadline, |conn| {
            let data = data.clone();
            async move {
                let (mut send, mut recv) = conn.open_bi().await.map_err(|e| classify(&e, false))?;
                let head = Request::Put {
                    mailbox: mailbox.to_owned(),
                    timeout,
                }
                .encode(data.len() as u64);
                send.write_all(&head).await.map_err(write_err)?;
                // The body goes only once the relay has room for it; any
                // other answer is final.
                let (resp, _) = read_response(&mut recv, 0).await?;
                if resp.status != Status::Continue {
                    return Err(status_error(resp, mailbox));
                }
                // A relay that stops reading also answers; a write error
                // here is reported by the answer (or its absence) below.
                let written = async {
                    send.write_chunk(data).await?;
                    send.finish()?;
                    Ok::<(), quinn::WriteError>(())
                }
                .await;
                let (resp, _) = read_response(&mut recv, 0).await?;
                read_end(&mut recv).await;
                if resp.status == Status::Ok {
                    if let Err(e) = written {
                        debug!("put answered Ok despite write error {e}");
                    }
                    Ok(())
                } else {
                    Err(status_error(resp, mailbox))
                }
            }
        })
        .await
    }

    /// Waits up to `timeout` for `mailbox` to be filled and returns its
    /// contents. May be repeated: a mailbox can be read again until it
    /// expires, is evicted or the job ends.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] if not filled in time,
    /// [`ClientError::Evicted`] if it was filled but dropped (read the durable
    /// store instead), [`ClientError::JobEnded`], [`ClientError::Unavailable`].
    pub async fn get(&self, mailbox: &str, timeout: Duration) -> Result<Bytes, ClientError> {
        proto::check_mailbox(mailbox).map_err(ConfigError::from)?;
        let start = Instant::now();
        let deadline = start + timeout;
        let retry_deadline = start + timeout.max(self.cfg.retry_for);
        let max = self.cfg.max_message;
        self.with_retry(retry_deadline, |conn| async move {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| classify(&e, false))?;
            let head = Request::Get {
                mailbox: mailbox.to_owned(),
                timeout: remaining,
            }
            .encode(0);
            send.write_all(&head)
                .await
                .map_err(|e| Attempt::Retry(e.to_string()))?;
            let _ = send.finish();
            let (resp, data) = read_response(&mut recv, max).await?;
            read_end(&mut recv).await;
            if resp.status == Status::Ok {
                Ok(data)
            } else {
                Err(status_error(resp, mailbox))
            }
        })
        .await
    }

    /// Ends the job on the relay: its mailboxes are dropped and waiting gets
    /// answer `JobEnded`.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] if the relay could not be reached.
    pub async fn end_job(&self) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.cfg.retry_for;
        self.with_retry(deadline, |conn| async move {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| classify(&e, false))?;
            send.write_all(&Request::EndJob.encode(0))
                .await
                .map_err(|e| Attempt::Retry(e.to_string()))?;
            let _ = send.finish();
            let (resp, _) = read_response(&mut recv, 0).await?;
            match resp.status {
                Status::Ok => Ok(()),
                _ => Err(status_error(resp, "")),
            }
        })
        .await
    }

    /// Closes the connection politely and waits briefly for the close to be sent.
    pub async fn close(&self) {
        if let Some(c) = self.conn.lock().await.take() {
            c.close(VarInt::from_u32(close::DONE), b"done");
        }
        // The CONNECTION_CLOSE goes out as soon as the endpoint driver runs;
        // waiting out the whole draining period (3 PTO, ~80 ms even on
        // loopback) would only delay every short-lived worker's exit. If the
        // packet is lost, the relay's idle timeout reclaims the connection.
        let _ = tokio::time::timeout(CLOSE_FLUSH, self.endpoint.wait_idle()).await;
    }

    /// Runs `op` on a live connection, reconnecting and repeating it on
    /// connection trouble until `deadline`.
    async fn with_retry<'a, T, F, Fut>(
        &'a self,
        deadline: Instant,
        mut op: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<T, Attempt>> + 'a,
    {
        let mut backoff = self.cfg.backoff_initial;
        loop {
            let conn = self.connection(deadline).await?;
            match op(conn.clone()).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(why)) => {
                    debug!("operation interrupted ({why}); retrying");
                    self.note_retry(&why);
                    self.forget(&conn).await;
                    if Instant::now() + backoff > deadline {
                        return Err(ClientError::Unavailable(why));
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.cfg.backoff_max);
                }
            }
        }
    }

    /// Drops a connection found broken, unless it was already replaced.
    /// It is also closed: a relay that answered `ShuttingDown` is draining,
    /// and holding on would only delay its shutdown.
    async fn forget(&self, conn: &Connection) {
        let mut slot = self.conn.lock().await;
        if slot
            .as_ref()
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            *slot = None;
            conn.close(VarInt::from_u32(close::DONE), b"reconnecting");
        }
    }

    /// The live connection, making one (with backoff) if needed.
    async fn connection(&self, deadline: Instant) -> Result<Connection, ClientError> {
        // Held across the attempt so concurrent operations share one reconnect.
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        *slot = None;
        let mut backoff = self.cfg.backoff_initial;
        loop {
            let attempt = tokio::time::timeout(self.cfg.connect_timeout, self.try_connect()).await;
            let why = match attempt {
                Ok(Ok(c)) => {
                    *slot = Some(c.clone());
                    return Ok(c);
                }
                Ok(Err(Attempt::Fatal(e))) => return Err(e),
                Ok(Err(Attempt::Retry(why))) => why,
                Err(_) => "connection attempt timed out".to_string(),
            };
            debug!("cannot reach relay ({why}); retrying in {backoff:?}");
            self.note_retry(&why);
            if Instant::now() + backoff > deadline {
                return Err(ClientError::Unavailable(why));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.cfg.backoff_max);
        }
    }

    /// One attempt: handshake, then hello with job and token.
    async fn try_connect(&self) -> Result<Connection, Attempt> {
        let addr = resolve(&self.cfg.relay).await.map_err(Attempt::Fatal)?;
        let connecting = self
            .endpoint
            .connect_with(self.quic.clone(), addr, &self.server_name)
            .map_err(|e| {
                Attempt::Fatal(ClientError::Config(ConfigError::Invalid(e.to_string())))
            })?;
        let conn = connecting.await.map_err(|e| classify(&e, true))?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| classify(&e, false))?;
        let hello = Request::Hello {
            job: self.cfg.job.clone(),
            token: self.cfg.token.clone(),
        };
        send.write_all(&hello.encode(0))
            .await
            .map_err(|e| match e {
                quinn::WriteError::ConnectionLost(c) => classify(&c, false),
                other => Attempt::Retry(other.to_string()),
            })?;
        let _ = send.finish();
        let (resp, _) = read_response(&mut recv, 0).await?;
        match resp.status {
            Status::Ok => Ok(conn),
            _ => Err(status_error(resp, "")),
        }
    }
}

/// `host` of `host:port` or `[v6]:port`.
fn host_part(relay: &str) -> &str {
    let host = relay.rsplit_once(':').map_or(relay, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}
