//! The relay server: accepts QUIC connections, authenticates each for one
//! job, and serves one operation per bidirectional stream.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::auth::RelaySecret;
use crate::error::{ConfigError, RelayError};
use crate::proto::{self, close, FrameHeader, ProtoError, Request, Response, Status, HEADER_LEN};
use crate::store::{Limits, RelayStats, Store, StoreError};
use crate::tls::{server_crypto, Fingerprint, TlsIdentity};

/// How long a new connection may take to present its job and token.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for memory a put may ask for.
const MAX_PUT_WAIT: Duration = Duration::from_secs(3600);
/// How long a finished answer may take to be acknowledged before its
/// operation counts as done for draining.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a relay. [`RelayConfig::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Secret that job tokens are minted from.
    pub secret: RelaySecret,
    /// Certificate and key; `None` makes a self-signed certificate at bind.
    pub identity: Option<TlsIdentity>,
    /// Cap on bytes held: mailbox contents plus puts being received. Default 1 GiB.
    pub memory_limit: u64,
    /// Largest message accepted. Default 256 MiB.
    pub max_message: u64,
    /// A mailbox unused this long is dropped. Default 600 s.
    pub ttl: Duration,
    /// Concurrent connections. Default 8192.
    pub max_connections: usize,
    /// Jobs with state on the relay. Default 1024.
    pub max_jobs: usize,
    /// Mailboxes (filled or awaited) across all jobs. Default 1,000,000.
    pub max_mailboxes: usize,
    /// Mailboxes per job. Default 100,000.
    pub max_mailboxes_per_job: usize,
    /// Concurrent operations per connection. Default 64.
    pub max_streams_per_connection: u32,
    /// Per-stream QUIC receive window. The connection window is this times
    /// `max_streams_per_connection`. Bodies are sent only after the relay
    /// has reserved memory for them (the `Continue` answer), so a
    /// well-behaved client never parks bytes here while waiting. Default
    /// 2 MiB: a whole 1.5 MiB decoder state fits in one window, so a put
    /// needs no window update, and it is at least quinn's default (1.25 MB),
    /// which the benchmark's raw baseline used before it shared these
    /// settings.
    pub stream_receive_window: u32,
    /// UDP socket send and receive buffer requested from the kernel (which
    /// caps it at `net.core.rmem_max`/`wmem_max`). Default 8 MiB.
    pub socket_buffer: usize,
    /// How long shutdown waits for in-flight operations. Default 10 s.
    pub drain_timeout: Duration,
    /// Idle time after which a silent connection is dropped. Default 30 s.
    pub idle_timeout: Duration,
}

