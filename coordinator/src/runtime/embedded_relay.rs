//! The relay the coordinator runs inside itself when no external one is
//! given.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use excam_rendezvous::{Relay, RelayConfig, RelaySecret, TlsIdentity};

use super::error::RelayStartError;

/// The embedded relay, restartable (tests) with the same address,
/// certificate and secret.
pub(super) struct EmbeddedRelay {
    pub(super) addr: SocketAddr,
    pub(super) identity: TlsIdentity,
    pub(super) secret: RelaySecret,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl EmbeddedRelay {
    pub(super) fn start(listen: SocketAddr) -> Result<EmbeddedRelay, RelayStartError> {
        let identity = TlsIdentity::self_signed()?;
        let secret = RelaySecret::generate();
        let mut r = EmbeddedRelay {
            addr: listen,
            identity,
            secret,
            stop: None,
            task: None,
        };
        r.bind()?;
        Ok(r)
    }

    pub(super) fn bind(&mut self) -> Result<(), RelayStartError> {
        let mut cfg = RelayConfig::new(self.secret.clone());
        cfg.identity = Some(self.identity.clone());
        // Each hand-off has one reader (the successor's phase 2 or 3), and
        // the store keeps a durable copy for retries: free each state as
        // soon as it is read, so the relay holds only the states in flight
        // instead of every state of the job.
        cfg.drop_on_read = true;
        let relay = Relay::bind(self.addr, cfg).map_err(RelayStartError::Bind)?;
        self.addr = relay.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(async move {
            let _ = relay
                .run(async {
                    let _ = rx.await;
                })
                .await;
        }));
        Ok(())
    }

    pub(super) async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            // Draining may wait for idle clients; a stopped relay is all a
            // restart or the job's end needs.
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    pub(super) async fn restart(&mut self) -> Result<(), RelayStartError> {
        self.stop().await;
        // quinn releases the UDP port only when its endpoint driver task has
        // seen the last handle go: retry the bind for a while.
        let t = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.bind() {
                Ok(()) => return Ok(()),
                Err(e) if t.elapsed() > Duration::from_secs(10) => return Err(e),
                Err(_) => {}
            }
        }
    }
}
