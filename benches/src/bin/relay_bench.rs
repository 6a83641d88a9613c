//! Relay benchmark: rings of clients passing ~1.5 MiB messages (a compressed
//! 4K decoder state) through a relay in a child process, next to the raw
//! single-stream `quinn` throughput between two endpoints on this machine.
//!
//! ```text
//! relay_bench [--clients 100,1000,2000] [--size 1572864] [--memory-limit 1073741824]
//!             [--rounds-small 5] [--raw-mib 1024]
//! ```
//!
//! The relay runs as a child process (this binary with `serve`) so that its
//! peak resident memory (VmHWM) is measured apart from the clients'; it is
//! restarted for every ring so each peak belongs to one ring.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use excam_rendezvous::bench::{run_ring, RingConfig, RingReport};
use excam_rendezvous::tls::{client_crypto, server_crypto};
use excam_rendezvous::{
    Bytes, ClientConfig, Fingerprint, Relay, RelayConfig, RelaySecret, ServerAuth, TlsIdentity,
};

struct Args {
    clients: Vec<usize>,
    size: usize,
    memory_limit: u64,
    rounds_small: usize,
    raw_mib: usize,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut a = Args {
        clients: vec![100, 1000, 2000],
        size: 1_572_864,
        memory_limit: 1 << 30,
        rounds_small: 5,
        raw_mib: 1024,
    };
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => {
                a.clients = v
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--size" => a.size = v.parse()?,
            "--memory-limit" => a.memory_limit = v.parse()?,
            "--rounds-small" => a.rounds_small = v.parse()?,
            "--raw-mib" => a.raw_mib = v.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("serve") {
        argv.next();
        let limit: u64 = argv.next().context("serve MEMORY_LIMIT")?.parse()?;
        return serve(limit);
    }
    let args = parse_args(argv)?;
    let nofile = excam_rendezvous::raise_nofile_limit()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(args, nofile))
}

/// Child mode: run a relay on a loopback port until stdin closes.
fn serve(memory_limit: u64) -> Result<()> {
    excam_rendezvous::raise_nofile_limit()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let secret = RelaySecret::from_env()?.context("EXCAM_RELAY_SECRET not set")?;
        let mut cfg = RelayConfig::new(secret);
        cfg.memory_limit = memory_limit;
        let relay = Relay::bind("127.0.0.1:0".parse()?, cfg)?;
        let stats = relay.stats();
        println!("ready {} {}", relay.local_addr(), relay.fingerprint());
        std::io::stdout().flush()?;
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        });
        relay
            .run(async {
                let _ = stdin_closed.await;
            })
            .await?;
        let s = stats.get();
        println!("peak_bytes_held {}", s.peak_bytes_held);
        Ok(())
    })
}

/// User plus system CPU seconds of a process (`"self"` or a pid), from
/// /proc: a measure of cost that other load on the machine does not skew.
fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').context("bad stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

struct ChildRelay {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<std::process::ChildStdout>,
    addr: String,
    fingerprint: Fingerprint,
}

impl ChildRelay {
    fn spawn(secret: &RelaySecret, memory_limit: u64) -> Result<ChildRelay> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(memory_limit.to_string())
            .env(
                excam_rendezvous::SECRET_ENV,
                secret.as_text().context("secret is not text")?,
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        if parts.next() != Some("ready") {
            bail!("relay child said {line:?}");
        }
        let addr = parts.next().context("no address")?.to_string();
        let fingerprint = parts.next().context("no fingerprint")?.parse()?;
        Ok(ChildRelay {
            child,
            stdin,
            out,
            addr,
            fingerprint,
        })
    }

    /// Peak resident set of the relay process so far, in bytes.
    fn peak_rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .context("no VmHWM")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb * 1024)
    }

    fn cpu(&self) -> Result<f64> {
        cpu_seconds(&self.child.id().to_string())
    }

    /// Stops the relay (closing stdin) and returns its peak bytes held.
    fn stop(mut self) -> Result<u64> {
        drop(self.stdin.take());
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        self.child.wait()?;
        Ok(line
            .strip_prefix("peak_bytes_held ")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }
}

/// One stream between two in-process endpoints, with the relay's TLS,
/// sockets and transport settings on the receiving side and the client's on
/// the sending side: the practical limit of one hop here.
async fn raw_quinn(total_mib: usize, relay_cfg: &RelayConfig) -> Result<f64> {
    let id = TlsIdentity::self_signed()?;
    let mut server_cfg = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(server_crypto(&id)?)?,
    ));
    server_cfg.transport_config(Arc::new(relay_cfg.authenticated_transport()?));
    let server = excam_rendezvous::net::endpoint(
        "127.0.0.1:0".parse()?,
        relay_cfg.socket_buffer,
        Some(server_cfg),
    )?;
    let addr = server.local_addr()?;
    let mut client_cfg =
        quinn::ClientConfig::new(Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(
            client_crypto(&ServerAuth::Pinned(id.fingerprint()))?,
        )?));
    client_cfg.transport_config(Arc::new(excam_rendezvous::client_transport()));
    let client = excam_rendezvous::net::endpoint(
        "127.0.0.1:0".parse()?,
        excam_rendezvous::net::CLIENT_SOCKET_BUFFER,
        None,
    )?;

    let total = (total_mib as u64) << 20;
    let receiver = tokio::spawn(async move {
        let conn = server.accept().await.context("no connection")?.await?;
        let (_send, mut recv) = conn.accept_bi().await?;
        let mut got = 0u64;
        while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
            got += chunk.bytes.len() as u64;
        }
        let done = Instant::now();
        conn.close(0u32.into(), b"done");
        anyhow::Ok((got, done))
    });
    let conn = client
        .connect_with(client_cfg, addr, excam_rendezvous::tls::SELF_SIGNED_NAME)?
        .await?;
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let start = Instant::now();
    let (mut send, _recv) = conn.open_bi().await?;
    for _ in 0..total_mib {
        send.write_chunk(chunk.clone()).await?;
    }
    send.finish()?;
    let (got, done) = receiver.await??;
    if got != total {
        bail!("raw stream delivered {got} of {total} bytes");
    }
    Ok(total as f64 / (1 << 20) as f64 / (done - start).as_secs_f64())
}

