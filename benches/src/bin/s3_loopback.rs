//! Serves a directory as S3 on loopback (`s3s-fs`, SigV4 on) for the
//! emulated-Lambda rows of `benches/runtime-bench.sh`.
//!
//! ```text
//! s3-loopback ROOT BUCKET ACCESS_KEY SECRET_KEY
//! ```
//!
//! Prints the port it listens on (127.0.0.1) on one line, then serves until
//! its standard input closes, so it never outlives the script that started it.

#![forbid(unsafe_code)]

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, bucket, key, secret] = args.as_slice() else {
        bail!("usage: s3-loopback ROOT BUCKET ACCESS_KEY SECRET_KEY");
    };
    let root = PathBuf::from(root);
    std::fs::create_dir_all(root.join(bucket))
        .with_context(|| format!("cannot create {}", root.join(bucket).display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let fs = s3s_fs::FileSystem::new(&root)
        .map_err(|e| anyhow::anyhow!("s3s-fs on {}: {e:?}", root.display()))?;
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single(
        key.as_str(),
        secret.as_str(),
    ));
    let service = b.build();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    println!("{}", listener.local_addr()?.port());
    rt.spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let svc = service.clone();
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    // Serve until the parent closes our stdin (or dies).
    let mut line = String::new();
    let stdin = std::io::stdin();
    while stdin
        .lock()
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        line.clear();
    }
    Ok(())
}
