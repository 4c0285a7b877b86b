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
//! Cancellation: SIGINT and SIGTERM stop the flow at a safe point ([`gitops_promote::base::cancel`]); the
//! step then says what stands and exits 1. The post step runs for a failed or a cancelled job
//! (`post-if: failure() || cancelled()`): it reverts a promotion that was merged but not yet
//! verified, and leaves alone one that finished before the job was cancelled (a cancellation stops a
//! job; it is no verdict on a version that passed its checks, and a newer run may build on it).
//!
//! Exit codes: 0 success; 1 a step failed or was cancelled; 2 invalid inputs (nothing was touched)
//! or a usage error.

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use gitops_promote::base::cancel::{self, Cancelled, Outcome};
use gitops_promote::base::state::{Phase, Record};
use gitops_promote::base::StepError;
use gitops_promote::clients::runtime::Runtime;
use gitops_promote::config::{self, Command as Cmd, Config, RawInputs, INPUTS};
use gitops_promote::flows::{edit, guard, promote, rollback, status, verify};
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
    Edit(edit::EditArgs),
    /// Print action.yml, or write action.yml, docs/inputs.md and README.md's tables (generated from src/config/inputs.rs).
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
        Some(Command::Edit(args)) => edit::run(&args),
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
    gitops_promote::base::retry::set_sink(rt.info_sink());
    let config = match load(cmd, flags, &mut rt) {
        Ok(c) => c,
        Err(code) => return code,
    };
    set_git_timeouts(&config);
    let outcome = block_on(async {
        match cmd {
            Cmd::Promote => promote::run(&config, &mut rt).await,
            Cmd::Rollback => rollback::run(&config, &mut rt, None).await,
            Cmd::Verify => verify::command(&config, &mut rt).await,
            Cmd::Guard => guard::run(&config, &mut rt).await,
            Cmd::Status => status::run(&config, &mut rt).await,
        }
    });
    finish(&mut rt, outcome, false)
}

/// The post entrypoint: roll back from the main step's state, or do nothing. The runner hands it
/// every input of the main step, `command` included; it acts on the state alone.
fn run_post() -> ExitCode {
    let mut rt = Runtime::from_process();
    gitops_promote::base::retry::set_sink(rt.info_sink());
    let raw = RawInputs::from_env(&[]).without("command");
    for secret in raw.secrets() {
        rt.mask(secret);
    }
    let record = Record::from_pairs(|k| rt.state_get(k).map(str::to_string));
    let job = raw.get("job-status").unwrap_or("failure");
    let why = match post_decision(&record, job) {
        Ok(why) => why,
        Err(nothing) => {
            rt.info(&format!("gitops-promote post: {nothing}"));
            return ExitCode::SUCCESS;
        }
    };
    rt.info(&format!("gitops-promote post: rolling back because {why}"));
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
    let outcome = block_on(rollback::run(&config, &mut rt, Some(why)));
    finish(&mut rt, outcome, true)
}

/// Why the post step rolls back, or why it does nothing, from the main step's record and the job's
/// status (`job-status`: success, failure or cancelled).
fn post_decision(record: &Record, job: &str) -> Result<&'static str, String> {
    let pr = || {
        record
            .pr_number
            .map(|n| format!("PR #{n}"))
            .unwrap_or_else(|| "the promotion".into())
    };
    if record.phase() == Phase::None {
        return Err("the main step changed nothing remote; nothing to roll back.".into());
    }
    if record.on_failure == "skip" {
        return Err("the main step ended by ignore or abort, or left its PR open (merge: false); no rollback.".into());
    }
    match (record.phase(), job) {
        (Phase::RolledBack, _) => Err("already rolled back in the main step.".into()),
        (_, "success") => Err("the job succeeded; nothing to roll back.".into()),
        (Phase::Done, "cancelled") => Err(format!(
            "the job was cancelled after the promotion finished and passed its checks, so {} stays deployed: a cancellation is no verdict on it. To undo it, run this action with command: rollback and pr-number: {}.",
            pr(),
            record.pr_number.map(|n| n.to_string()).unwrap_or_else(|| "N".into())
        )),
        (Phase::Pushed | Phase::PrOpen, "cancelled") => {
            Ok("the job was cancelled before the promotion was merged")
        }
        (_, "cancelled") => {
            Ok("the job was cancelled after the merge, before the promotion was verified")
        }
        _ => Ok("the job failed after the promotion"),
    }
}

