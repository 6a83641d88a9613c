//! TEMPORARY: manual testing of `excam relay` before the lead wires it in.
use clap::Parser;
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: excam_coordinator::relay_cmd::RelayCommand,
}
fn main() -> anyhow::Result<()> {
    excam_coordinator::relay_cmd::run(Cli::parse().cmd)
}
