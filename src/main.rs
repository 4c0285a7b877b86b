//! The `gitops-promote` binary: parses the command line and hands over to the library.
//!
//! Entrypoints. The runner passes the same `runs.args` to the main and the post container, so the
//! mode comes from the file name the binary was started as (`argv[0]`), not from arguments: the
//! image holds `/usr/local/bin/gitops-promote` and a symlink `gitops-promote-post` to it, and
//! action.yml names one as `entrypoint` and the other as `post-entrypoint`. Started as
//! `gitops-promote` with no subcommand, it runs the command the `command` input names (default
//! promote); started as `gitops-promote-post`, it rolls back from `STATE_*`, and does nothing when
//! the main step left no phase or wrote `on-failure=skip`.
//!
//! Exit codes: 0 success; 1 a step failed; 2 invalid inputs (nothing was touched) or a usage error.

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use gitops_promote::config::{self, Command as Cmd, Config, RawInputs, INPUTS};
use gitops_promote::runtime::Runtime;
use gitops_promote::strategy::StepError;
use gitops_promote::{guard, promote, rollback, status, values, verify};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The file name that selects post mode.
const POST_NAME: &str = "gitops-promote-post";

#[derive(Parser)]
#[command(
    name = "gitops-promote",
    version,
    about = "Promote a version through GitOps and roll it back on failure"
)]
struct Cli {
    /// Without a subcommand, the command the `command` input names (default promote).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Edit values, open a PR, merge, sync Argo CD, wait for Healthy, verify (the action's main step).
    Promote(InputArgs),
    /// Revert a promotion through git (the post step, or standalone with --merge-sha or --pr-number).
    Rollback(InputArgs),
    /// Run the metrics gate alone.
    Verify(InputArgs),
    /// Roll back the last promotion if the gate fails within --rollback-window.
    Guard(InputArgs),
    /// Check that each app is Synced to the base branch head.
    Status(InputArgs),
    /// Apply --set to values files in place and print the diff (no git, no network).
    Edit(values::cli::EditArgs),
    /// Print action.yml, or write action.yml, docs/inputs.md and README.md's tables (generated from src/config.rs).
    #[command(hide = true)]
    ActionYml(ActionYmlArgs),
}

/// Options of the hidden `action-yml` command.
#[derive(clap::Args)]
struct ActionYmlArgs {
    /// Write action.yml and docs/inputs.md under this directory instead of printing.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    write: Option<PathBuf>,
}

/// Every input as a flag, built from [`INPUTS`] so that `--help` cannot drift from action.yml.
/// Holds the (name, value) pairs given; repeated flags are joined by newlines.
struct InputArgs(Vec<(String, String)>);

impl FromArgMatches for InputArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let given = INPUTS
            .iter()
            .filter_map(|d| {
                let vals: Vec<&String> = m.get_many::<String>(d.name)?.collect();
                let joined: Vec<&str> = vals.iter().map(|s| s.as_str()).collect();
                Some((d.name.to_string(), joined.join("\n")))
            })
            .collect();
        Ok(InputArgs(given))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = InputArgs::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for InputArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(INPUTS.iter().map(|d| {
            let arg = Arg::new(d.name)
                .long(d.name)
                .help(config::flag_help(d))
                .value_name(config::flag_value_name(d))
                .action(ArgAction::Append);
            if d.kind == config::Kind::Bool {
                // `--dry-run` alone means true; `--dry-run=false` is also accepted.
                arg.num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
            } else {
                arg
            }
        }))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        InputArgs::augment_args(cmd)
    }
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    if argv0.as_deref().and_then(|p| p.file_name()) == Some(POST_NAME.as_ref()) {
        return run_post();
    }
    match Cli::parse().command {
        None => {
            let cmd = RawInputs::from_env(&[])
                .get("command")
                .and_then(Cmd::parse)
                .unwrap_or(Cmd::Promote);
            run_command(cmd, &[])
        }
        Some(Command::Promote(a)) => run_command(Cmd::Promote, &a.0),
        Some(Command::Rollback(a)) => run_command(Cmd::Rollback, &a.0),
        Some(Command::Verify(a)) => run_command(Cmd::Verify, &a.0),
        Some(Command::Guard(a)) => run_command(Cmd::Guard, &a.0),
        Some(Command::Status(a)) => run_command(Cmd::Status, &a.0),
        Some(Command::Edit(args)) => values::cli::run(&args),
        Some(Command::ActionYml(a)) => action_yml(&a),
    }
}

