//! The relay server: accepts QUIC connections, authenticates each for one
//! job, and serves one operation per bidirectional stream.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::auth::RelaySecret;
use crate::error::{ConfigError, RelayError};
use crate::proto::{self, close, FrameHeader, ProtoError, Request, Response, Status, HEADER_LEN};
use crate::store::{Limits, RelayStats, Store, StoreError};
use crate::tls::{server_crypto, Fingerprint, TlsIdentity};

mod config;

pub use config::{
    MemoryBudget, RelayConfig, CONNECTION_OVERHEAD, INCOMING_BUFFER, PREAUTH_RECEIVE_WINDOW,
};

/// Longest wait for memory a put may ask for.
const MAX_PUT_WAIT: Duration = Duration::from_secs(3600);
/// How long a finished answer may take to be acknowledged before its
/// operation counts as done for draining.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    store: Arc<Store>,
    secret: RelaySecret,
    max_message: u64,
    cfg: RelayConfig,
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
        // A put that could never be held is refused as a setting, not per put.
        let budget = cfg.memory_budget()?;
        if cfg.max_connections == 0 || cfg.max_unauthenticated == 0 {
            return Err(ConfigError::Invalid("connection limits must be at least 1".into()).into());
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
        // Connection attempts not yet accepted: quinn's defaults (65,536 of
        // them, 10 MiB each, 100 MiB in all) dwarf the pre-auth budget.
        server
            .max_incoming(cfg.max_unauthenticated)
            .incoming_buffer_size(INCOMING_BUFFER)
            .incoming_buffer_size_total(INCOMING_BUFFER * cfg.max_unauthenticated as u64);
        let endpoint = crate::net::endpoint(addr, cfg.socket_buffer, Some(server))
            .map_err(|e| RelayError::Bind(addr, e))?;
        cfg.identity = Some(identity);
        let store = Arc::new(Store::new(Limits {
            memory: budget.mailboxes,
            job_share: budget.job_share,
            max_waiters_per_mailbox: cfg.max_waiters_per_mailbox,
            ttl: cfg.ttl,
            max_jobs: cfg.max_jobs,
            max_mailboxes: cfg.max_mailboxes,
            max_mailboxes_per_job: cfg.max_mailboxes_per_job,
            drop_on_read: cfg.drop_on_read,
        }));
        Ok(Relay {
            endpoint,
            shared: Arc::new(Shared {
                store,
                secret: cfg.secret.clone(),
                max_message: cfg.max_message,
                cfg: cfg.clone(),
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
        let preauth = Arc::new(PreAuth::new(cfg.max_unauthenticated));
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
                    // Under load, make new peers prove their address first:
                    // a retry costs the relay one stateless packet.
                    if preauth.len() * 2 >= cfg.max_unauthenticated
                        && !incoming.remote_address_validated()
                        && incoming.may_retry()
                    {
                        let _ = incoming.retry();
                        continue;
                    }
                    let ticket = preauth.admit();
                    let shared = shared.clone();
                    let stop = stop_rx.clone();
                    let done = done_tx.clone();
                    let conn_limit = conn_limit.clone();
                    tokio::spawn(async move {
                        serve_connection(incoming, ticket, conn_limit, shared, stop, done).await;
                    });
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

/// Slots for connections that have not authenticated yet. Full, it drops
/// the oldest for a newcomer: a flood then has to outpace every honest
/// handshake to lock anyone out, and each of its connections lives only as
/// long as `max_unauthenticated` newer ones take to arrive.
struct PreAuth {
    max: usize,
    slots: Mutex<PreAuthSlots>,
}

#[derive(Default)]
struct PreAuthSlots {
    next: u64,
    /// Oldest first; dropping the sender tells the connection to go.
    open: BTreeMap<u64, oneshot::Sender<()>>,
}

/// One connection's pre-authentication slot; dropping it frees the slot.
struct Ticket {
    table: Arc<PreAuth>,
    id: u64,
    /// Resolves when the slot is taken away for a newer connection.
    evicted: oneshot::Receiver<()>,
}

impl PreAuth {
    fn new(max: usize) -> PreAuth {
        PreAuth {
            max,
            slots: Mutex::new(PreAuthSlots::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PreAuthSlots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().open.len()
    }

    fn admit(self: &Arc<Self>) -> Ticket {
        let (tx, rx) = oneshot::channel();
        let mut s = self.lock();
        while s.open.len() >= self.max {
            // Dropping the sender resolves the oldest connection's receiver.
            s.open.pop_first();
        }
        s.next += 1;
        let id = s.next;
        s.open.insert(id, tx);
        Ticket {
            table: self.clone(),
            id,
            evicted: rx,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.table.lock().open.remove(&self.id);
    }
}

/// Keeps a connection counter right however the task ends.
struct Counted<'a>(&'a AtomicU64);

impl<'a> Counted<'a> {
    fn new(c: &'a AtomicU64) -> Counted<'a> {
        c.fetch_add(1, Ordering::Relaxed);
        Counted(c)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a connection did not get past its hello.
enum Admission {
    Refused(Refusal),
    Handshake(quinn::ConnectionError),
    /// Its pre-auth slot went to a newer connection.
    Evicted,
    TimedOut,
}

async fn serve_connection(
    incoming: quinn::Incoming,
    mut ticket: Ticket,
    conn_limit: Arc<Semaphore>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let unauthenticated = Counted::new(&shared.store.unauthenticated);
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            debug!("cannot accept connection: {e}");
            return;
        }
    };
    // The connection is held outside the handshake future so that a
    // timed-out or evicted one can be closed with a reason.
    let mut held: Option<Connection> = None;
    let admitted = {
        let handshake = async {
            let conn = connecting.await.map_err(Admission::Handshake)?;
            held = Some(conn.clone());
            let (job, send) = hello(&conn, &shared).await.map_err(Admission::Refused)?;
            Ok::<_, Admission>((conn, job, send))
        };
        tokio::select! {
            r = tokio::time::timeout(shared.cfg.hello_timeout, handshake) => {
                r.unwrap_or(Err(Admission::TimedOut))
            }
            _ = &mut ticket.evicted => Err(Admission::Evicted),
        }
    };
    let (conn, job, mut hello_send) = match admitted {
        Ok(ok) => ok,
        Err(why) => {
            let Some(conn) = held else {
                if let Admission::Handshake(e) = why {
                    debug!("handshake failed: {e}");
                }
                return;
            };
            let remote = conn.remote_address();
            match why {
                Admission::Refused(Refusal::Auth(job)) => {
                    warn!(%remote, job, "wrong job token; closing connection");
                    conn.close(
                        VarInt::from_u32(close::AUTH_FAILED),
                        b"authentication failed",
                    );
                }
                Admission::Refused(Refusal::Protocol(e)) => {
                    debug!(%remote, "bad hello: {e}");
                    conn.close(VarInt::from_u32(close::PROTOCOL), b"bad hello");
                }
                Admission::Refused(Refusal::Gone) | Admission::Handshake(_) => {}
                Admission::TimedOut => {
                    conn.close(VarInt::from_u32(close::PROTOCOL), b"no hello in time");
                }
                Admission::Evicted => {
                    conn.close(
                        VarInt::from_u32(close::CONNECTION_LIMIT),
                        b"too many unauthenticated connections",
                    );
                }
            }
            return;
        }
    };
    let remote = conn.remote_address();
    // Only now does the connection take a real slot and real windows.
    let Ok(_permit) = conn_limit.try_acquire_owned() else {
        debug!(%remote, "connection limit reached; refusing");
        conn.close(
            VarInt::from_u32(close::CONNECTION_LIMIT),
            b"relay holds its maximum of connections",
        );
        return;
    };
    drop(ticket);
    drop(unauthenticated);
    let _count = Counted::new(&shared.store.connections);
    conn.set_receive_window(VarInt::from_u32(shared.cfg.connection_window));
    conn.set_max_concurrent_bi_streams(VarInt::from_u32(shared.cfg.max_streams_per_connection));
    let answered = tokio::time::timeout(
        shared.cfg.response_timeout,
        respond(&mut hello_send, Response::status(Status::Ok), None),
    )
    .await;
    if !matches!(answered, Ok(Ok(()))) {
        return;
    }
    debug!(%remote, job, "client authenticated");
    let job: Arc<str> = job.into();
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let shared = shared.clone();
                    let job = job.clone();
                    let done = done.clone();
                    let conn = conn.clone();
                    tokio::spawn(async move {
                        // A dead connection cancels its operations: a
                        // waiting get leaves its mailbox, a put releases
                        // its reservation, an answer its buffers.
                        tokio::select! {
                            _ = serve_stream(send, recv, &job, &shared) => {}
                            _ = conn.closed() => {}
                        }
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

/// Reads the hello on the first stream and checks the token; the caller
/// answers on the returned stream once it has given the connection a slot.
async fn hello(conn: &Connection, shared: &Shared) -> Result<(String, SendStream), Refusal> {
    let (send, mut recv) = conn.accept_bi().await.map_err(|_| Refusal::Gone)?;
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
    Ok((job, send))
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
        StoreError::JobShare { held, share } => refusal(
            Status::RelayFull,
            format!(
                "job's share of relay memory is full: {held} bytes unread or \
                 being received of a {share}-byte share; read or end the job's \
                 mailboxes to free it"
            ),
        ),
        StoreError::JobEnded => refusal(Status::JobEnded, "job has ended"),
        StoreError::Limit(what) => refusal(Status::LimitReached, format!("too many {what}")),
        StoreError::ShuttingDown => refusal(Status::ShuttingDown, "relay is shutting down"),
    }
}

/// Serves one operation.
async fn serve_stream(mut send: SendStream, mut recv: RecvStream, job: &str, shared: &Shared) {
    let mut delivered: Option<String> = None;
    let head = tokio::time::timeout(
        shared.cfg.body_timeout,
        read_head(&mut recv, shared.max_message),
    )
    .await
    .unwrap_or_else(|_| Err(HeadError::Io("no request in time".into())));
    let (resp, payload) = match head {
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
    // A reader that does not read must not hold the answer (and the send
    // buffer behind it) for ever.
    let limit = shared.cfg.response_timeout;
    match tokio::time::timeout(limit, respond(&mut send, resp, payload)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return,
        Err(_) => {
            debug!(
                job,
                "answer not taken within {limit:?}; resetting the stream"
            );
            let _ = send.reset(VarInt::from_u32(close::REFUSED));
            return;
        }
    }
    // Wait for the answer to be acknowledged: a draining relay must not
    // close the connection under it, and a get's mailbox becomes evictable
    // (or is dropped, with `drop_on_read`) only once the reader has it.
    let acked = tokio::time::timeout(DELIVERY_TIMEOUT.min(limit), send.stopped()).await;
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
            let Ok(same) =
                tokio::time::timeout(shared.cfg.body_timeout, matches_stream(recv, &held)).await
            else {
                return body_late(shared);
            };
            return if same {
                Response::status(Status::Ok)
            } else {
                conflict(store, job, mailbox)
            };
        }
        Ok(None) => {}
    }
    let deadline = Instant::now() + timeout.min(MAX_PUT_WAIT);
    let reservation = match store.reserve(job, len, deadline).await {
        Ok(r) => r,
        Err(e) => return store_response(e, mailbox),
    };
    if go_ahead(send).await.is_err() {
        return refusal(Status::BadRequest, "client went away");
    }
    // The reservation is released (dropped) on every early return.
    let body = match tokio::time::timeout(shared.cfg.body_timeout, read_body(recv, len)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return refusal(Status::BadRequest, e),
        Err(_) => return body_late(shared),
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

fn body_late(shared: &Shared) -> Response {
    refusal(
        Status::BadRequest,
        format!(
            "put body did not arrive within {:?}",
            shared.cfg.body_timeout
        ),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_budget_is_as_documented() {
        let cfg = RelayConfig::new(RelaySecret::generate());
        let b = cfg.memory_budget().unwrap();
        assert_eq!(b.per_connection, 320 << 10);
        assert_eq!(b.per_handshake, 84 << 10);
        assert_eq!(b.connections, 2048 * (320 << 10) + 256 * (84 << 10));
        assert_eq!(b.connections >> 20, 661);
        assert_eq!(b.mailboxes, cfg.memory_limit - b.connections);
        assert_eq!(b.mailboxes >> 20, 1387);
        assert_eq!(b.job_share, b.mailboxes / 2);
        assert!(b.connections + b.mailboxes <= cfg.memory_limit);
    }

    #[test]
    fn budget_refuses_connections_that_do_not_fit() {
        let mut cfg = RelayConfig::new(RelaySecret::generate());
        cfg.memory_limit = 1 << 30;
        cfg.max_connections = 8192;
        assert!(cfg.memory_budget().is_err());
        cfg.max_connections = 1024;
        cfg.max_message = 1 << 30;
        assert!(cfg.memory_budget().is_err());
        cfg.max_message = 256 << 20;
        assert!(cfg.memory_budget().is_ok());
    }
}
