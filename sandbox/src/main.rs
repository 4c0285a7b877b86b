//! `sandbox serve` (the fixed interface of DESIGN.md §9) and `sandbox demo`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use sandbox::{Options, Sandbox};

#[derive(Parser)]
#[command(about = "Local GitHub, git host, Argo CD and Prometheus for gitops-promote")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start every part, print KEY=VALUE lines, then SANDBOX_READY=1; run until killed.
    Serve {
        /// Also start Prometheus scraping the exporter.
        #[arg(long)]
        prometheus: bool,
    },
    /// Promote a good version, then a bad one, and watch it roll back (runs the gitops-promote binary).
    Demo {
        /// The gitops-promote binary (default: beside this one).
        #[arg(long)]
        bin: Option<std::path::PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Serve { prometheus } => {
            let sandbox = Sandbox::start(Options { prometheus })?;
            for (k, v) in sandbox.env() {
                println!("{k}={v}");
            }
            // On stderr: stdout's keys are the fixed interface (DESIGN.md §9) other checks parse.
            eprintln!(
                "GitHub Enterprise Server layout of the same emulator: {} (REST under /api/v3, git at /OWNER/REPO.git)",
                sandbox.ghes_url
            );
            println!("SANDBOX_READY=1");
            wait_for_stop_signal()?;
            drop(sandbox);
            Ok(())
        }
        Command::Demo { bin } => {
            let bin = bin.unwrap_or_else(sandbox::demo::default_bin);
            anyhow::ensure!(bin.exists(), "{} not found: build it first (cargo build --release --bin gitops-promote; ./dev demo does)", bin.display());
            sandbox::demo::run(&bin)
        }
    }
}

/// Blocks until SIGTERM or SIGINT, so that dropping the sandbox stops lighttpd and Prometheus.
fn wait_for_stop_signal() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
