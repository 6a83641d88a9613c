//! The binary in Lambda mode, against a mock Lambda Runtime API: one
//! invocation that succeeds and one that fails, answered on the right
//! endpoints with the right payloads.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use excam_codec::container::y4m::Y4mWriter;
use excam_codec::encode::encoder::EncoderConfig;
use excam_codec::Frame;
use excam_worker::input::probe_input;
use excam_worker::store::{LocalStore, Store};
use excam_worker::task::{CodecParams, StoreSpec, Task, TaskResult, TASK_VERSION};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the function posted back: (path, body).
type Posts = Arc<Mutex<Vec<(String, String)>>>;

async fn serve_runtime_api(events: Vec<(String, String)>, posts: Posts) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let events = Arc::new(Mutex::new(events.into_iter()));
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (events, posts) = (events.clone(), posts.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: Request<hyper::body::Incoming>| {
                        let (events, posts) = (events.clone(), posts.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            if path.ends_with("/invocation/next") {
                                let next = events.lock().unwrap().next();
                                let Some((id, body)) = next else {
                                    // No more invocations: keep the function waiting.
                                    std::future::pending::<()>().await;
                                    unreachable!()
                                };
                                let deadline = SystemTime::now()
                                    .duration_since(UNIX_EPOCH)
                                    .unwrap()
                                    .as_millis()
                                    + 60_000;
                                return Ok::<_, Infallible>(
                                Response::builder()
                                    .header("lambda-runtime-aws-request-id", id)
                                    .header("lambda-runtime-deadline-ms", deadline.to_string())
                                    .header(
                                        "lambda-runtime-invoked-function-arn",
                                        "arn:aws:lambda:us-east-1:000000000000:function:excam-worker",
                                    )
                                    .header("lambda-runtime-trace-id", "Root=1-0-0")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            );
                            }
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            posts
                                .lock()
                                .unwrap()
                                .push((path, String::from_utf8_lossy(&body).into_owned()));
                            Ok(Response::builder()
                                .status(202)
                                .body(Full::new(Bytes::new()))
                                .unwrap())
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_mode_answers_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = LocalStore::new(&root);
    let (w, h, n) = (32, 16, 5);
    let mut y4m = Vec::new();
    let mut wr = Y4mWriter::new(&mut y4m, w, h, (25, 1)).unwrap();
    for t in 0..n {
        wr.write_frame(&Frame::filled(w, h, [(30 * t) as u8, 90, 160]))
            .unwrap();
    }
    drop(wr);
    store.put("in.y4m", Bytes::from(y4m)).await.unwrap();
    let (input, _) = probe_input(&store, "in.y4m").await.unwrap();
    let task = Task {
        version: TASK_VERSION,
        job: "lambda-job".into(),
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
    };
    let mut bad = task.clone();
    bad.version = 42;
    let posts: Posts = Arc::default();
    let port = serve_runtime_api(
        vec![
            ("req-1".into(), serde_json::to_string(&task).unwrap()),
            ("req-2".into(), serde_json::to_string(&bad).unwrap()),
        ],
        posts.clone(),
    )
    .await;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_excam-worker"))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "excam-worker")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while posts.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answers in time: {:?}",
            posts.lock().unwrap()
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("function exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().await.unwrap();

    let posts = posts.lock().unwrap().clone();
    let (path, body) = &posts[0];
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-1/response");
    let r: TaskResult = serde_json::from_str(body).unwrap();
    assert_eq!((r.chunk, r.frames), (0, n));
    assert_eq!(r.worker, "lambda:req-1");
    assert!(store.size(&r.chunk_key).await.unwrap().is_some());

    let (path, body) = &posts[1];
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-2/error");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["errorType"], "excam.TaskError", "{v}");
    let inner: serde_json::Value =
        serde_json::from_str(v["errorMessage"].as_str().unwrap()).unwrap();
    assert!(
        inner["error"].as_str().unwrap().contains("version"),
        "{inner}"
    );
    assert!(inner["phase"].is_null());
}
