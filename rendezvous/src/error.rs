//! Typed errors of the relay and its client.

use std::io;

use thiserror::Error;

use crate::proto::ProtoError;

/// Problems with configuration: secrets, certificates, addresses.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {0}: {1}")]
    Io(String, #[source] io::Error),
    /// The secret is too short to resist guessing.
    #[error("secret of {0} bytes is too short (at least 16 bytes)")]
    WeakSecret(usize),
    /// A PEM file held no usable certificate or key.
    #[error("bad certificate or key: {0}")]
    BadPem(String),
    /// rustls refused the certificate, key or settings.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A certificate could not be generated.
    #[error("certificate generation: {0}")]
    CertGen(#[from] rcgen::Error),
    /// A fingerprint is not 64 hex digits (colons allowed).
    #[error("fingerprint must be 64 hex digits (SHA-256), got {0:?}")]
    BadFingerprint(String),
    /// The relay address did not resolve.
    #[error("cannot resolve relay address {0:?}")]
    BadAddress(String),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// A job id or mailbox name is not acceptable.
    #[error(transparent)]
    Proto(#[from] ProtoError),
}

/// Errors of the relay server.
#[derive(Debug, Error)]
pub enum RelayError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The UDP socket could not be bound.
    #[error("cannot bind {0}: {1}")]
    Bind(std::net::SocketAddr, #[source] io::Error),
}

/// Errors a [`RelayClient`](crate::RelayClient) operation returns.
///
/// `Evicted`, `Timeout`, `Conflict`, `RelayFull`, `TooLarge`, `JobEnded` and
/// `LimitReached` are answers of the relay and final; connection trouble is
/// retried internally and surfaces only as `Unavailable` once the retry
/// budget is spent.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The relay refused the job token; retrying cannot help.
    #[error("relay refused the job token")]
    Auth,
    /// The mailbox was filled but the relay has dropped it; read the durable store.
    #[error("mailbox {0:?} was evicted")]
    Evicted(String),
    /// The mailbox was not filled in time.
    #[error("timed out waiting for mailbox {0:?}")]
    Timeout(String),
    /// The mailbox holds different bytes: the pipeline is not deterministic.
    #[error("mailbox {0:?} already holds different bytes")]
    Conflict(String),
    /// The relay had no memory for the put within its timeout.
    #[error("relay is full: {0}")]
    RelayFull(String),
    /// The message exceeds the relay's size limit.
    #[error("message too large: {0}")]
    TooLarge(String),
    /// The job has ended.
    #[error("job has ended")]
    JobEnded,
    /// The relay holds as many jobs or mailboxes as it may.
    #[error("relay limit reached: {0}")]
    LimitReached(String),
    /// The relay found the request malformed.
    #[error("relay refused the request: {0}")]
    BadRequest(String),
    /// The relay stayed unreachable for the whole retry budget.
    #[error("relay unreachable: {0}")]
    Unavailable(String),
    /// The relay broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtoError),
    /// The TLS handshake failed, e.g. the relay's certificate does not
    /// match the pinned fingerprint; retrying cannot help.
    #[error("TLS handshake with the relay failed: {0}")]
    Tls(String),
    /// The client is misconfigured.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
