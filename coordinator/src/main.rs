//! `excam`: the command-line front end of excam.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and a
//! `run` function; `main` only parses and dispatches. Errors travel as
//! `anyhow::Error` and are printed once, with their causes, before a
//! non-zero exit.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod calibrate_cmd;
mod decode_cmd;
mod encode_cmd;
mod info_cmd;
mod plan_cmd;
mod relay_cmd;

/// excam: a pure-Rust VP8 codec built for ExCamera-style parallel encoding.
#[derive(Debug, Parser)]
#[command(name = "excam", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a VP8 IVF or WebM file to Y4M or raw I420, or print per-frame MD5s.
    #[command(long_about = decode_cmd::LONG_ABOUT)]
    Decode(decode_cmd::DecodeArgs),
    /// Print one line per frame of a VP8 IVF or WebM file describing its headers.
    #[command(long_about = info_cmd::LONG_ABOUT)]
    Info(info_cmd::InfoArgs),
    /// Encode a Y4M file to VP8 in IVF or WebM, serially or ExCamera-style with --workers.
    Encode(Box<encode_cmd::EncodeArgs>),
    /// Run the state relay workers meet through, or talk to one.
    #[command(subcommand)]
    Relay(relay_cmd::RelayCommand),
    /// Predict the wall time and cost of an `ExCamera[N,x]` job.
    #[command(long_about = plan_cmd::LONG_ABOUT)]
    Plan(plan_cmd::PlanArgs),
    /// Measure the codec's costs on this machine for `excam plan`.
    #[command(long_about = calibrate_cmd::LONG_ABOUT)]
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// Run one chunk task (JSON on stdin): the worker of `--backend
    /// processes`, the same program as `excam-worker` (`excam worker --help`).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Worker {
        /// The worker's own arguments (`--help`, `--version`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode_cmd::run(&args),
        Command::Info(args) => info_cmd::run(&args),
        Command::Encode(args) => encode_cmd::run(*args),
        Command::Relay(cmd) => relay_cmd::run(cmd),
        Command::Plan(args) => plan_cmd::run(&args),
        Command::Calibrate(args) => calibrate_cmd::run(&args),
        // The worker prints its own errors in its protocol's form.
        Command::Worker { args } => return excam_worker::cli::main("excam worker", args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cancelled(&e) => {
            eprintln!("excam: {e}");
            ExitCode::from(130)
        }
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line.
            eprintln!("excam: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is a job cancelled by Ctrl-C, reported by the runtime
/// directly or through the library's encode.
fn cancelled(e: &anyhow::Error) -> bool {
    use excam_coordinator::{encode::EncodeError, runtime::JobError};
    e.downcast_ref::<JobError>()
        .is_some_and(JobError::is_cancelled)
        || e.downcast_ref::<EncodeError>()
            .is_some_and(EncodeError::is_cancelled)
}
