//! The local `edit` command: apply `--set` to a values file in place and print the diff.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `gitops-promote edit` (a fixed interface: other checks call it).
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// Values file to edit.
    #[arg(long)]
    pub file: PathBuf,
    /// `PATH=VALUE`, applied in order; all apply or none.
    #[arg(long = "set", required = true)]
    pub set: Vec<String>,
    /// Also print a unified diff.
    #[arg(long)]
    pub diff: bool,
    /// Print the diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Add keys that do not exist under their parent.
    #[arg(long)]
    pub create_missing: bool,
    /// Edit an anchored scalar (its aliases change too).
    #[arg(long)]
    pub allow_anchor: bool,
    /// Document index in a multi-document file (0-based).
    #[arg(long)]
    pub document: Option<usize>,
    /// JSON schema the result must validate against (default: values.schema.json beside the file).
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

/// Runs `edit`; prints errors as annotations.
pub fn run(args: &EditArgs) -> ExitCode {
    let _ = args;
    eprintln!("edit: not implemented yet");
    ExitCode::FAILURE
}
