//! The binary in Lambda mode under `cargo lambda watch` (the Lambda
//! runtime API emulator), invoked through the real `aws-sdk-lambda`
//! client: a task that succeeds comes back as its result, a task the
//! worker refuses comes back as a function error carrying the worker's
//! message. Skips when cargo-lambda is not installed.

// Needs the AWS SDK, which only the default `cloud` feature brings.
#![cfg(feature = "cloud")]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::primitives::Blob;
use bytes::Bytes;
use excam_codec::container::y4m::Y4mWriter;
use excam_codec::encode::encoder::EncoderConfig;
use excam_codec::Image;
use excam_worker::input::probe_input;
use excam_worker::store::{LocalStore, Store};
use excam_worker::task::{CodecParams, StoreSpec, Task, TaskResult, TASK_VERSION};

const FUNCTION: &str = "excam-worker";

/// Kills the emulator and the function when the test ends, pass or fail.
struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free loopback TCP port (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cargo lambda watch` on a loopback port and one instance of the
/// worker polling its runtime API; `None` when cargo-lambda is missing.
fn start_function() -> Option<(u16, Kill)> {
    if Command::new("cargo-lambda")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: cargo-lambda is not on PATH (pip install cargo-lambda)");
        return None;
    }
    let port = free_port();
    let emulator = Command::new("cargo-lambda")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut kill = Kill(vec![emulator]);
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let function = Command::new(env!("CARGO_BIN_EXE_excam-worker"))
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt/{FUNCTION}"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill.0.push(function);
    Some((port, kill))
}

/// What an invocation came back with: the result payload, or the function
/// error's `{"errorType", "errorMessage"}` payload.
enum Answer {
    Result(serde_json::Value),
    FunctionError(serde_json::Value),
}

async fn invoke(client: &aws_sdk_lambda::Client, task: &Task) -> Answer {
    let out = client
        .invoke()
        .function_name(FUNCTION)
        .payload(Blob::new(serde_json::to_vec(task).unwrap()))
        .send()
        .await;
    match out {
        Ok(o) => {
            let payload = o.payload.map(Blob::into_inner).unwrap_or_default();
            let v = serde_json::from_slice(&payload).unwrap();
            if o.function_error.is_some() {
                Answer::FunctionError(v)
            } else {
                Answer::Result(v)
            }
        }
        // AWS answers a function error with 200 and X-Amz-Function-Error;
        // the emulator with an HTTP error carrying the same payload.
        Err(SdkError::ServiceError(e)) => {
            let body = e.raw().body().bytes().unwrap_or_default();
            Answer::FunctionError(
                serde_json::from_slice(body)
                    .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(body))),
            )
        }
        Err(e) => panic!("invoke: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_mode_answers_invocations() {
    let Some((port, _kill)) = start_function() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = LocalStore::new(&root);
    let (w, h, n) = (32, 16, 5);
    let mut y4m = Vec::new();
    let mut wr = Y4mWriter::new(&mut y4m, w, h, (25, 1)).unwrap();
    for t in 0..n {
        wr.write_frame(&Image::filled(w, h, [(30 * t) as u8, 90, 160]))
            .unwrap();
    }
    drop(wr);
    store.put("in.y4m", Bytes::from(y4m)).await.unwrap();
    let (input, _) = probe_input(&store, "in.y4m").await.unwrap();
    let task = Task {
        version: TASK_VERSION,
        job: "lambda-job".into(),
        run: "run-1".into(),
        chunk: 0,
        chunks: 1,
        chunk_frames: n,
        group_chunks: 1,
        input,
        codec: CodecParams::from_config(&EncoderConfig::new(w, h)),
        store: StoreSpec::Local { root: root.clone() },
        relay: None,
        attempt: 1,
        wait_timeout_s: 5.0,
        fault: None,
        merge: None,
    };
    let mut bad = task.clone();
    bad.version = 42;
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "AKIAEXCAMTEST000",
            "excam-test-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let client = aws_sdk_lambda::Client::from_conf(conf);

    let Answer::Result(v) = invoke(&client, &task).await else {
        panic!("a valid task failed");
    };
    let r: TaskResult = serde_json::from_value(v).unwrap();
    assert_eq!((r.chunk, r.frames), (0, n));
    assert!(r.worker.starts_with("lambda:"), "{}", r.worker);
    assert!(store.size(&r.chunk_key).await.unwrap().is_some());

    let Answer::FunctionError(v) = invoke(&client, &bad).await else {
        panic!("a task of another version was accepted");
    };
    assert_eq!(v["errorType"], "excam.TaskError", "{v}");
    let inner: serde_json::Value =
        serde_json::from_str(v["errorMessage"].as_str().unwrap()).unwrap();
    assert!(
        inner["error"].as_str().unwrap().contains("version"),
        "{inner}"
    );
    assert!(inner["phase"].is_null());
}
