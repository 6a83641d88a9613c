//! The relay through which excam workers hand each other decoder states.
//!
//! Workers that accept no inbound connections (Lambda functions) meet here:
//! one puts bytes in a named mailbox of its job, another gets them. The
//! relay moves opaque bytes over QUIC, authenticates each connection with a
//! per-job HMAC token, bounds its memory, and survives restarts from the
//! clients' point of view (they reconnect and retry; every operation is
//! idempotent).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use excam_rendezvous::{ClientConfig, Relay, RelayClient, RelayConfig, RelaySecret, ServerAuth};
//! use std::time::Duration;
//!
//! let secret = RelaySecret::generate();
//! let relay = Relay::bind("127.0.0.1:0".parse()?, RelayConfig::new(secret.clone()))?;
//! let (addr, fp) = (relay.local_addr(), relay.fingerprint());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(relay.run(async { let _ = stopped.await; }));
//!
//! let cfg = ClientConfig::new(addr.to_string(), ServerAuth::Pinned(fp), "job-1", secret.token("job-1"));
//! let client = RelayClient::connect(cfg).await?;
//! client.put("state/17/final", bytes::Bytes::from_static(b"state")).await?;
//! let got = client.get("state/17/final", Duration::from_secs(5)).await?;
//! assert_eq!(&got[..], b"state");
//! let _ = stop.send(());
//! server.await??;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod auth;
pub mod bench;
mod client;
pub mod error;
pub mod net;
pub mod proto;
mod server;
mod store;
pub mod tls;
pub mod transport;

pub use auth::{RelaySecret, SECRET_ENV};
pub use bytes::Bytes;
pub use client::{client_transport, ClientConfig, RelayClient};
pub use error::{ClientError, ConfigError, RelayError};
pub use server::{
    MemoryBudget, Relay, RelayConfig, StatsHandle, CONNECTION_OVERHEAD, INCOMING_BUFFER,
    PREAUTH_RECEIVE_WINDOW,
};
pub use store::RelayStats;
pub use tls::{Fingerprint, ServerAuth, TlsIdentity};

/// Raises the soft open-file limit to the hard one (a client per endpoint
/// needs a socket each: 2,000 clients need 2,000 descriptors). Returns the
/// new soft limit.
///
/// # Errors
/// The OS error if the limits cannot be read or set.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
