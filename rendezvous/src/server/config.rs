//! The relay's settings and how its memory limit is split among
//! connections, handshakes and mailboxes.

use std::time::Duration;

use quinn::VarInt;

use crate::auth::RelaySecret;
use crate::error::ConfigError;
use crate::tls::TlsIdentity;

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
    /// Every mailbox has a single reader (as excam's hand-offs do): a
    /// mailbox is dropped as soon as its reader has acknowledged its
    /// contents, instead of being kept (evictable) until memory is needed,
    /// the job ends or its TTL passes. A later get of it answers `Evicted`
    /// at once, so a retried reader goes to its durable copy; a repeated
    /// put of it fills it again. Default false.
    pub drop_on_read: bool,
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
            drop_on_read: false,
        }
    }
}