struct Row {
    report: RingReport,
    rounds: usize,
    client_cpu: f64,
    relay_cpu: f64,
    peak_rss: u64,
    peak_held: u64,
}

async fn bench(args: Args, nofile: u64) -> Result<()> {
    eprintln!(
        "open-file limit {nofile}; measuring raw quinn ({} MiB)...",
        args.raw_mib
    );
    let cpu0 = cpu_seconds("self")?;
    let secret = RelaySecret::generate();
    let mut relay_cfg = RelayConfig::new(secret.clone());
    relay_cfg.memory_limit = args.memory_limit;
    let raw = raw_quinn(args.raw_mib, &relay_cfg).await?;
    let raw_cpu = cpu_seconds("self")? - cpu0;
    let raw_per_cpu = args.raw_mib as f64 / raw_cpu.max(1e-9);
    eprintln!("raw quinn one stream: {raw:.1} MiB/s, {raw_per_cpu:.0} MiB per CPU-second");

    let mut rows = Vec::new();
    for &n in &args.clients {
        let relay = ChildRelay::spawn(&secret, args.memory_limit)?;
        let job = format!("bench-{n}");
        let client = ClientConfig::new(
            relay.addr.clone(),
            ServerAuth::Pinned(relay.fingerprint),
            job.clone(),
            secret.token(&job),
        );
        let mut cfg = RingConfig::new(client, n, args.size);
        // Small rings finish one round in well under a second; more rounds
        // make their throughput a measurement rather than a start-up blip.
        cfg.rounds = if n <= 100 {
            args.rounds_small.max(1)
        } else {
            1
        };
        cfg.get_timeout = Duration::from_secs(300);
        let rounds = cfg.rounds;
        eprintln!("ring of {n} clients x {rounds} round(s)...");
        let client_cpu0 = cpu_seconds("self")?;
        let report = run_ring(cfg).await;
        let client_cpu = cpu_seconds("self")? - client_cpu0;
        let relay_cpu = relay.cpu()?;
        let peak_rss = relay.peak_rss()?;
        let peak_held = relay.stop()?;
        let report = report?;
        eprintln!(
            "  {} (connect {:.1}s, {} retries{}) {}",
            report.to_json(),
            report.connect_s,
            report.retries,
            report
                .retry_reason
                .as_deref()
                .map(|r| format!(", first: {r}"))
                .unwrap_or_default(),
            report.first_error.as_deref().unwrap_or("")
        );
        rows.push(Row {
            report,
            rounds,
            client_cpu,
            relay_cpu,
            peak_rss,
            peak_held,
        });
    }

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!();
    println!(
        "relay on loopback, {} byte messages, memory limit {:.0} MiB; raw quinn single stream {raw:.1} MiB/s",
        args.size,
        mib(args.memory_limit)
    );
    println!("| clients | rounds | messages | errors | elapsed s | MiB/s delivered | x raw | relay in+out MiB/s | p50 ms/hop | p99 ms/hop | relay peak RSS MiB | peak held MiB | relay CPU s | clients CPU s | MiB per CPU-s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| raw quinn | - | - | - | - | {raw:.1} | 1.00 | - | - | - | - | - | - | - | {raw_per_cpu:.0} |"
    );
    for r in &rows {
        let p = &r.report;
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} |",
            p.clients,
            r.rounds,
            p.messages,
            p.errors,
            p.elapsed_s,
            p.mib_per_s,
            p.mib_per_s / raw,
            2.0 * p.mib_per_s,
            p.p50_ms,
            p.p99_ms,
            mib(r.peak_rss),
            mib(r.peak_held),
            r.relay_cpu,
            r.client_cpu,
            mib(p.bytes) / (r.relay_cpu + r.client_cpu).max(1e-9)
        );
    }
    println!();
    let rss_bar = args.memory_limit + (256 << 20);
    for r in &rows {
        let p = &r.report;
        let ok = p.errors == 0 && r.peak_rss <= rss_bar;
        println!(
            "bar {} clients: errors {} (want 0), peak RSS {:.0} MiB (want <= {:.0}): {}",
            p.clients,
            p.errors,
            mib(r.peak_rss),
            mib(rss_bar),
            if ok { "PASS" } else { "FAIL" }
        );
    }
    if let Some(r) = rows.iter().find(|r| r.report.clients == 100) {
        let ratio = r.report.mib_per_s / raw;
        println!(
            "bar 100-client ring (delivered) >= 0.5x raw quinn: {ratio:.2}x: {}",
            if ratio >= 0.5 { "PASS" } else { "FAIL" }
        );
    }
    Ok(())
}
