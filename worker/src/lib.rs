//! Runs one chunk of an excam job: the phase functions every backend
//! shares, the task format, the durable store, and the worker that runs a
//! task locally (stdin) or as a Lambda function.

pub mod chunk;
pub mod store;
pub mod task;
