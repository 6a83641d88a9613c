//! The stores' behaviour, the same tests for both: a `LocalStore` in a
//! temporary directory, and an `S3Store` driving the real aws-sdk-s3 client
//! against an in-process s3s-fs server with SigV4 authentication on.

// Needs the AWS SDK, which only the default `cloud` feature brings.
#![cfg(feature = "cloud")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use excam_worker::store::{LocalStore, S3Store, Store, StoreError, PART_SIZE};
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

const ACCESS_KEY: &str = "AKIAEXCAMTEST0000001";
const SECRET_KEY: &str = "excam-test-secret-key-0000000000000000000";
const BUCKET: &str = "excam-test";

/// Flips a byte in the middle of a file.
fn corrupt_file(path: &Path) {
    let mut b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

/// The behaviour every store must have. `file_of(key)` is where the store
/// keeps the object's bytes on disk (to corrupt it behind its back).
async fn behaviour(store: &dyn Store, file_of: &dyn Fn(&str) -> PathBuf, scratch: &Path) {
    // Round trip, replacement, empty objects.
    let data = Bytes::from((0..100_000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    store.put("jobs/a/x", data.clone()).await.unwrap();
    assert_eq!(store.get("jobs/a/x").await.unwrap(), data);
    store
        .put("jobs/a/x", Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(&store.get("jobs/a/x").await.unwrap()[..], b"second");
    store.put("jobs/a/empty", Bytes::new()).await.unwrap();
    assert!(store.get("jobs/a/empty").await.unwrap().is_empty());
    assert_eq!(store.size("jobs/a/empty").await.unwrap(), Some(0));

    // Missing objects.
    assert!(matches!(
        store.get("jobs/a/none").await,
        Err(StoreError::NotFound(k)) if k == "jobs/a/none"
    ));
    assert_eq!(store.size("jobs/a/none").await.unwrap(), None);
    assert!(matches!(
        store.get_range("jobs/a/none", 0, 4).await,
        Err(StoreError::NotFound(_))
    ));

    // Bad keys.
    for bad in ["", "/abs", "a/../b", "a//b", "a/./b"] {
        assert!(
            matches!(
                store.put(bad, Bytes::new()).await,
                Err(StoreError::BadKey(_))
            ),
            "{bad:?}"
        );
    }

    // Ranged reads, and sizes.
    store.put("jobs/a/r", data.clone()).await.unwrap();
    assert_eq!(store.size("jobs/a/r").await.unwrap(), Some(100_000));
    let r = store.get_range("jobs/a/r", 1000, 5000).await.unwrap();
    assert_eq!(r, data.slice(1000..6000));
    let r = store.get_range("jobs/a/r", 99_990, 10).await.unwrap();
    assert_eq!(r, data.slice(99_990..));
    assert!(store.get_range("jobs/a/r", 99_990, 11).await.is_err());
    assert!(store.get_range("jobs/a/r", 0, 0).await.unwrap().is_empty());

    // A corrupted object is reported, not returned.
    store.put("jobs/a/c", data.clone()).await.unwrap();
    corrupt_file(&file_of("jobs/a/c"));
    assert!(
        matches!(store.get("jobs/a/c").await, Err(StoreError::Corrupt { ref key }) if key == "jobs/a/c"),
        "{:?}",
        store.get("jobs/a/c").await.map(|b| b.len())
    );
    // Rewriting it heals it.
    store.put("jobs/a/c", data.clone()).await.unwrap();
    assert_eq!(store.get("jobs/a/c").await.unwrap(), data);

    // delete_prefix removes exactly the keys under the prefix (a string
    // prefix, as in S3), across listing pages.
    for i in 0..25 {
        store
            .put(&format!("jobs/del/k{i:03}"), Bytes::from(vec![i as u8; 10]))
            .await
            .unwrap();
    }
    store
        .put("jobs/del2/keep", Bytes::from_static(b"k"))
        .await
        .unwrap();
    store
        .put("jobs/delx", Bytes::from_static(b"k"))
        .await
        .unwrap();
    store.delete_prefix("jobs/del/").await.unwrap();
    for i in 0..25 {
        assert_eq!(
            store.size(&format!("jobs/del/k{i:03}")).await.unwrap(),
            None
        );
    }
    assert_eq!(store.size("jobs/del2/keep").await.unwrap(), Some(1));
    assert_eq!(store.size("jobs/delx").await.unwrap(), Some(1));
    assert_eq!(&store.get("jobs/del2/keep").await.unwrap()[..], b"k");
    store.delete_prefix("jobs/del").await.unwrap();
    assert_eq!(store.size("jobs/del2/keep").await.unwrap(), None);
    assert_eq!(store.size("jobs/delx").await.unwrap(), None);
    assert_eq!(store.size("jobs/a/r").await.unwrap(), Some(100_000));
    store.delete_prefix("jobs/nothing-here/").await.unwrap();

    // Uploads: a small file in one piece, a big one in parts, with progress
    // reaching the total.
    for (name, len) in [("small", 1000u64), ("big", 2 * PART_SIZE + 12_345)] {
        let path = scratch.join(name);
        let bytes: Vec<u8> = (0..len)
            .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        let calls: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
        let c = calls.clone();
        let key = format!("input/{name}.y4m");
        store
            .upload_file(&key, &path, &move |done, total| {
                c.lock().unwrap().push((done, total))
            })
            .await
            .unwrap();
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.last(), Some(&(len, len)), "{name}: {calls:?}");
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
        assert!(calls.iter().all(|&(_, t)| t == len));
        if len > PART_SIZE {
            assert!(calls.len() >= 3, "progress per part: {calls:?}");
        }
        assert_eq!(store.size(&key).await.unwrap(), Some(len));
        let got = store.get(&key).await.unwrap();
        assert!(got == bytes, "{name}: uploaded bytes differ");
        let off = len - 500;
        assert_eq!(
            store.get_range(&key, off, 500).await.unwrap(),
            &bytes[off as usize..]
        );
    }
    // Uploading a missing file fails.
    assert!(store
        .upload_file("input/x", &scratch.join("missing"), &|_, _| {})
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let store = LocalStore::new(&root);
    let r = root.clone();
    behaviour(&store, &move |k| r.join(k), &scratch).await;
    // Keys that would clash with the checksum files are refused.
    assert!(matches!(
        store.put("a.sha256", Bytes::new()).await,
        Err(StoreError::BadKey(_))
    ));
    // No temporary files are left behind.
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            assert!(!e.file_name().to_string_lossy().starts_with(".excam-tmp"));
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

/// An s3s-fs server on 127.0.0.1:0 with SigV4 auth; returns its port.
async fn serve_s3(root: &Path) -> u16 {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let service = {
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        b.build()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    port
}

fn s3_client(port: u16, secret: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(ACCESS_KEY, secret, None, None, "test"))
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    let port = serve_s3(&root).await;
    let client = s3_client(port, SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();

    // Wrong credentials are refused: authentication is really on.
    let wrong = S3Store::new(s3_client(port, "wrong-secret"), BUCKET, "p");
    let e = wrong.put("k", Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(e, StoreError::Other { .. }), "{e:?}");

    let store = S3Store::new(client, BUCKET, "pre/fix/");
    let r = root.clone();
    behaviour(
        &store,
        &move |k| r.join(BUCKET).join("pre/fix").join(k),
        &scratch,
    )
    .await;

    // Objects sit under the prefix; the checksum is in the metadata.
    let head = store
        .client()
        .head_object()
        .bucket(BUCKET)
        .key("pre/fix/jobs/a/r")
        .send()
        .await
        .unwrap();
    let sha = head.metadata().unwrap().get("sha256").unwrap();
    assert_eq!(sha.len(), 64);
    // The SHA-256 in the metadata is what `get` checks: an object whose
    // bytes do not match it is corrupt, one without it is returned as is.
    let raw = store.client();
    raw.put_object()
        .bucket(BUCKET)
        .key("pre/fix/jobs/a/meta")
        .metadata("sha256", "00".repeat(32))
        .body(Bytes::from_static(b"bytes").into())
        .send()
        .await
        .unwrap();
    assert!(matches!(
        store.get("jobs/a/meta").await,
        Err(StoreError::Corrupt { .. })
    ));
    raw.put_object()
        .bucket(BUCKET)
        .key("pre/fix/jobs/a/foreign")
        .body(Bytes::from_static(b"foreign").into())
        .send()
        .await
        .unwrap();
    assert_eq!(&store.get("jobs/a/foreign").await.unwrap()[..], b"foreign");

    // A store without prefix sees them under their full names.
    let bare = S3Store::new(store.client().clone(), BUCKET, "");
    assert_eq!(bare.size("pre/fix/jobs/a/r").await.unwrap(), Some(100_000));
}

/// The binary with an S3 store configured only through the standard AWS
/// environment (endpoint, credentials, region): `S3Store::from_env` with
/// path-style addressing, end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_runs_a_task_against_s3_from_env() {
    use excam_codec::container::y4m::Y4mWriter;
    use excam_codec::encode::encoder::EncoderConfig;
    use excam_codec::Image;
    use excam_worker::input::probe_input;
    use excam_worker::task::{CodecParams, StoreSpec, Task, TaskResult, TASK_VERSION};
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    std::fs::create_dir_all(&root).unwrap();
    let port = serve_s3(&root).await;
    let client = s3_client(port, SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let store = S3Store::new(client, BUCKET, "excam");

    let (w, h, n) = (32, 16, 6);
    let mut y4m = Vec::new();
    let mut wr = Y4mWriter::new(&mut y4m, w, h, (25, 1)).unwrap();
    for t in 0..n {
        wr.write_frame(&Image::filled(w, h, [(40 * t) as u8, 100, 150]))
            .unwrap();
    }
    drop(wr);
    store.put("in.y4m", Bytes::from(y4m)).await.unwrap();
    let (input, _) = probe_input(&store, "in.y4m").await.unwrap();
    let task = Task {
        version: TASK_VERSION,
        job: "s3job".into(),
        run: "run-1".into(),
        chunk: 0,
        chunks: 1,
        chunk_frames: n,
        group_chunks: 1,
        input,
        codec: CodecParams::from_config(&EncoderConfig::new(w, h)),
        store: StoreSpec::S3 {
            bucket: BUCKET.into(),
            prefix: "excam".into(),
        },
        relay: None,
        attempt: 1,
        wait_timeout_s: 10.0,
        fault: None,
        merge: None,
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_excam-worker"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_ENDPOINT_URL_S3", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&task).unwrap())
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: TaskResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.frames, n);
    // The chunk is in the bucket, under the prefix, path-style.
    let chunk = store.get(&r.chunk_key).await.unwrap();
    assert_eq!(chunk.len() as u64, r.chunk_bytes);
    assert!(root.join(BUCKET).join("excam").join(&r.chunk_key).is_file());
}