impl RelayConfig {
    /// The QUIC transport settings the relay serves with. Public so the
    /// benchmark's raw `quinn` baseline can receive with the same ones.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] if a window or timeout is out of range.
    pub fn transport(&self) -> Result<quinn::TransportConfig, ConfigError> {
        let mut transport = crate::transport::base_transport();
        let stream_window = self.stream_receive_window;
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_streams_per_connection))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(stream_window))
            // Room for every stream's window: with less, puts parked while
            // waiting for memory would exhaust the connection's window and
            // block the other streams — including the gets that would free it.
            .receive_window(
                VarInt::from_u64(
                    u64::from(stream_window) * u64::from(self.max_streams_per_connection),
                )
                .map_err(|_| ConfigError::Invalid("receive window out of range".into()))?,
            )
            .max_idle_timeout(Some(
                self.idle_timeout
                    .try_into()
                    .map_err(|_| ConfigError::Invalid("idle timeout out of range".into()))?,
            ));
        Ok(transport)
    }

    /// Defaults as documented on each field.
    pub fn new(secret: RelaySecret) -> RelayConfig {
        RelayConfig {
            secret,
            identity: None,
            memory_limit: 1 << 30,
            max_message: 256 << 20,
            ttl: Duration::from_secs(600),
            max_connections: 8192,
            max_jobs: 1024,
            max_mailboxes: 1_000_000,
            max_mailboxes_per_job: 100_000,
            max_streams_per_connection: 64,
            stream_receive_window: 2 << 20,
            socket_buffer: 8 << 20,
            drain_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

struct Shared {
    store: Arc<Store>,
    secret: RelaySecret,
    max_message: u64,
}

/// A bound relay, ready to [`run`](Relay::run).
pub struct Relay {
    endpoint: Endpoint,
    shared: Arc<Shared>,
    fingerprint: Fingerprint,
    cfg: RelayConfig,
}

/// A cheap handle for reading a running relay's counters.
#[derive(Clone)]
pub struct StatsHandle(Arc<Store>);

impl StatsHandle {
    /// Current counters.
    pub fn get(&self) -> RelayStats {
        self.0.stats()
    }
}

impl Relay {
    /// Binds the UDP socket (`127.0.0.1:0` picks a free port). Must be called
    /// inside a Tokio runtime.
    ///
    /// # Errors
    /// [`RelayError::Config`] for unusable settings, [`RelayError::Bind`] if
    /// the address cannot be bound.
    pub fn bind(addr: SocketAddr, mut cfg: RelayConfig) -> Result<Relay, RelayError> {
        if cfg.max_message > cfg.memory_limit {
            // Such a put could never be held: refuse the setting, not every put.
            return Err(ConfigError::Invalid(format!(
                "max message {} exceeds memory limit {}",
                cfg.max_message, cfg.memory_limit
            ))
            .into());
        }
        let identity = match cfg.identity.take() {
            Some(id) => id,
            None => TlsIdentity::self_signed()?,
        };
        let fingerprint = identity.fingerprint();
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(server_crypto(&identity)?)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let transport = cfg.transport()?;
        server.transport_config(Arc::new(transport));
        let endpoint = crate::net::endpoint(addr, cfg.socket_buffer, Some(server))
            .map_err(|e| RelayError::Bind(addr, e))?;
        cfg.identity = Some(identity);
        let store = Arc::new(Store::new(Limits {
            memory: cfg.memory_limit,
            ttl: cfg.ttl,
            max_jobs: cfg.max_jobs,
            max_mailboxes: cfg.max_mailboxes,
            max_mailboxes_per_job: cfg.max_mailboxes_per_job,
        }));
        Ok(Relay {
            endpoint,
            shared: Arc::new(Shared {
                store,
                secret: cfg.secret.clone(),
                max_message: cfg.max_message,
            }),
            fingerprint,
            cfg,
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .expect("a bound endpoint has an address")
    }

    /// SHA-256 fingerprint of the relay's certificate, for clients to pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// A handle for reading counters while the relay runs.
    pub fn stats(&self) -> StatsHandle {
        StatsHandle(self.shared.store.clone())
    }

    /// Serves until `shutdown` resolves, then drains: no new connections or
    /// operations are accepted, waiting gets and puts answer `ShuttingDown`
    /// (clients retry elsewhere or after a restart), operations already
    /// receiving or sending finish (up to the drain timeout), and every
    /// connection is closed with the shutdown code.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for fatal socket errors.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        let Relay {
            endpoint,
            shared,
            cfg,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        // Every connection and operation task holds a clone of `done_tx`;
        // when all are dropped, `done_rx.recv()` returns `None`: drained.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let conn_limit = Arc::new(Semaphore::new(cfg.max_connections));
        let sweeper = {
            let store = shared.store.clone();
            let every = (cfg.ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(30));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    store.sweep(Instant::now());
                }
            })
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    match conn_limit.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let shared = shared.clone();
                            let stop = stop_rx.clone();
                            let done = done_tx.clone();
                            tokio::spawn(async move {
                                serve_connection(incoming, shared, stop, done).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            debug!("connection limit reached; refusing");
                            incoming.refuse();
                        }
                    }
                }
            }
        }
        info!("relay draining");
        let _ = stop_tx.send(true);
        shared.store.shutdown();
        drop(done_tx);
        if tokio::time::timeout(cfg.drain_timeout, done_rx.recv())
            .await
            .is_err()
        {
            warn!("drain timeout passed with operations in flight");
        }
        endpoint.close(VarInt::from_u32(close::SHUTDOWN), b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        sweeper.abort();
        info!("relay stopped");
        Ok(())
    }
}

