//! `excam-worker`: runs one chunk task of an excam job (see
//! [`excam_worker::cli`]; `excam worker` is the same program).

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    excam_worker::cli::main("excam-worker", std::env::args().skip(1))
}