/// Reads and checks the inputs, masking secrets before anything else is printed.
fn load(cmd: Cmd, flags: &[(String, String)], rt: &mut Runtime) -> Result<Config, ExitCode> {
    let raw = RawInputs::from_env(flags);
    for secret in raw.secrets() {
        rt.mask(secret);
    }
    Config::from_raw(cmd, &raw).map_err(|e| {
        for p in &e.problems {
            rt.error(&StepError::new("inputs", p));
        }
        ExitCode::from(2)
    })
}

/// Runs one command of the main entrypoint or the CLI.
fn run_command(cmd: Cmd, flags: &[(String, String)]) -> ExitCode {
    let mut rt = Runtime::from_process();
    let config = match load(cmd, flags, &mut rt) {
        Ok(c) => c,
        Err(code) => return code,
    };
    set_git_timeouts(&config);
    let result = block_on(async {
        match cmd {
            Cmd::Promote => promote::run(&config, &mut rt).await,
            Cmd::Rollback => rollback::run(&config, &mut rt, false).await,
            Cmd::Verify => verify::command(&config, &mut rt).await,
            Cmd::Guard => guard::run(&config, &mut rt).await,
            Cmd::Status => status::run(&config, &mut rt).await,
        }
    });
    finish(&mut rt, result)
}

/// The post entrypoint: roll back from the main step's state, or do nothing.
fn run_post() -> ExitCode {
    let mut rt = Runtime::from_process();
    let raw = RawInputs::from_env(&[]);
    for secret in raw.secrets() {
        rt.mask(secret);
    }
    let phase = rt.state_get("phase").map(str::to_string);
    let skip = rt.state_get("on-failure") == Some("skip");
    match phase.as_deref() {
        None => {
            rt.info("gitops-promote post: the main step changed nothing; nothing to roll back.");
            return ExitCode::SUCCESS;
        }
        Some(_) if skip => {
            rt.info("gitops-promote post: the main step ended by ignore or abort; no rollback.");
            return ExitCode::SUCCESS;
        }
        Some("rolled-back") => {
            rt.info("gitops-promote post: already rolled back in the main step.");
            return ExitCode::SUCCESS;
        }
        Some(_) => {}
    }
    let config = match Config::from_raw(Cmd::Rollback, &raw) {
        Ok(c) => c,
        Err(e) => {
            for p in &e.problems {
                rt.error(&StepError::new("inputs", p));
            }
            return ExitCode::from(2);
        }
    };
    set_git_timeouts(&config);
    let result = block_on(rollback::run(&config, &mut rt, true));
    finish(&mut rt, result)
}

/// Bounds libgit2's waits by `request-timeout`: without it a stalled git host hangs the job.
fn set_git_timeouts(config: &Config) {
    let io = config.request_timeout;
    // SAFETY: called on the main thread before the tokio runtime (or any other thread) starts.
    unsafe { gitops_promote::git::set_network_timeouts(io.min(Duration::from_secs(10)), io) };
}

/// Runs a flow on a multi-threaded runtime (apps are synced concurrently).
fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(fut)
}

/// Reports a failed step as an annotation; a failed step exits 1.
fn finish(rt: &mut Runtime, result: Result<(), StepError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            rt.error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints action.yml or writes the generated files.
fn action_yml(args: &ActionYmlArgs) -> ExitCode {
    let Some(dir) = &args.write else {
        print!("{}", config::action_yml());
        return ExitCode::SUCCESS;
    };
    let write = || -> std::io::Result<()> {
        std::fs::write(dir.join("action.yml"), config::action_yml())?;
        std::fs::create_dir_all(dir.join("docs"))?;
        std::fs::write(dir.join("docs/inputs.md"), config::inputs_md())?;
        let readme = dir.join("README.md");
        if let Some(new) = std::fs::read_to_string(&readme)
            .ok()
            .and_then(|r| config::readme_with_inputs(&r))
        {
            std::fs::write(readme, new)?;
        }
        Ok(())
    };
    match write() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: cannot write action.yml or docs/inputs.md under {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