/// Keeps the connection counter right however the task ends.
struct ConnCount(Arc<Store>);

impl Drop for ConnCount {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    incoming: quinn::Incoming,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    shared.store.connections.fetch_add(1, Ordering::Relaxed);
    let _count = ConnCount(shared.store.clone());
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            debug!("handshake failed: {e}");
            return;
        }
    };
    let remote = conn.remote_address();
    let job = match tokio::time::timeout(HELLO_TIMEOUT, hello(&conn, &shared)).await {
        Ok(Ok(job)) => job,
        Ok(Err(Refusal::Auth(job))) => {
            warn!(%remote, job, "wrong job token; closing connection");
            conn.close(
                VarInt::from_u32(close::AUTH_FAILED),
                b"authentication failed",
            );
            return;
        }
        Ok(Err(Refusal::Protocol(e))) => {
            debug!(%remote, "bad hello: {e}");
            conn.close(VarInt::from_u32(close::PROTOCOL), b"bad hello");
            return;
        }
        Ok(Err(Refusal::Gone)) => return,
        Err(_) => {
            conn.close(VarInt::from_u32(close::PROTOCOL), b"no hello in time");
            return;
        }
    };
    debug!(%remote, job, "client authenticated");
    let job: Arc<str> = job.into();
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let shared = shared.clone();
                    let job = job.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        serve_stream(send, recv, &job, &shared).await;
                        drop(done);
                    });
                }
                Err(e) => {
                    debug!(%remote, "connection ended: {e}");
                    break;
                }
            },
            // Draining: accept no new operations; the endpoint closes the
            // connection once in-flight ones are done.
            _ = stop.changed() => break,
        }
    }
}

enum Refusal {
    Auth(String),
    Protocol(String),
    Gone,
}

/// Reads the hello on the first stream and checks the token.
async fn hello(conn: &Connection, shared: &Shared) -> Result<String, Refusal> {
    let (mut send, mut recv) = conn.accept_bi().await.map_err(|_| Refusal::Gone)?;
    let (header, meta) = read_head(&mut recv, 0)
        .await
        .map_err(|e| Refusal::Protocol(e.to_string()))?;
    let req = Request::parse(&header, &meta).map_err(|e| Refusal::Protocol(e.to_string()))?;
    let Request::Hello { job, token } = req else {
        return Err(Refusal::Protocol("first request is not a hello".into()));
    };
    if !shared.secret.verify(&job, &token) {
        return Err(Refusal::Auth(job));
    }
    respond(&mut send, Response::status(Status::Ok), None)
        .await
        .map_err(|_| Refusal::Gone)?;
    Ok(job)
}

/// Why reading a request head failed.
#[derive(Debug)]
enum HeadError {
    Proto(ProtoError),
    Io(String),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Proto(e) => e.fmt(f),
            HeadError::Io(e) => f.write_str(e),
        }
    }
}

/// Reads and checks a frame header, then reads its metadata.
async fn read_head(
    recv: &mut RecvStream,
    max_payload: u64,
) -> Result<(FrameHeader, Vec<u8>), HeadError> {
    let mut h = [0u8; HEADER_LEN];
    recv.read_exact(&mut h)
        .await
        .map_err(|e| HeadError::Io(e.to_string()))?;
    let header = FrameHeader::check(&h, max_payload).map_err(HeadError::Proto)?;
    let mut meta = vec![0u8; usize::from(header.meta_len)];
    recv.read_exact(&mut meta)
        .await
        .map_err(|e| HeadError::Io(e.to_string()))?;
    Ok((header, meta))
}

