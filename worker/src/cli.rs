//! The worker's command line, shared by the `excam-worker` executable and
//! `excam worker` (so that one installed `excam` is also the worker of the
//! processes backend).
//!
//! As a Lambda function (when `AWS_LAMBDA_RUNTIME_API` is set) each
//! invocation's payload is a task and its response the result; otherwise
//! one task is read as JSON from stdin and its result printed on stdout.

use std::io::{Read, Write};
use std::process::ExitCode;

use crate::run::{local_worker_id, run_task_as, TaskError};
use crate::task::Task;
#[cfg(feature = "cloud")]
use crate::task::TaskResult;
#[cfg(feature = "cloud")]
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

/// `--help` of the worker; `{prog}` is how it was invoked.
const HELP: &str = "\
{prog}: runs one chunk of an excam job (all three phases).

USAGE:
    {prog} < task.json        run one task, print its result
    {prog} --help             this text
    {prog} --version          print the version

LOCAL MODE (AWS_LAMBDA_RUNTIME_API not set):
    Reads one task as JSON from stdin (the coordinator's Task: job, chunk,
    input, codec settings, store, relay, attempt, ...), runs it and prints
    the TaskResult as one line of JSON on stdout, exit status 0. On failure
    prints {\"error\": \"...\", \"phase\": \"encode\"|\"encode_given_state\"|\"rebase\"|null}
    on stdout and exits with status 1.

LAMBDA MODE (AWS_LAMBDA_RUNTIME_API set, as inside AWS Lambda):
    Serves invocations until the runtime stops it: the event payload is the
    task JSON, the response the TaskResult JSON. A failed task is a function
    error of type \"excam.TaskError\" whose message is the error JSON above.

STORE:
    Local directories, or S3 with credentials and region from the standard
    AWS chain (environment, profile, instance or Lambda role); set
    AWS_ENDPOINT_URL_S3 for an S3-compatible service (path-style addressing).

Logs go to stderr; RUST_LOG sets the level (default: info).
";

#[cfg(feature = "cloud")]
/// A task error as a Lambda function error.
#[derive(Debug)]
struct LambdaTaskError(TaskError);

#[cfg(feature = "cloud")]
impl From<LambdaTaskError> for Diagnostic {
    fn from(e: LambdaTaskError) -> Diagnostic {
        Diagnostic {
            error_type: "excam.TaskError".to_string(),
            error_message: e.0.to_json(),
        }
    }
}

fn init_logs(ansi: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn print_line(s: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").and_then(|()| out.flush()).is_ok()
}

fn fail(e: &TaskError) -> ExitCode {
    print_line(&e.to_json());
    ExitCode::from(1)
}

fn local_mode() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        return fail(&TaskError::new(None, format!("cannot read stdin: {e}")));
    }
    let task: Task = match serde_json::from_str(&input) {
        Ok(t) => t,
        Err(e) => return fail(&TaskError::new(None, format!("bad task JSON: {e}"))),
    };
    // Chaos runs (test builds): refuse the task as a throttled service would.
    #[cfg(feature = "fault-injection")]
    match crate::chaos::Chaos::from_env() {
        Ok(Some(chaos)) if chaos.throttled() => {
            print_line(&TaskError::new(None, "injected fault: throttled").to_json());
            return ExitCode::from(crate::chaos::THROTTLED_EXIT);
        }
        Ok(_) => {}
        Err(e) => return fail(&TaskError::new(None, e)),
    }
    match runtime().block_on(run_task_as(task, local_worker_id())) {
        Ok(result) => {
            let json = serde_json::to_string(&result).expect("a task result serializes");
            if print_line(&json) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(&e),
    }
}

#[cfg(feature = "cloud")]
async fn handle(event: LambdaEvent<Task>) -> Result<TaskResult, LambdaTaskError> {
    let worker = format!("lambda:{}", event.context.request_id);
    run_task_as(event.payload, worker)
        .await
        .map_err(LambdaTaskError)
}

#[cfg(feature = "cloud")]
fn lambda_mode() -> ExitCode {
    // One runtime serves every invocation: share the S3 client's
    // credentials and connections between them.
    crate::store::reuse_aws_config();
    match runtime().block_on(lambda_runtime::run(service_fn(handle))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("lambda runtime failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Without the `cloud` feature there is no Lambda runtime to serve.
#[cfg(not(feature = "cloud"))]
fn lambda_mode() -> ExitCode {
    tracing::error!("AWS_LAMBDA_RUNTIME_API is set, but this excam-worker was built without the `cloud` feature");
    ExitCode::from(1)
}

/// Runs the worker with `args` (the arguments after the program name, or
/// after `excam worker`); `prog` names it in messages. The exit status:
/// 0 done, 1 the task failed (its error as JSON on stdout), 2 bad usage,
/// 75 (fault-injection builds) a refused task.
pub fn main(prog: &str, args: impl IntoIterator<Item = String>) -> ExitCode {
    let mut args = args.into_iter();
    if let Some(a) = args.next() {
        return match a.as_str() {
            "-h" | "--help" => {
                print!("{}", HELP.replace("{prog}", prog));
                ExitCode::SUCCESS
            }
            "-V" | "--version" => {
                // Test harnesses read the feature list to know whether this
                // build honours injected faults.
                let features = if cfg!(feature = "fault-injection") {
                    " (features: fault-injection)"
                } else {
                    ""
                };
                println!("{prog} {}{features}", env!("CARGO_PKG_VERSION"));
                ExitCode::SUCCESS
            }
            other => {
                eprintln!("{prog}: unexpected argument {other:?}; see --help");
                ExitCode::from(2)
            }
        };
    }
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        // CloudWatch shows escape codes verbatim.
        init_logs(false);
        lambda_mode()
    } else {
        init_logs(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        local_mode()
    }
}
