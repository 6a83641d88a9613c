//! Runs one chunk of an excam job: the phase functions every backend
//! shares, the task format, the durable store, and the worker that runs a
//! task locally (stdin) or as a Lambda function.
//!
//! - [`chunk`]: the three phases as pure functions;
//! - [`graph`]: the ExCamera plan as data, the (chunk, phase) graph every
//!   backend and the planner walk;
//! - [`task`]: what a coordinator sends ([`task::Task`]) and gets back
//!   ([`task::TaskResult`]);
//! - [`store`]: the durable store ([`store::LocalStore`], `store::S3Store`
//!   with the default `cloud` feature, [`store::open_store`]);
//! - [`input`]: the Y4M input, read chunk by chunk with ranged reads;
//! - [`keys`]: the names of mailboxes and store keys, the frame-list format;
//! - [`run`]: [`run::run_task`], one task from start to finish;
//! - [`cli`]: the worker's command line (`excam-worker`, `excam worker`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "fault-injection")]
pub mod chaos;
pub mod chunk;
pub mod cli;
pub mod graph;
pub mod input;
pub mod keys;
pub mod run;
pub mod store;
pub mod task;

pub use run::{run_task, run_task_as, TaskError};
#[cfg(feature = "cloud")]
pub use store::S3Store;
pub use store::{open_store, LocalStore, Store, StoreError};
