//! A hostile-client load against a relay in its own process, while an
//! honest job passes multi-megabyte states through it: the job must finish
//! with the right bytes and the relay's peak RSS must stay within its
//! memory limit plus 256 MiB.
//!
//! The relay runs as a child: this test binary re-runs itself with
//! `EXCAM_RELAY_CHILD=1` and only `relay_child_process`, which then serves
//! until its standard input closes. So the RSS read is the relay's, not the
//! load generator's.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use excam_rendezvous::proto::{Request, HEADER_LEN};
use excam_rendezvous::tls::client_crypto;
use excam_rendezvous::{
    ClientConfig, Fingerprint, Relay, RelayClient, RelayConfig, ServerAuth, TlsIdentity,
};
use tokio::time::Instant;

const CHILD_ENV: &str = "EXCAM_RELAY_CHILD";
/// The relay's whole memory limit in this test.
const LIMIT: u64 = 256 << 20;
/// Stated overhead above the limit: code, runtime, allocator slack.
const OVERHEAD: u64 = 256 << 20;
/// How long the hostile load runs at most.
const LOAD_FOR: Duration = Duration::from_secs(20);

fn child_config() -> RelayConfig {
    let mut c = RelayConfig::new(common::secret());
    c.memory_limit = LIMIT;
    c.max_message = 16 << 20;
    c.max_connections = 64;
    c.max_unauthenticated = 128;
    c.hello_timeout = Duration::from_secs(2);
    c.body_timeout = Duration::from_secs(2);
    c.response_timeout = Duration::from_secs(2);
    c.identity = Some(TlsIdentity::self_signed().unwrap());
    c
}

/// The relay side. A no-op unless run as the child.
#[test]
fn relay_child_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let relay = Relay::bind("127.0.0.1:0".parse().unwrap(), child_config()).unwrap();
        println!("RELAY {} {}", relay.local_addr(), relay.fingerprint());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            // Stdin closes when the parent exits or drops its end.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = tx.send(());
        });
        relay
            .run(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
}

/// The child relay; killed on drop.
struct ChildRelay {
    child: Child,
    /// Kept open so the child's later output does not hit a closed pipe.
    _out: BufReader<ChildStdout>,
    addr: SocketAddr,
    fingerprint: Fingerprint,
}

impl ChildRelay {
    fn spawn() -> ChildRelay {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "relay_child_process", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 {
            // libtest prints "test relay_child_process ... " first.
            if let Some((_, rest)) = line.trim_end().split_once("RELAY ") {
                let (addr, fp) = rest.split_once(' ').unwrap();
                let (addr, fingerprint) = (addr.parse().unwrap(), fp.parse().unwrap());
                return ChildRelay {
                    child,
                    _out: out,
                    addr,
                    fingerprint,
                };
            }
            line.clear();
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child relay never said where it listens");
    }

    /// (VmRSS, VmHWM) of the relay, in bytes.
    fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn client(&self, job: &str) -> ClientConfig {
        let mut c = ClientConfig::new(
            self.addr.to_string(),
            ServerAuth::Pinned(self.fingerprint),
            job,
            common::secret().token(job),
        );
        c.backoff_initial = Duration::from_millis(20);
        c.backoff_max = Duration::from_millis(200);
        c.retry_for = Duration::from_secs(20);
        c.connect_timeout = Duration::from_secs(2);
        c.max_message = 16 << 20;
        c
    }

    fn quic(&self) -> quinn::ClientConfig {
        let crypto = client_crypto(&ServerAuth::Pinned(self.fingerprint)).unwrap();
        quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap(),
        ))
    }
}

impl Drop for ChildRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state(n: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
            .collect::<Vec<_>>(),
    )
}

async fn connect(ep: &quinn::Endpoint, relay: &ChildRelay) -> Option<quinn::Connection> {
    let c = ep
        .connect_with(relay.quic(), relay.addr, "excam-relay")
        .ok()?;
    tokio::time::timeout(Duration::from_secs(3), c)
        .await
        .ok()?
        .ok()
}

async fn hello(conn: &quinn::Connection, job: &str) -> Option<()> {
    let (mut s, mut r) = conn.open_bi().await.ok()?;
    let req = Request::Hello {
        job: job.into(),
        token: common::secret().token(job),
    };
    s.write_all(&req.encode(0)).await.ok()?;
    s.finish().ok()?;
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h).await.ok()
}

