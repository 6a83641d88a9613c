//! The excam coordinator: CLI commands and (later) the ExCamera pipeline.
pub mod relay_cmd;