/// Writes a response frame and finishes the stream.
async fn respond(
    send: &mut SendStream,
    resp: Response,
    payload: Option<Bytes>,
) -> Result<(), quinn::WriteError> {
    let payload_len = payload.as_ref().map_or(0, |p| p.len() as u64);
    let mut chunks = vec![Bytes::from(resp.encode(payload_len))];
    chunks.extend(payload);
    send.write_all_chunks(&mut chunks).await?;
    send.finish()?;
    Ok(())
}

fn refusal(status: Status, msg: impl Into<String>) -> Response {
    Response {
        status,
        message: msg.into(),
    }
}

fn store_response(e: StoreError, mailbox: &str) -> Response {
    match e {
        StoreError::Evicted => refusal(Status::Evicted, format!("{mailbox} was evicted")),
        StoreError::Timeout => {
            refusal(Status::Timeout, format!("{mailbox} was not filled in time"))
        }
        StoreError::Conflict => refusal(
            Status::Conflict,
            format!("{mailbox} already holds different bytes"),
        ),
        StoreError::Full => refusal(
            Status::RelayFull,
            "no memory freed within the put's timeout",
        ),
        StoreError::JobEnded => refusal(Status::JobEnded, "job has ended"),
        StoreError::Limit(what) => refusal(Status::LimitReached, format!("too many {what}")),
        StoreError::ShuttingDown => refusal(Status::ShuttingDown, "relay is shutting down"),
    }
}

/// Serves one operation.
async fn serve_stream(mut send: SendStream, mut recv: RecvStream, job: &str, shared: &Shared) {
    let mut delivered: Option<String> = None;
    let (resp, payload) = match read_head(&mut recv, shared.max_message).await {
        Err(HeadError::Io(e)) => {
            debug!("stream ended before its request: {e}");
            return;
        }
        Err(HeadError::Proto(e)) => {
            // Refused from the header alone: tell the peer to stop sending
            // the body rather than read it.
            let _ = recv.stop(VarInt::from_u32(close::REFUSED));
            let status = match e {
                ProtoError::PayloadTooLarge { .. } => Status::TooLarge,
                _ => Status::BadRequest,
            };
            (refusal(status, e.to_string()), None)
        }
        Ok((header, meta)) => match Request::parse(&header, &meta) {
            Err(e) => {
                let _ = recv.stop(VarInt::from_u32(close::REFUSED));
                (refusal(Status::BadRequest, e.to_string()), None)
            }
            Ok(req) => {
                if let Request::Get { mailbox, .. } = &req {
                    delivered = Some(mailbox.clone());
                }
                serve_request(req, header, &mut send, &mut recv, job, shared).await
            }
        },
    };
    let ok = resp.status == Status::Ok;
    if respond(&mut send, resp, payload).await.is_err() {
        return;
    }
    // Wait for the answer to be acknowledged: a draining relay must not
    // close the connection under it, and a get's mailbox becomes evictable
    // only once the reader has it.
    let acked = tokio::time::timeout(DELIVERY_TIMEOUT, send.stopped()).await;
    if let (Ok(Ok(None)), Some(mailbox), true) = (acked, delivered, ok) {
        shared.store.mark_read(job, &mailbox);
    }
}

async fn serve_request(
    req: Request,
    header: FrameHeader,
    send: &mut SendStream,
    recv: &mut RecvStream,
    job: &str,
    shared: &Shared,
) -> (Response, Option<Bytes>) {
    let store = &shared.store;
    match req {
        Request::Hello { .. } => (refusal(Status::BadRequest, "already authenticated"), None),
        Request::EndJob => {
            store.end_job(job);
            info!(job, "job ended");
            (Response::status(Status::Ok), None)
        }
        Request::Get { mailbox, timeout } => {
            if let Err(e) = proto::check_mailbox(&mailbox) {
                return (refusal(Status::BadRequest, e.to_string()), None);
            }
            let deadline = Instant::now() + timeout;
            match store.get(job, &mailbox, deadline).await {
                Ok(bytes) => (Response::status(Status::Ok), Some(bytes)),
                Err(e) => (store_response(e, &mailbox), None),
            }
        }
        Request::Put { mailbox, timeout } => {
            let r = put(
                &mailbox,
                timeout,
                header.payload_len,
                send,
                recv,
                job,
                shared,
            )
            .await;
            if r.status != Status::Ok {
                let _ = recv.stop(VarInt::from_u32(close::REFUSED));
            }
            (r, None)
        }
    }
}