/// Unauthenticated peers that open streams and pour junk into them.
async fn flood(relay: Arc<ChildRelay>, until: Instant) -> u64 {
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut n = 0;
    while Instant::now() < until {
        let mut conns = Vec::new();
        for _ in 0..32 {
            if let Some(c) = connect(&ep, &relay).await {
                conns.push(c);
            }
        }
        let pours = conns.iter().cloned().map(|c| {
            tokio::spawn(async move {
                for _ in 0..4 {
                    let Ok((mut s, _r)) = c.open_bi().await else {
                        return;
                    };
                    let junk = vec![0x55u8; 2 << 20];
                    let _ = tokio::time::timeout(Duration::from_secs(1), s.write_all(&junk)).await;
                }
            })
        });
        for p in pours.collect::<Vec<_>>() {
            let _ = p.await;
        }
        n += conns.len() as u64;
        // Hold them (silent) a little, as a slowloris would.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    n
}

/// Authenticated peers of another job: puts whose bodies never come, puts
/// that send their bodies before `Continue`, and gets never read.
async fn abuse(relay: Arc<ChildRelay>, until: Instant) -> u64 {
    let evil = RelayClient::connect(relay.client("evil")).await.unwrap();
    evil.put("bait", state(8 << 20, 9)).await.unwrap();
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut n = 0;
    while Instant::now() < until {
        let mut tasks = Vec::new();
        for k in 0..8 {
            let Some(c) = connect(&ep, &relay).await else {
                continue;
            };
            if hello(&c, "evil").await.is_none() {
                continue;
            }
            tasks.push(tokio::spawn(async move {
                let mut streams = Vec::new();
                for i in 0..16 {
                    let Ok((mut s, r)) = c.open_bi().await else {
                        break;
                    };
                    let req = match (k + i) % 3 {
                        // A put whose body never arrives.
                        0 => Request::Put {
                            mailbox: format!("never/{k}/{i}"),
                            timeout: Duration::from_secs(60),
                        }
                        .encode(8 << 20),
                        // A put that pours its body without waiting.
                        1 => {
                            let mut v = Request::Put {
                                mailbox: format!("eager/{k}/{i}"),
                                timeout: Duration::from_secs(60),
                            }
                            .encode(8 << 20);
                            v.extend(std::iter::repeat_n(7u8, 8 << 20));
                            v
                        }
                        // A get never read.
                        _ => Request::Get {
                            mailbox: "bait".into(),
                            timeout: Duration::from_secs(60),
                        }
                        .encode(0),
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), s.write_all(&req)).await;
                    streams.push((s, r));
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
                drop(streams);
                c
            }));
        }
        for t in tasks {
            if t.await.is_ok() {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_do_not_stop_an_honest_job_or_blow_the_memory_bound() {
    common::bounded(async {
        let relay = Arc::new(ChildRelay::spawn());
        let (rss0, _) = relay.rss();
        let until = Instant::now() + LOAD_FOR;
        let flood = tokio::spawn(flood(relay.clone(), until));
        let abuse = tokio::spawn(abuse(relay.clone(), until));
        // Let the load build up first.
        tokio::time::sleep(Duration::from_secs(2)).await;

        // The honest job: a chain of 4 MiB states, each put by one worker
        // and read back by the next.
        let t = Instant::now();
        let a = RelayClient::connect(relay.client("honest")).await.unwrap();
        let b = RelayClient::connect(relay.client("honest")).await.unwrap();
        for i in 0..6u8 {
            let s = state(4 << 20, i);
            let (putter, getter) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
            putter.put(&format!("state/{i}"), s.clone()).await.unwrap();
            let got = getter
                .get(&format!("state/{i}"), Duration::from_secs(20))
                .await
                .unwrap();
            assert!(got == s, "state {i} came back different");
        }
        let honest = t.elapsed();
        let (floods, abusers) = (flood.await.unwrap(), abuse.await.unwrap());
        let (rss, hwm) = relay.rss();
        eprintln!(
            "honest job {honest:?}; {floods} unauthenticated and {abusers} abusive connections; \
             relay RSS at start {} MiB, at end {} MiB, peak {} MiB (bound {} MiB)",
            rss0 >> 20,
            rss >> 20,
            hwm >> 20,
            (LIMIT + OVERHEAD) >> 20
        );
        assert!(floods > 0 && abusers > 0, "the load did not run");
        assert!(
            hwm <= LIMIT + OVERHEAD,
            "relay peak RSS {hwm} exceeds {LIMIT} + {OVERHEAD}"
        );
    })
    .await;
}
