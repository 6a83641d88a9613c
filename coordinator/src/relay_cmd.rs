//! `excam relay ...`: run a relay, mint job tokens, and poke at a relay by hand.
//!
//! A thin layer over `excam_rendezvous`; see `rendezvous/README.md` for how
//! to run a relay in production.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use excam_rendezvous::bench::{run_ring, RingConfig};
use excam_rendezvous::{
    Bytes, ClientConfig, Fingerprint, Relay, RelayClient, RelayConfig, RelaySecret, ServerAuth,
    TlsIdentity, SECRET_ENV,
};

/// The `excam relay` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RelayCommand {
    /// Run a relay until interrupted (Ctrl-C or SIGTERM), then drain.
    Serve(ServeArgs),
    /// Mint the token for a job from the relay's secret.
    Token(TokenArgs),
    /// Put FILE (default stdin) into MAILBOX.
    Put(PutArgs),
    /// Get MAILBOX into FILE (default stdout).
    Get(GetArgs),
    /// Pass a message around a ring of N clients and print one JSON object.
    Bench(BenchArgs),
}

/// Arguments of `excam relay serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// UDP address to listen on, e.g. `0.0.0.0:4433` or `[::]:4433`.
    #[arg(long)]
    pub listen: SocketAddr,
    /// File holding the secret (at least 16 bytes; surrounding whitespace
    /// ignored). Default: $EXCAM_RELAY_SECRET, else a generated secret that
    /// is printed.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Cap on memory held for peers: mailboxes plus every connection's
    /// buffers (accepts KiB/MiB/GiB suffixes).
    #[arg(long, default_value = "2GiB", value_parser = parse_bytes)]
    pub memory_limit: u64,
    /// Largest message accepted (accepts KiB/MiB/GiB suffixes).
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes)]
    pub max_message: u64,
    /// Seconds a mailbox lives after its last use.
    #[arg(long, default_value_t = 600)]
    pub ttl: u64,
    /// Keep the self-signed certificate in this directory (cert.pem,
    /// key.pem; made on first start), so the fingerprint survives restarts.
    /// Without it and without --cert, each start makes a new certificate.
    #[arg(long, conflicts_with = "cert")]
    pub identity_dir: Option<PathBuf>,
    /// PEM certificate chain to use instead of a self-signed certificate.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Seconds between status log lines.
    #[arg(long, default_value_t = 30)]
    pub status_every: u64,
    /// Concurrent authenticated connections allowed (each takes
    /// 320 KiB of the memory limit).
    #[arg(long, default_value_t = 2048)]
    pub max_connections: usize,
}

/// Arguments of `excam relay token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Job id to mint the token for.
    #[arg(long)]
    pub job: String,
    /// File holding the secret; default $EXCAM_RELAY_SECRET.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Hours the token is valid.
    #[arg(long, default_value_t = 24.0)]
    pub valid_hours: f64,
}

/// How to reach and trust a relay, and which job to act for.
#[derive(Debug, clap::Args)]
pub struct ConnArgs {
    /// Relay address, host:port.
    #[arg(long)]
    pub relay: String,
    /// SHA-256 fingerprint of a self-signed relay's certificate, as it
    /// printed at start. Without it the certificate is verified normally
    /// (against --ca, or the system's roots).
    #[arg(long)]
    pub fingerprint: Option<Fingerprint>,
    /// PEM file of CA certificates to verify a --cert relay against.
    #[arg(long, conflicts_with = "fingerprint")]
    pub ca: Option<PathBuf>,
    /// Job id.
    #[arg(long)]
    pub job: String,
    /// File holding the job's token (from `excam relay token`); default
    /// $EXCAM_RELAY_TOKEN. Never on the command line, where other users
    /// of the machine can read it.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// Environment variable `excam relay put|get|bench` read the token from.
pub const TOKEN_ENV: &str = "EXCAM_RELAY_TOKEN";

impl ConnArgs {
    fn token(&self) -> Result<String> {
        let token = match &self.token_file {
            Some(f) => std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the token from {}", f.display()))?,
            None => std::env::var(TOKEN_ENV).map_err(|_| {
                anyhow::anyhow!("no job token: pass --token-file or set {TOKEN_ENV}")
            })?,
        };
        Ok(token.trim().to_string())
    }