/// Bounds git's waits by `request-timeout`: without it a stalled git host hangs the job.
fn set_git_timeouts(config: &Config) {
    let io = config.request_timeout;
    gitops_promote::clients::git::set_network_timeouts(io.min(Duration::from_secs(10)), io);
}

/// Runs a flow on a multi-threaded runtime (apps are synced concurrently) until it ends or a
/// signal stops it. The runtime is shut down without waiting: a git transfer still running on a
/// blocking thread must not keep the step alive past the runner's kill.
fn block_on<T>(fut: impl std::future::Future<Output = T>) -> Outcome<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let outcome = runtime.block_on(cancel::run(fut));
    runtime.shutdown_background();
    outcome
}

/// Reports a failed step as an annotation, and a cancelled one with what stands; both exit 1.
fn finish(rt: &mut Runtime, outcome: Outcome<Result<(), StepError>>, post: bool) -> ExitCode {
    match outcome {
        Outcome::Finished(Ok(())) => ExitCode::SUCCESS,
        Outcome::Finished(Err(e)) => {
            rt.error(&e);
            // Best effort: the annotation above is what matters if the output file is gone.
            let _ = rt.output("error-type", e.kind.as_str());
            ExitCode::FAILURE
        }
        Outcome::Cancelled(c) => {
            let record = Record::from_pairs(|k| rt.state_get(k).map(str::to_string));
            let stands = what_stands(&record, post);
            let title = if post {
                "rollback cancelled"
            } else {
                "cancelled"
            };
            rt.warning(title, &format!("{}: {stands}", cancelled_by(c)));
            rt.summary(&format!(
                "## gitops-promote: {title}\n\n{}.\n\n**What stands**: {stands}\n",
                cancelled_by(c)
            ));
            ExitCode::FAILURE
        }
    }
}

/// Which signal stopped the step, and whether a write was cut off.
fn cancelled_by(c: Cancelled) -> String {
    let mut s = format!("gitops-promote stopped on {}", c.signal);
    if c.write_in_flight {
        s.push_str(" while a write to GitHub or git was still in flight (its result is unknown)");
    }
    s
}

/// One sentence on where a stopped promotion (or its rollback, `post`) leaves the repo, the PR and
/// the apps, and what happens next.
fn what_stands(r: &Record, post: bool) -> String {
    let pr = r
        .pr_number
        .map(|n| format!("PR #{n}"))
        .unwrap_or_else(|| "no PR".into());
    let next = if post {
        format!(
            "the rollback did not finish: run this action with command: rollback and pr-number: {} to finish it.",
            r.pr_number.map(|n| n.to_string()).unwrap_or_else(|| "N".into())
        )
    } else {
        "the post step (post-if: failure() || cancelled()) undoes it.".into()
    };
    match r.phase() {
        Phase::None => "nothing remote was changed; there is nothing to undo.".into(),
        Phase::Pushed => format!("branch {} was pushed, {pr} opened yet; {next}", r.branch),
        Phase::PrOpen => format!("{pr} is open and not merged; {next}"),
        Phase::Merged | Phase::Synced => format!(
            "{pr} is merged as {} on {}, and the apps {} are not verified healthy; {next}",
            r.merge_sha,
            r.base,
            if r.apps.is_empty() {
                "(none)".into()
            } else {
                r.apps.join(", ")
            }
        ),
        Phase::Verified | Phase::Done => {
            format!(
                "{pr} is merged as {} and was verified; it stays.",
                r.merge_sha
            )
        }
        Phase::RolledBack => format!(
            "{pr} was reverted on {}; the apps may still be syncing to the revert.",
            r.base
        ),
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
