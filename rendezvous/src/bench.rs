//! The ring benchmark shared by `excam relay bench`, the benches crate and
//! the 500-client test: N clients, each with its own QUIC endpoint, pass a
//! message around a ring — client i puts for i+1 while it gets from i-1.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::{ClientConfig, ClientError, RelayClient};

/// What to run.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Template for every client's configuration (relay, trust, job, token).
    pub client: ClientConfig,
    /// Number of clients in the ring.
    pub clients: usize,
    /// Size of each message in bytes.
    pub size: usize,
    /// Times the message goes round; every client puts and gets once per round.
    pub rounds: usize,
    /// How long one get may wait; puts may wait as long for memory.
    pub get_timeout: Duration,
    /// Handshakes in flight at once while the ring is being set up.
    pub connect_concurrency: usize,
}

impl RingConfig {
    /// One round with a 120 s get timeout.
    pub fn new(client: ClientConfig, clients: usize, size: usize) -> RingConfig {
        RingConfig {
            client,
            clients,
            size,
            rounds: 1,
            get_timeout: Duration::from_secs(120),
            connect_concurrency: 64,
        }
    }
}

/// Results; [`RingReport::to_json`] prints the CLI's JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct RingReport {
    /// Clients in the ring.
    pub clients: usize,
    /// Messages delivered intact.
    pub messages: usize,
    /// Bytes delivered intact.
    pub bytes: u64,
    /// Operations that failed, and messages that arrived corrupted.
    pub errors: usize,
    /// From the first put to the last get (connection set-up excluded).
    pub elapsed_s: f64,
    /// Delivered MiB per second of `elapsed_s`.
    pub mib_per_s: f64,
    /// Median hop latency: from the producer starting its put to the
    /// consumer holding the bytes.
    pub p50_ms: f64,
    /// 99th percentile hop latency.
    pub p99_ms: f64,
    /// Time to connect every client.
    pub connect_s: f64,
    /// The first error seen, for diagnosis.
    pub first_error: Option<String>,
    /// Operations or connections retried after connection trouble.
    pub retries: u64,
    /// Why the first retry happened, if any did.
    pub retry_reason: Option<String>,
}

impl RingReport {
    /// One-line JSON object with the fields the issue asks for.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"clients\":{},\"messages\":{},\"bytes\":{},\"errors\":{},\"elapsed_s\":{:.3},\"mib_per_s\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
            self.clients,
            self.messages,
            self.bytes,
            self.errors,
            self.elapsed_s,
            self.mib_per_s,
            self.p50_ms,
            self.p99_ms
        )
    }
}

/// Value at quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Deterministic, incompressible-looking bytes (QUIC does not compress,
/// but a memcmp on zeros could hide a slicing bug).
fn message(size: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(size + 8);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size);
    Bytes::from(v)
}

/// Runs the ring. Mailbox names carry a per-run nonce, so runs against the
/// same job do not meet each other's messages.
///
/// # Errors
/// Only if a client cannot connect at all; operation failures are counted
/// in [`RingReport::errors`].
pub async fn run_ring(cfg: RingConfig) -> Result<RingReport, ClientError> {
    let n = cfg.clients.max(2);
    let msg = message(cfg.size);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());

    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
    let mut connecting = Vec::with_capacity(n);
    let mut client_cfg = cfg.client.clone();
    // Every message of a large ring may have to wait for memory freed by
    // the reads of earlier ones; a put may wait as long as a get does.
    client_cfg.put_timeout = client_cfg.put_timeout.max(cfg.get_timeout);
    for _ in 0..n {
        let c = client_cfg.clone();
        let gate = gate.clone();
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            RelayClient::connect(c).await
        }));
    }
    let mut clients = Vec::with_capacity(n);
    for h in connecting {
        clients.push(Arc::new(h.await.expect("connect task panicked")?));
    }
    let connect_s = t0.elapsed().as_secs_f64();

    // Put start times, as nanoseconds since `base`, per round and producer.
    let base = Instant::now();
    let put_start: Arc<Vec<AtomicU64>> = Arc::new(
        (0..n * cfg.rounds)
            .map(|_| AtomicU64::new(u64::MAX))
            .collect(),
    );
    // A producer whose put failed says so, so its consumer counts one
    // error instead of waiting out the whole get timeout.
    let put_failed: Arc<Vec<Notify>> =
        Arc::new((0..n * cfg.rounds).map(|_| Notify::new()).collect());
    let mut tasks = Vec::with_capacity(n);
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let msg = msg.clone();
        let put_start = put_start.clone();
        let put_failed = put_failed.clone();
        let rounds = cfg.rounds;
        let get_timeout = cfg.get_timeout;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(rounds);
            let mut errors = Vec::new();
            for r in 0..rounds {
                let to = format!("ring/{nonce}/{r}/{}", (i + 1) % n);
                let mine = format!("ring/{nonce}/{r}/{i}");
                put_start[r * n + i].store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let from = (i + n - 1) % n;
                let put = async {
                    let p = client.put(&to, msg.clone()).await;
                    if p.is_err() {
                        put_failed[r * n + i].notify_one();
                    }
                    p
                };
                let get = async {
                    tokio::select! {
                        g = client.get(&mine, get_timeout) => Some(g),
                        _ = put_failed[r * n + from].notified() => None,
                    }
                };
                let (p, g) = tokio::join!(put, get);
                let done = base.elapsed().as_nanos() as u64;
                if let Err(e) = p {
                    errors.push(format!("put {to}: {e}"));
                }
                let Some(g) = g else {
                    errors.push(format!("get {mine}: its producer's put failed"));
                    continue;
                };
                match g {
                    Ok(b) if b == msg => {
                        let started = put_start[r * n + from].load(Ordering::Relaxed);
                        lat.push(done.saturating_sub(started) as f64 / 1e6);
                    }
                    Ok(b) => errors.push(format!("get {mine}: {} bytes, corrupted", b.len())),
                    Err(e) => errors.push(format!("get {mine}: {e}")),
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e) = t.await.expect("ring task panicked");
        lat.extend(l);
        errors.extend(e);
    }
    let elapsed_s = base.elapsed().as_secs_f64();
    let mut retries = 0;
    let mut retry_reason = None;
    for c in &clients {
        let (n, why) = c.retries();
        retries += n;
        retry_reason = retry_reason.or(why);
    }
    let closing: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(async move { c.close().await }))
        .collect();
    for c in closing {
        let _ = c.await;
    }
    lat.sort_by(f64::total_cmp);
    let messages = lat.len();
    let bytes = messages as u64 * cfg.size as u64;
    Ok(RingReport {
        clients: n,
        messages,
        bytes,
        errors: errors.len(),
        elapsed_s,
        mib_per_s: bytes as f64 / (1 << 20) as f64 / elapsed_s.max(1e-9),
        p50_ms: quantile(&lat, 0.50),
        p99_ms: quantile(&lat, 0.99),
        connect_s,
        first_error: errors.into_iter().next(),
        retries,
        retry_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn message_has_requested_size() {
        assert_eq!(message(1000).len(), 1000);
        assert_ne!(message(64)[..8], message(64)[8..16]);
    }
}