    fn client_config(&self) -> Result<ClientConfig> {
        let auth = match (&self.fingerprint, &self.ca) {
            (Some(fp), _) => ServerAuth::Pinned(*fp),
            (None, Some(ca)) => ServerAuth::ca_file(ca)?,
            (None, None) => ServerAuth::system_roots(),
        };
        Ok(ClientConfig::new(
            self.relay.clone(),
            auth,
            self.job.clone(),
            self.token()?,
        ))
    }
}

/// Arguments of `excam relay put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Seconds the relay may wait for memory before refusing with RelayFull.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Mailbox name, e.g. state/17/final.
    pub mailbox: String,
    /// File to send; stdin when absent.
    pub file: Option<PathBuf>,
}

/// Arguments of `excam relay get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Seconds to wait for the mailbox to be filled.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Mailbox name.
    pub mailbox: String,
    /// File to write; stdout when absent.
    pub file: Option<PathBuf>,
}

/// Arguments of `excam relay bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Clients in the ring, each with its own QUIC endpoint.
    #[arg(long)]
    pub clients: usize,
    /// Message size (accepts KiB/MiB/GiB suffixes).
    #[arg(long, value_parser = parse_bytes)]
    pub size: u64,
    /// Times the message goes around the ring.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
}

/// Parses a byte count: a number with an optional binary suffix
/// (K, KiB, M, MiB, G, GiB; all powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a byte count: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("byte count too large: {s:?}"))
}

/// Runs a relay subcommand on a Tokio runtime of its own.
///
/// # Errors
/// Any refusal by the relay, unreachable relays, bad arguments or I/O errors;
/// the binary turns them into a non-zero exit status.
pub fn run(cmd: RelayCommand) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match cmd {
            RelayCommand::Serve(a) => serve(a).await,
            RelayCommand::Token(a) => token(a),
            RelayCommand::Put(a) => put(a).await,
            RelayCommand::Get(a) => get(a).await,
            RelayCommand::Bench(a) => bench(a).await,
        }
    })
}

fn load_secret(file: Option<&PathBuf>) -> Result<Option<RelaySecret>> {
    if let Some(f) = file {
        return Ok(Some(RelaySecret::from_file(f)?));
    }
    Ok(RelaySecret::from_env()?)
}

fn token(a: TokenArgs) -> Result<()> {
    let Some(secret) = load_secret(a.secret_file.as_ref())? else {
        bail!("no secret: pass --secret-file or set {SECRET_ENV}");
    };
    excam_rendezvous::proto::check_job(&a.job)?;
    if !(a.valid_hours > 0.0 && a.valid_hours <= 24.0 * 366.0) {
        bail!("--valid-hours must be more than 0 and at most a year");
    }
    let ttl = std::time::Duration::from_secs_f64(a.valid_hours * 3600.0);
    println!("{}", secret.token_for(&a.job, ttl));
    Ok(())
}

