//! The excam coordinator: CLI commands and (later) the ExCamera pipeline.

pub mod container;
pub mod encode_cmd;
pub mod encode_runtime;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod relay_cmd;
pub mod runtime;
