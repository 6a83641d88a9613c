//! The task's link to the relay: connected in the background, used while
//! it works, given up on (the store carries everything then) when it does
//! not.

use std::sync::Arc;

use excam_rendezvous::{ClientConfig, ClientError, Fingerprint, RelayClient, ServerAuth};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::{setup_err, TaskError, RELAY_RETRY};
use crate::task::RelaySpec;

/// The relay as the task sees it: connecting in the background, connected,
/// or given up on (the store carries everything then).
enum RelayState {
    None,
    Connecting(JoinHandle<Result<RelayClient, ClientError>>),
    Ready(Arc<RelayClient>),
}

pub(super) struct RelayLink {
    state: tokio::sync::Mutex<RelayState>,
    addr: String,
}

impl RelayLink {
    /// Starts connecting (the handshake overlaps reading the input and
    /// phase 1).
    pub(super) fn start(spec: Option<&RelaySpec>) -> Result<RelayLink, TaskError> {
        let Some(spec) = spec else {
            return Ok(RelayLink {
                state: tokio::sync::Mutex::new(RelayState::None),
                addr: String::new(),
            });
        };
        let fp = Fingerprint::parse(&spec.fingerprint)
            .map_err(|e| setup_err(format!("relay fingerprint: {e}")))?;
        let mut cfg = ClientConfig::new(
            spec.addr.clone(),
            ServerAuth::Pinned(fp),
            spec.job.clone(),
            spec.token.clone(),
        );
        cfg.retry_for = RELAY_RETRY;
        let handle = tokio::spawn(RelayClient::connect(cfg));
        Ok(RelayLink {
            state: tokio::sync::Mutex::new(RelayState::Connecting(handle)),
            addr: spec.addr.clone(),
        })
    }

    /// The client, once connected; `None` if there is no relay or it was
    /// given up on, for whatever reason: a refused token or certificate too
    /// (a relay restarted with a new identity), since the store has every
    /// state the relay would have passed on.
    pub(super) async fn client(&self) -> Option<Arc<RelayClient>> {
        let mut state = self.state.lock().await;
        let joined = match &mut *state {
            RelayState::None => return None,
            RelayState::Ready(c) => return Some(c.clone()),
            RelayState::Connecting(h) => h.await,
        };
        let result = match joined {
            Ok(Ok(c)) => {
                debug!(relay = %self.addr, "relay connected");
                let c = Arc::new(c);
                *state = RelayState::Ready(c.clone());
                Some(c)
            }
            Ok(Err(e @ (ClientError::Auth | ClientError::Tls(_)))) => {
                // A relay restarted with a new certificate or secret: the
                // store carries every state too, so the task goes on
                // without it (slower, never wrong: states are checked by
                // digest whichever way they come).
                warn!(
                    relay = %self.addr,
                    "relay refused this task or is not the one pinned ({e}); using the store alone"
                );
                *state = RelayState::None;
                None
            }
            Ok(Err(e)) => {
                warn!(relay = %self.addr, "relay unusable, using the store alone: {e}");
                *state = RelayState::None;
                None
            }
            Err(e) => {
                warn!(relay = %self.addr, "relay connection task failed: {e}");
                *state = RelayState::None;
                None
            }
        };
        result
    }

    /// Gives up on the relay for the rest of the task.
    pub(super) async fn drop_relay(&self, why: &str) {
        let mut state = self.state.lock().await;
        if !matches!(*state, RelayState::None) {
            warn!(relay = %self.addr, "relay unusable, using the store alone: {why}");
            if let RelayState::Ready(c) = &*state {
                c.close().await;
            }
            *state = RelayState::None;
        }
    }

    pub(super) async fn close(&self) {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, RelayState::None) {
            RelayState::Ready(c) => c.close().await,
            RelayState::Connecting(h) => h.abort(),
            RelayState::None => {}
        }
    }
}
