//! Helpers shared by the relay's integration tests: an in-process relay on a
//! loopback port that can be stopped and restarted on the same address.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use excam_rendezvous::{
    ClientConfig, Fingerprint, Relay, RelayConfig, RelayError, RelaySecret, ServerAuth,
    StatsHandle, TlsIdentity,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every test runs under this bound so a hang fails instead of stalling CI.
pub const TEST_BOUND: Duration = Duration::from_secs(60);

/// Runs a test body under [`TEST_BOUND`].
pub async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_BOUND, f)
        .await
        .expect("test exceeded its time bound");
}

/// Sets the relay's mailbox cap to `cap` bytes: few connections (so their
/// buffers take little of the memory limit), the limit at `cap` plus those
/// buffers, and the whole cap as one job's share.
pub fn mailbox_cap(c: &mut RelayConfig, cap: u64) {
    c.max_connections = 8;
    c.max_unauthenticated = 8;
    c.memory_limit = u64::MAX;
    c.max_message = c.max_message.min(cap);
    let conns = c.memory_budget().unwrap().connections;
    c.memory_limit = cap + conns;
    c.job_share = Some(cap);
    assert_eq!(c.memory_budget().unwrap().mailboxes, cap);
}

pub fn secret() -> RelaySecret {
    RelaySecret::new(*b"test-secret-0123456789").unwrap()
}

/// A relay running in this process.
pub struct TestRelay {
    pub addr: SocketAddr,
    pub fingerprint: Fingerprint,
    pub secret: RelaySecret,
    pub identity: TlsIdentity,
    pub stats: StatsHandle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RelayError>>,
}

impl TestRelay {
    /// Starts a relay on `127.0.0.1:0` with a config adjusted by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut RelayConfig)) -> TestRelay {
        let mut cfg = RelayConfig::new(secret());
        cfg.identity = Some(TlsIdentity::self_signed().unwrap());
        tweak(&mut cfg);
        Self::start_at("127.0.0.1:0".parse().unwrap(), cfg).await
    }

    /// Starts a relay at `addr`, retrying the bind briefly in case the
    /// previous relay's socket is still being released.
    pub async fn start_at(addr: SocketAddr, cfg: RelayConfig) -> TestRelay {
        let identity = cfg.identity.clone().expect("tests pass an identity");
        let secret = cfg.secret.clone();
        let mut tries = 0;
        let relay = loop {
            match Relay::bind(addr, cfg.clone()) {
                Ok(r) => break r,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot bind {addr}: {e}"),
            }
        };
        let (stop, stopped) = oneshot::channel();
        let addr = relay.local_addr();
        let fingerprint = relay.fingerprint();
        let stats = relay.stats();
        let task = tokio::spawn(relay.run(async move {
            let _ = stopped.await;
        }));
        TestRelay {
            addr,
            fingerprint,
            secret,
            identity,
            stats,
            stop: Some(stop),
            task,
        }
    }

    /// Stops the relay and waits for its drain to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }

    /// A client configuration for `job`, pinned to this relay, with quick
    /// retries so fault tests finish fast.
    pub fn client(&self, job: &str) -> ClientConfig {
        let mut c = ClientConfig::new(
            self.addr.to_string(),
            ServerAuth::Pinned(self.fingerprint),
            job,
            self.secret.token(job),
        );
        c.backoff_initial = Duration::from_millis(20);
        c.backoff_max = Duration::from_millis(200);
        c.retry_for = Duration::from_secs(20);
        c.connect_timeout = Duration::from_secs(2);
        c
    }
}