async fn serve(a: ServeArgs) -> Result<()> {
    // Logs go to stderr; stdout carries only the lines scripts parse.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let secret = match load_secret(a.secret_file.as_ref())? {
        Some(s) => s,
        None => {
            let s = RelaySecret::generate();
            println!("secret {}", s.as_text().unwrap_or_default());
            eprintln!(
                "no --secret-file or {SECRET_ENV}: generated the secret above; \
                 mint tokens with `{SECRET_ENV}=<it> excam relay token --job ID`"
            );
            s
        }
    };
    if a.max_message > a.memory_limit {
        bail!("--max-message exceeds --memory-limit: such a message could never be held");
    }
    let mut cfg = RelayConfig::new(secret);
    cfg.memory_limit = a.memory_limit;
    cfg.max_message = a.max_message;
    cfg.ttl = Duration::from_secs(a.ttl.max(1));
    cfg.max_connections = a.max_connections;
    if let (Some(c), Some(k)) = (&a.cert, &a.key) {
        cfg.identity = Some(TlsIdentity::from_pem_files(c, k)?);
    } else if let Some(dir) = &a.identity_dir {
        cfg.identity = Some(TlsIdentity::load_or_create(dir)?);
    }
    let budget = cfg.memory_budget()?;
    tracing::info!(
        connections = budget.connections,
        mailboxes = budget.mailboxes,
        job_share = budget.job_share,
        "memory limit split"
    );
    let relay = Relay::bind(a.listen, cfg)?;
    println!("listening {}", relay.local_addr());
    println!("fingerprint {}", relay.fingerprint());
    std::io::stdout().flush()?;

    let stats = relay.stats();
    let every = Duration::from_secs(a.status_every.max(1));
    let status = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let s = stats.get();
            tracing::info!(
                connections = s.connections,
                unauthenticated = s.unauthenticated,
                jobs = s.jobs,
                mailboxes = s.mailboxes,
                bytes_held = s.bytes_held,
                peak_bytes_held = s.peak_bytes_held,
                evictions = s.evictions,
                conflicts = s.conflicts,
                "status"
            );
        }
    });
    relay.run(shutdown_signal()).await?;
    status.abort();
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn put(a: PutArgs) -> Result<()> {
    let data = match &a.file {
        Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .context("cannot read stdin")?;
            v
        }
    };
    let mut cfg = a.conn.client_config()?;
    cfg.put_timeout = Duration::from_secs(a.timeout);
    let client = RelayClient::connect(cfg).await?;
    let r = client.put(&a.mailbox, Bytes::from(data)).await;
    client.close().await;
    r?;
    Ok(())
}

async fn get(a: GetArgs) -> Result<()> {
    let client = RelayClient::connect(a.conn.client_config()?).await?;
    let r = client.get(&a.mailbox, Duration::from_secs(a.timeout)).await;
    client.close().await;
    let data = r?;
    match &a.file {
        Some(f) => {
            std::fs::write(f, &data).with_context(|| format!("cannot write {}", f.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&data)?;
            out.flush()?;
        }
    }
    Ok(())
}

async fn bench(a: BenchArgs) -> Result<()> {
    // Every client is its own endpoint with its own socket.
    if let Err(e) = excam_rendezvous::raise_nofile_limit() {
        eprintln!("cannot raise the open-file limit: {e}");
    }
    let size = usize::try_from(a.size).context("--size too large")?;
    let mut cfg = RingConfig::new(a.conn.client_config()?, a.clients, size);
    cfg.rounds = a.rounds.max(1);
    let report = run_ring(cfg).await?;
    println!("{}", report.to_json());
    if report.errors > 0 {
        bail!(
            "{} operations failed; first: {}",
            report.errors,
            report.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("64k"), Ok(64 << 10));
        assert_eq!(parse_bytes("1572864"), Ok(1_572_864));
        assert!(parse_bytes("12XB").is_err());
        assert!(parse_bytes("99999999999G").is_err());
    }

    #[test]
    fn cli_parses_every_subcommand() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: RelayCommand,
        }
        let fp = "ab".repeat(32);
        for args in [
            vec![
                "x",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--memory-limit",
                "2GiB",
                "--ttl",
                "5",
            ],
            vec!["x", "token", "--job", "j"],
            vec![
                "x",
                "put",
                "--relay",
                "127.0.0.1:1",
                "--fingerprint",
                &fp,
                "--job",
                "j",
                "--token-file",
                "t",
                "m",
                "f",
            ],
            vec![
                "x",
                "get",
                "--relay",
                "127.0.0.1:1",
                "--fingerprint",
                &fp,
                "--job",
                "j",
                "--token-file",
                "t",
                "m",
            ],
            vec![
                "x",
                "bench",
                "--relay",
                "127.0.0.1:1",
                "--fingerprint",
                &fp,
                "--job",
                "j",
                "--token-file",
                "t",
                "--clients",
                "10",
                "--size",
                "1MiB",
            ],
        ] {
            Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        assert!(
            Cli::try_parse_from(["x", "serve", "--listen", "127.0.0.1:0", "--cert", "c"]).is_err()
        );
    }
}