async fn put(
    mailbox: &str,
    timeout: Duration,
    len: u64,
    send: &mut SendStream,
    recv: &mut RecvStream,
    job: &str,
    shared: &Shared,
) -> Response {
    let store = &shared.store;
    if let Err(e) = proto::check_mailbox(mailbox) {
        return refusal(Status::BadRequest, e.to_string());
    }
    match store.peek(job, mailbox) {
        Err(e) => return store_response(e, mailbox),
        Ok(Some(held)) => {
            // Already filled: compare as the body streams in, holding no
            // second copy. Identical bytes are a harmless duplicate.
            if held.len() as u64 != len {
                return conflict(store, job, mailbox);
            }
            if go_ahead(send).await.is_err() {
                return refusal(Status::BadRequest, "client went away");
            }
            let same = matches_stream(recv, &held).await;
            return if same {
                Response::status(Status::Ok)
            } else {
                conflict(store, job, mailbox)
            };
        }
        Ok(None) => {}
    }
    let deadline = Instant::now() + timeout.min(MAX_PUT_WAIT);
    let reservation = match store.reserve(len, deadline).await {
        Ok(r) => r,
        Err(e) => return store_response(e, mailbox),
    };
    if go_ahead(send).await.is_err() {
        return refusal(Status::BadRequest, "client went away");
    }
    let body = match read_body(recv, len).await {
        Ok(b) => b,
        Err(e) => return refusal(Status::BadRequest, e),
    };
    match store.fill(job, mailbox, body, reservation) {
        Ok(()) => Response::status(Status::Ok),
        Err(StoreError::Conflict) => {
            warn!(
                job,
                mailbox, "conflicting put: mailbox holds different bytes"
            );
            store_response(StoreError::Conflict, mailbox)
        }
        Err(e) => store_response(e, mailbox),
    }
}

/// Tells a put's client to send its body.
async fn go_ahead(send: &mut SendStream) -> Result<(), quinn::WriteError> {
    send.write_all(&Response::status(Status::Continue).encode(0))
        .await
}

fn conflict(store: &Store, job: &str, mailbox: &str) -> Response {
    store.note_conflict();
    // Deterministic pipelines never do this: it is a bug worth a loud log.
    warn!(
        job,
        mailbox, "conflicting put: mailbox holds different bytes"
    );
    store_response(StoreError::Conflict, mailbox)
}

/// Whether the rest of the stream equals `held`, byte for byte.
async fn matches_stream(recv: &mut RecvStream, held: &[u8]) -> bool {
    let mut off = 0usize;
    loop {
        match recv.read_chunk(usize::MAX, true).await {
            Ok(Some(chunk)) => {
                let end = off + chunk.bytes.len();
                if end > held.len() || held[off..end] != chunk.bytes[..] {
                    return false;
                }
                off = end;
            }
            Ok(None) => return off == held.len(),
            Err(_) => return false,
        }
    }
}

/// Reads exactly `len` bytes of body into one contiguous buffer.
async fn read_body(recv: &mut RecvStream, len: u64) -> Result<Bytes, String> {
    let len = usize::try_from(len).map_err(|_| "body too large for this machine".to_string())?;
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        match recv.read_chunk(len - buf.len(), true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(format!("body ended after {} of {len} bytes", buf.len())),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(Bytes::from(buf))
}
