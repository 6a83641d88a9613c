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

/// Longest wait for memory a put may ask for.
const MAX_PUT_WAIT: Duration = Duration::from_secs(3600);
/// How long a finished answer may take to be acknowledged before its
/// operation counts as done for draining.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Allowance per connection for what quinn and rustls hold besides the
/// flow-control windows: connection and stream state, TLS state, crypto
/// and packet buffers, the serving tasks. An estimate (measured RSS under
/// the hostile-client test stays well inside it), not a bound quinn enforces.
pub const CONNECTION_OVERHEAD: u64 = 64 << 10;
/// Connection receive window before the hello succeeds: room for a hello
/// (a 16-byte header and at most 260 bytes of job and token) and nothing
/// much else, so an unauthenticated peer cannot park data on the relay.
pub const PREAUTH_RECEIVE_WINDOW: u32 = 4 << 10;
/// Bytes quinn may buffer for one connection attempt not yet accepted
/// (`ServerConfig::incoming_buffer_size`; quinn's default is 10 MiB).
pub const INCOMING_BUFFER: u64 = 16 << 10;

/// How the relay's memory limit is split. Every byte the relay holds on
/// behalf of a peer falls in one of these parts, each bounded by
/// construction rather than counted after the fact:
///
/// ```text
/// per_connection   = connection_window + send_window + CONNECTION_OVERHEAD
/// per_handshake    = PREAUTH_RECEIVE_WINDOW + INCOMING_BUFFER + CONNECTION_OVERHEAD
/// connections      = max_connections × per_connection
///                  + max_unauthenticated × per_handshake
/// mailboxes        = memory_limit − connections
/// ```
///
/// * QUIC flow control bounds what a peer can make the relay buffer: at
///   most the connection receive window of unread stream data (quinn's
///   per-stream windows are all capped by it), so a put body sent before
///   its `Continue`, or a stream the relay has not read yet, costs at most
///   that. Before authentication the window is [`PREAUTH_RECEIVE_WINDOW`]
///   and one stream; the hello raises it with `Connection::set_receive_window`.
/// * Answers wait in quinn's send buffer, bounded per connection by
///   `send_window` (quinn refuses writes past it), and a reader that never
///   reads is reset after `response_timeout`.
/// * Mailbox contents plus reservations of puts being received are capped
///   at `mailboxes` by the store; one job at most `job_share` of it.
///
/// Not counted: kernel UDP socket buffers (kernel memory, not the relay's
/// RSS) and the allocator's own slack, which the stated overhead covers.
///
/// With the defaults (2 GiB, 2,048 connections with 128 KiB windows each
/// way, 256 handshakes): 2,048 × 320 KiB = 640 MiB, 256 × 84 KiB = 21 MiB,
/// leaving 1,387 MiB for mailboxes and a 693 MiB share per job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes one authenticated connection may hold.
    pub per_connection: u64,
    /// Bytes one handshaking or unauthenticated connection may hold.
    pub per_handshake: u64,
    /// All connections together, at their limits.
    pub connections: u64,
    /// The store's cap: mailbox contents plus reservations.
    pub mailboxes: u64,
    /// One job's share of `mailboxes`.
    pub job_share: u64,
}

