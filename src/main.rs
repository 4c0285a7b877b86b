//! The `gitops-promote` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};
use gitops_promote::values;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gitops-promote",
    version,
    about = "Promote a version through GitOps and roll it back on failure"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply --set to values files in place and print the diff (no git, no network).
    Edit(values::cli::EditArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Edit(args) => values::cli::run(&args),
    }
}