/// Settings of a relay. [`RelayConfig::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Secret that job tokens are minted from.
    pub secret: RelaySecret,
    /// Certificate and key; `None` makes a self-signed certificate at bind.
    pub identity: Option<TlsIdentity>,
    /// Cap on everything the relay holds for its peers: mailboxes,
    /// reservations and every connection's buffers; split as
    /// [`MemoryBudget`] says. Default 2 GiB.
    pub memory_limit: u64,
    /// Cap on one job's unread mailbox contents plus reservations; `None`
    /// is half of the mailbox part of the budget. A put over it waits for
    /// the job's own readers, then fails with a message naming the share.
    pub job_share: Option<u64>,
    /// Largest message accepted. Default 256 MiB.
    pub max_message: u64,
    /// A mailbox unused this long is dropped. Default 600 s.
    pub ttl: Duration,
    /// Concurrent authenticated connections. A slot is taken only after a
    /// good hello. Default 2048.
    pub max_connections: usize,
    /// Concurrent handshaking or not yet authenticated connections. When
    /// they are all taken, the oldest is dropped for the newcomer, so a
    /// flood cannot hold them against honest clients; past half of them,
    /// new peers must first prove their address (QUIC retry). Default 256.
    pub max_unauthenticated: usize,
    /// How long a new connection has to finish its handshake and hello.
    /// Default 3 s.
    pub hello_timeout: Duration,
    /// How long a put's body may take to arrive after its `Continue`; past
    /// it the put is dropped and its reservation released. Default 60 s.
    pub body_timeout: Duration,
    /// How long an answer may take to be written and acknowledged; a
    /// reader that does not read is reset past it. Default 60 s.
    pub response_timeout: Duration,
    /// Gets waiting on one mailbox at once. Default 64.
    pub max_waiters_per_mailbox: usize,
    /// Jobs with state on the relay. Default 1024.
    pub max_jobs: usize,
    /// Mailboxes (filled or awaited) across all jobs. Default 1,000,000.
    pub max_mailboxes: usize,
    /// Mailboxes per job. Default 100,000.
    pub max_mailboxes_per_job: usize,
    /// Concurrent operations per connection. Default 64.
    pub max_streams_per_connection: u32,
    /// Per-stream QUIC receive window; at most `connection_window`.
    /// Default 128 KiB.
    pub stream_receive_window: u32,
    /// QUIC receive window of an authenticated connection, all its streams
    /// together: the most unread data a peer can park on the relay. Bodies
    /// are sent only after the relay has reserved memory for them (the
    /// `Continue` answer) and are read at once, so a well-behaved client
    /// never fills it. Default 128 KiB.
    pub connection_window: u32,
    /// Bytes of answers quinn may buffer per connection before they are
    /// acknowledged. Default 128 KiB.
    pub send_window: u32,
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
    ///
    /// These are the settings of a connection *before* its hello: one
    /// stream and a [`PREAUTH_RECEIVE_WINDOW`] connection window. The relay
    /// raises both (to `max_streams_per_connection` and `connection_window`)
    /// once the hello succeeds; a raw baseline that never says hello should
    /// use [`RelayConfig::authenticated_transport`].
    pub fn transport(&self) -> Result<quinn::TransportConfig, ConfigError> {
        let mut t = self.authenticated_transport()?;
        t.max_concurrent_bidi_streams(VarInt::from_u32(1))
            .receive_window(VarInt::from_u32(PREAUTH_RECEIVE_WINDOW));
        Ok(t)
    }

    /// The transport settings of an authenticated connection. Puts never
    /// park in the window while waiting for memory (their bodies follow
    /// `Continue`), so a window smaller than streams × stream window does
    /// not block gets behind waiting puts.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] if a window or timeout is out of range.
    pub fn authenticated_transport(&self) -> Result<quinn::TransportConfig, ConfigError> {
        if self.stream_receive_window > self.connection_window {
            return Err(ConfigError::Invalid(format!(
                "stream receive window {} exceeds connection window {}",
                self.stream_receive_window, self.connection_window
            )));
        }
        let mut transport = crate::transport::base_transport();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_streams_per_connection))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.connection_window))
            .send_window(u64::from(self.send_window))
            .max_idle_timeout(Some(
                self.idle_timeout
                    .try_into()
                    .map_err(|_| ConfigError::Invalid("idle timeout out of range".into()))?,
            ));
        Ok(transport)
    }

    /// How [`memory_limit`](Self::memory_limit) is split; see [`MemoryBudget`].
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] if the connections' buffers alone exceed
    /// the limit or leave no room for one message of `max_message` bytes.
    pub fn memory_budget(&self) -> Result<MemoryBudget, ConfigError> {
        let per_connection =
            u64::from(self.connection_window) + u64::from(self.send_window) + CONNECTION_OVERHEAD;
        let per_handshake =
            u64::from(PREAUTH_RECEIVE_WINDOW) + INCOMING_BUFFER + CONNECTION_OVERHEAD;
        let connections = (self.max_connections as u64)
            .saturating_mul(per_connection)
            .saturating_add((self.max_unauthenticated as u64).saturating_mul(per_handshake));
        let mailboxes = self.memory_limit.checked_sub(connections).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "memory limit {} is below what {} connections and {} handshakes may buffer ({connections})",
                self.memory_limit, self.max_connections, self.max_unauthenticated
            ))
        })?;
        if self.max_message > mailboxes {
            return Err(ConfigError::Invalid(format!(
                "max message {} exceeds the {mailboxes} bytes left for mailboxes \
                 (memory limit {} minus {connections} of connection buffers)",
                self.max_message, self.memory_limit
            )));
        }
        let job_share = self.job_share.unwrap_or(mailboxes / 2).min(mailboxes);
        Ok(MemoryBudget {
            per_connection,
            per_handshake,
            connections,
            mailboxes,
            job_share,
        })
    }

    /// Defaults as documented on each field.
    pub fn new(secret: RelaySecret) -> RelayConfig {
        RelayConfig {
            secret,
            identity: None,
            memory_limit: 2 << 30,
            job_share: None,
            max_message: 256 << 20,
            ttl: Duration::from_secs(600),
            max_connections: 2048,
            max_unauthenticated: 256,
            hello_timeout: Duration::from_secs(3),
            body_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(60),
            max_waiters_per_mailbox: 64,
            max_jobs: 1024,
            max_mailboxes: 1_000_000,
            max_mailboxes_per_job: 100_000,
            max_streams_per_connection: 64,
            stream_receive_window: 128 << 10,
            connection_window: 128 << 10,
            send_window: 128 << 10,
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
    // only once the reader has it.
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
