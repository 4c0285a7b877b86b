//! The one universe every e2e test runs in (issue #15). [`Ctx`] is a [`Sandbox`] plus the files
//! the Actions runner hands a step (`GITHUB_OUTPUT`, `GITHUB_STATE`, `GITHUB_STEP_SUMMARY`), and
//! runs the built binary as the runner does: `INPUT_*` variables for the main step, then `STATE_*`
//! for the post step. Tests of a client library take the same sandbox without a runner from
//! [`sandbox`]; either way it is started by [`sandbox_with`]. The helpers below serve both: the
//! release repo, the call log, clients pointed at the emulators, Prometheus's data, and the helper
//! processes a test runs. A helper that only one file needs stays in that file.

// benches/promote.rs builds this file too and uses only a part of it.
#![allow(dead_code)]

use sandbox::{Options, Sandbox};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The release repository every test promotes in: the sandbox's seeded one.
pub const REPO: &str = sandbox::world::SEED_REPO;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_gitops-promote");

/// The runner's two steps and a job's status, here so that tests need only the harness.
pub use crate::runner::{Job, Step};

// ---------------------------------------------------------------------------------------------
// Starting the universe, and running the binary in it.

/// A fresh sandbox without Prometheus, for the client-level tests that call the library's APIs
/// directly and so need no runner workspace.
pub fn sandbox() -> Sandbox {
    sandbox_with(Options::default())
}

/// [`sandbox`] with the given parts; the one place every e2e test's sandbox is started.
pub fn sandbox_with(opts: Options) -> Sandbox {
    Sandbox::start(opts).expect("sandbox starts")
}

/// A fresh sandbox with Prometheus, once it has data for `app` ([`wait_for_metrics`]).
pub fn sandbox_with_metrics(app: &str) -> Sandbox {
    let sb = sandbox_with(Options { prometheus: true });
    wait_for_metrics(&sb, app);
    sb
}

/// A sandbox plus a runner workspace: what a test of the built binary runs it in.
pub struct Ctx {
    /// The emulators, the git host and the seeded world.
    pub sb: Sandbox,
    /// Where each step gets its workspace ([`Ctx::workspace`]).
    pub dir: tempfile::TempDir,
    run_id: AtomicU32,
}

impl Ctx {
    /// A fresh sandbox without Prometheus.
    pub fn new() -> Ctx {
        Ctx::with(Options::default())
    }

    /// A fresh sandbox with the given parts.
    pub fn with(opts: Options) -> Ctx {
        Ctx {
            sb: sandbox_with(opts),
            dir: tempfile::tempdir().unwrap(),
            run_id: AtomicU32::new(1000),
        }
    }

    /// A fresh sandbox with Prometheus, once it has data for `app` ([`wait_for_metrics`]).
    pub fn with_metrics(app: &str) -> Ctx {
        let ctx = Ctx::with(Options { prometheus: true });
        wait_for_metrics(&ctx.sb, app);
        ctx
    }

    /// Inputs every promote needs in this sandbox: repo, token, Argo CD server and token, file.
    pub fn base_inputs(&self) -> Vec<(String, String)> {
        [
            ("github-token", self.sb.world.token.as_str()),
            ("repository", REPO),
            ("file", sandbox::world::SEED_VALUES_PATH),
            ("argocd-server", self.sb.argocd_url.as_str()),
            ("argocd-token", self.sb.argocd.token()),
            ("argocd-app", "app"),
            ("health-timeout", "60s"),
            ("approval-timeout", "60s"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// `base_inputs()` overridden and extended by `inputs`: the `with:` of a step.
    pub fn inputs(&self, inputs: &[(&str, &str)]) -> Vec<(String, String)> {
        merge(self.base_inputs(), inputs)
    }

    /// A new runner workspace for one step; kept after the step, so that a test can scan
    /// everything every step left behind.
    pub fn workspace(&self) -> PathBuf {
        tempfile::tempdir_in(self.dir.path()).unwrap().keep()
    }

    /// Runs the main step with `base_inputs()` overridden and extended by `inputs`.
    pub fn main(&self, inputs: &[(&str, &str)]) -> Run {
        self.run(Step::Main, &self.inputs(inputs), &BTreeMap::new())
    }

    /// Runs the post step of a failed job with the state a main step left, as the runner does.
    pub fn post(&self, inputs: &[(&str, &str)], state: &BTreeMap<String, String>) -> Run {
        self.post_after(Job::Failure, inputs, state)
            .expect("post-if holds for a failed job")
    }

    /// Runs the post step of a job that ended as `job`, or `None` when action.yml's `post-if`
    /// says the runner would not run it.
    pub fn post_after(
        &self,
        job: Job,
        inputs: &[(&str, &str)],
        state: &BTreeMap<String, String>,
    ) -> Option<Run> {
        if !crate::runner::post_runs(job) {
            return None;
        }
        let n = self.next_run_id();
        Some(self.run_job(Step::Post, job, &self.inputs(inputs), state, n, 1))
    }

    /// A new run id, so each run gets its own branch as a new workflow run would.
    pub fn next_run_id(&self) -> u32 {
        self.run_id.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Runs the main step as attempt `attempt` of workflow run `run_id` (a re-run keeps the id).
    pub fn main_attempt(&self, run_id: u32, attempt: u32, inputs: &[(&str, &str)]) -> Run {
        self.run_as(
            Step::Main,
            &self.inputs(inputs),
            &BTreeMap::new(),
            run_id,
            attempt,
        )
    }

    /// Runs the binary as the runner does for `step`, with exactly these inputs and state.
    pub fn run(
        &self,
        step: Step,
        inputs: &[(String, String)],
        state: &BTreeMap<String, String>,
    ) -> Run {
        let n = self.next_run_id();
        self.run_as(step, inputs, state, n, 1)
    }

    /// Runs the binary as attempt `attempt` of run `n`, in a fresh runner workspace.
    pub fn run_as(
        &self,
        step: Step,
        inputs: &[(String, String)],
        state: &BTreeMap<String, String>,
        n: u32,
        attempt: u32,
    ) -> Run {
        self.run_job(step, job_of(step), inputs, state, n, attempt)
    }

    /// The runner's launch of `step` in workspace `work` under this universe, as attempt 1 of a
    /// new run.
    pub fn launch<'a>(
        &'a self,
        step: Step,
        job: Job,
        with: &'a [(String, String)],
        state: &'a BTreeMap<String, String>,
        work: &'a Path,
    ) -> crate::runner::Launch<'a> {
        crate::runner::Launch {
            step,
            with,
            state,
            job,
            api_url: &self.sb.github_api_url,
            server_url: self.sb.git_url(),
            token: &self.sb.world.token,
            run_id: self.next_run_id(),
            attempt: 1,
            job_id: "promote",
            work,
        }
    }

    /// Runs `step` of a job whose status is `job`, and reads what it left.
    pub fn run_job(
        &self,
        step: Step,
        job: Job,
        inputs: &[(String, String)],
        state: &BTreeMap<String, String>,
        n: u32,
        attempt: u32,
    ) -> Run {
        let work = self.workspace();
        let mut launch = self.launch(step, job, inputs, state, &work);
        (launch.run_id, launch.attempt) = (n, attempt);
        launch.run()
    }

    /// The values file on the base branch right now.
    pub fn values_on_main(&self) -> String {
        file_at(
            &self.sb,
            "refs/heads/main",
            sandbox::world::SEED_VALUES_PATH,
        )
        .expect("values file on main")
    }

    /// Branches of ours (`gitops-promote/...`) left on the release repo: a clean end leaves none.
    pub fn our_branches(&self) -> Vec<String> {
        let repo = self.sb.world.open(REPO).unwrap();
        let refs = repo.references_glob("refs/heads/gitops-promote/*").unwrap();
        refs.filter_map(|r| r.ok()?.shorthand().ok().map(str::to_string))
            .collect()
    }

    /// The SHA `main` points at.
    pub fn main_sha(&self) -> String {
        main_sha(&self.sb)
    }
}

impl Ctx {
    /// Waits for the newest PR of the seeded repo to exist and returns its number.
    pub fn wait_for_pr(&self) -> u64 {
        let mut n = 0;
        wait_until("a PR to be opened", Duration::from_secs(60), || {
            n = self
                .sb
                .github
                .prs(REPO)
                .last()
                .map(|p| p.number)
                .unwrap_or(0);
            n > 0
        });
        n
    }

    /// Waits until the binary left a comment on PR `n` containing `text`.
    pub fn wait_for_comment(&self, n: u64, text: &str) {
        wait_until(
            &format!("a comment with {text:?} on PR #{n}"),
            Duration::from_secs(60),
            || {
                self.sb
                    .github
                    .pr_view(REPO, n)
                    .is_some_and(|p| p.comments.iter().any(|(_, b)| b.contains(text)))
            },
        );
    }
}

/// The job's status when `step` starts, unless a test says otherwise: a main step runs while the
/// job has not failed; a post step here is a failed job's, the one that rolls back.
fn job_of(step: Step) -> Job {
    match step {
        Step::Main => Job::Success,
        Step::Post => Job::Failure,
    }
}

/// `base` with `extra` applied on top (same name replaces, new names are added).
fn merge(mut base: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        base.retain(|(bk, _)| bk != k);
        base.push((k.to_string(), v.to_string()));
    }
    base
}

// ---------------------------------------------------------------------------------------------
// What a step left behind.

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    /// The exit code, -1 when killed by a signal.
    pub code: i32,
    /// What it printed on stdout, where the workflow commands go.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// What it wrote to `GITHUB_OUTPUT`.
    pub outputs: BTreeMap<String, String>,
    /// What it wrote to `GITHUB_STATE`, for the post step's `STATE_*`.
    pub state: BTreeMap<String, String>,
    /// What it wrote to `GITHUB_STEP_SUMMARY`.
    pub summary: String,
}

impl Run {
    /// What a step that exited with `code`, having printed `stdout` and `stderr`, left in the
    /// file-command files of its directory `work`.
    pub fn read(code: i32, stdout: String, stderr: String, work: &Path) -> Run {
        let read = |f: &str| std::fs::read_to_string(work.join(f)).unwrap_or_default();
        Run {
            code,
            stdout,
            stderr,
            outputs: parse_command_file(&read("output")),
            state: parse_command_file(&read("state")),
            summary: read("summary"),
        }
    }

    /// [`Run::read`] for a step run to its end by `Command::output`.
    pub fn from_output(out: &std::process::Output, work: &Path) -> Run {
        let printed = Run::outside(out);
        Run::read(printed.code, printed.stdout, printed.stderr, work)
    }

    /// [`Run::read`] for the binary run outside the runner (as `edit` is), which has no
    /// file-command files to leave.
    pub fn outside(out: &std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs: BTreeMap::new(),
            state: BTreeMap::new(),
            summary: String::new(),
        }
    }

    /// Everything the step printed, stdout then stderr.
    pub fn log(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics with the whole log unless the step succeeded.
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(self.code, 0, "step failed:\n{}", self.log());
        self
    }

    /// Panics with the whole log unless the step failed.
    pub fn assert_failed(&self) -> &Run {
        assert_ne!(
            self.code,
            0,
            "step succeeded but should have failed:\n{}",
            self.log()
        );
        self
    }

    /// An output the step set, or a panic naming the ones it did set.
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).unwrap_or_else(|| {
            panic!(
                "no output {name:?}; outputs: {:?}\n{}",
                self.outputs,
                self.log()
            )
        })
    }

    /// The `::error` annotations the step printed.
    pub fn errors(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.starts_with("::error"))
            .map(str::to_string)
            .collect()
    }
}

/// A step started in the background, its stdout and stderr going to files of its workspace, so a
/// test can act while it runs (hold a call, kill it, read the state it has written so far).
pub struct Spawned {
    /// The step's process (or the one wrapping it), to wait for, signal or kill.
    pub child: std::process::Child,
    /// The step's workspace, where its files and its output land.
    pub work: PathBuf,
}

impl Spawned {
    /// Starts the main step with `ctx.base_inputs()` plus `inputs`.
    pub fn main(ctx: &Ctx, inputs: &[(&str, &str)]) -> Spawned {
        Spawned::start(ctx, Step::Main, inputs, &BTreeMap::new())
    }

    /// Starts `step` (the post step as a failed job's) with `state` as `STATE_*`.
    pub fn start(
        ctx: &Ctx,
        step: Step,
        inputs: &[(&str, &str)],
        state: &BTreeMap<String, String>,
    ) -> Spawned {
        Spawned::start_via(ctx, step, inputs, state, ctx.sb.git_url())
    }

    /// As [`Spawned::start`], with git reached at `git_url` (a faulting proxy), and `TMPDIR` inside
    /// the workspace so that temp files the step leaves behind can be found.
    pub fn start_via(
        ctx: &Ctx,
        step: Step,
        inputs: &[(&str, &str)],
        state: &BTreeMap<String, String>,
        git_url: &str,
    ) -> Spawned {
        let work = ctx.workspace();
        let tmp = work.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let all = ctx.inputs(inputs);
        let mut launch = ctx.launch(step, job_of(step), &all, state, &work);
        launch.server_url = git_url;
        let mut cmd = launch.command();
        cmd.env("TMPDIR", &tmp);
        Spawned::spawn(cmd, work)
    }

    /// Spawns `cmd` (a step's process, or one that wraps it) with its output going to `work`.
    pub fn spawn(mut cmd: std::process::Command, work: PathBuf) -> Spawned {
        cmd.stdout(std::fs::File::create(work.join("stdout")).unwrap())
            .stderr(std::fs::File::create(work.join("stderr")).unwrap());
        Spawned {
            child: cmd.spawn().expect("the step starts"),
            work,
        }
    }

    /// The state the step has written so far.
    pub fn state(&self) -> BTreeMap<String, String> {
        parse_command_file(&std::fs::read_to_string(self.work.join("state")).unwrap_or_default())
    }

    /// Waits for the step to end (at once if it was already waited for) and reads what it left.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().unwrap();
        let read = |f: &str| std::fs::read_to_string(self.work.join(f)).unwrap_or_default();
        let code = status.code().unwrap_or(-1);
        Run::read(code, read("stdout"), read("stderr"), &self.work)
    }
}

/// Parses a `GITHUB_OUTPUT`/`GITHUB_STATE` file: `name=value` lines and `name<<DELIM` heredocs.
pub fn parse_command_file(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            map.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            map.insert(name.to_string(), value.to_string());
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// The release repository.

/// The file at `path` on `rev` (a branch, ref or SHA) of the release repo, `None` when absent.
pub fn file_at(sb: &Sandbox, rev: &str, path: &str) -> Option<String> {
    sb.world.read_file(REPO, rev, path).unwrap()
}

/// The SHA `main` of the release repo points at.
pub fn main_sha(sb: &Sandbox) -> String {
    sb.world
        .resolve(REPO, "refs/heads/main")
        .unwrap()
        .to_string()
}

/// Commits `files` on `main` of the release repo, as someone else pushing would; returns the commit.
pub fn commit_on_main(sb: &Sandbox, files: &[(&str, &str)], message: &str) -> String {
    sb.world
        .commit(REPO, "main", files, message)
        .unwrap()
        .to_string()
}

/// `values` with the `image.tag` line set to `tag`, its indentation and comment kept, as the
/// product's edit leaves it.
pub fn with_tag(values: &str, tag: &str) -> String {
    values
        .lines()
        .map(|l| match l.split_once("tag: \"") {
            Some((indent, rest)) if indent.trim().is_empty() => {
                let after = rest.split_once('"').map_or("", |(_, after)| after);
                format!("{indent}tag: \"{tag}\"{after}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect()
}

/// The seeded values file with its tag set to `tag`.
pub fn values_with_tag(tag: &str) -> String {
    with_tag(sandbox::world::SEED_VALUES, tag)
}

/// Commits `tag` into the values file on `branch` of the seeded repo, creating the branch from
/// `main` first, as a push step (or, on `main`, a merged promotion) would; returns the commit.
pub fn push_tag(sb: &Sandbox, branch: &str, tag: &str) -> String {
    use sandbox::world::SEED_VALUES_PATH;
    let repo = sb.world.open(REPO).unwrap();
    let name = format!("refs/heads/{branch}");
    if repo.find_reference(&name).is_err() {
        let main = repo.refname_to_id("refs/heads/main").unwrap();
        repo.reference(&name, main, false, "branch").unwrap();
    }
    let values = file_at(sb, branch, SEED_VALUES_PATH).expect("the values file");
    sb.world
        .commit(
            REPO,
            branch,
            &[(SEED_VALUES_PATH, &with_tag(&values, tag))],
            &format!("Promote app to {tag}"),
        )
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The emulators, and the clients under test pointed at them.

/// The calls made to `service` with `method` on a path ending in `suffix`, in the order they were
/// answered: what tests of retries and waits count and time.
pub fn calls_to(sb: &Sandbox, service: &str, method: &str, suffix: &str) -> Vec<sandbox::Call> {
    let mut calls = sb.faults.calls(Some(service));
    calls.retain(|c| c.method == method && c.path.ends_with(suffix));
    calls
}

/// The GitHub client on the seeded repo, with short retry waits so that fault tests take
/// milliseconds; build it inside the test's runtime, as octocrab requires.
/// A bare octocrab over plain HTTP at `base` (the emulator's API or control URL), with `token`
/// sent as GitHub's Bearer: for reading and writing raw bodies as a user or a test would.
pub fn octocrab(base: &str, token: Option<&str>) -> octocrab::Octocrab {
    use octocrab::service::middleware::{auth_header::AuthHeaderLayer, base_uri::BaseUriLayer};
    let base: http::Uri = base.trim_end_matches('/').parse().unwrap();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<octocrab::OctoBody>();
    let auth = token.map(|t| format!("Bearer {t}").parse().unwrap());
    octocrab::OctocrabBuilder::new_empty()
        .with_service(http)
        .with_layer(&BaseUriLayer::new(base.clone()))
        .with_layer(&AuthHeaderLayer::new(auth, base.clone(), base))
        .with_auth(octocrab::AuthState::None)
        .build()
        .unwrap()
}

pub fn github_client(sb: &Sandbox) -> gitops_promote::clients::github::GitHub {
    let mut gh =
        gitops_promote::clients::github::GitHub::new(&sb.github_api_url, &sb.world.token, REPO)
            .unwrap();
    gh.backoff = Duration::from_millis(20);
    gh.retry_budget = Duration::from_secs(10);
    gh
}

/// The lines a client's progress callback printed, shared with the callback.
pub type Lines = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A progress callback for a client under test and the lines it records, so a test can assert
/// what a user would have seen in the log.
pub fn progress() -> (Lines, impl Fn(&str) + Send + Sync) {
    let lines: Lines = Lines::default();
    let l = lines.clone();
    (lines, move |s: &str| l.lock().unwrap().push(s.to_string()))
}

/// Settings of an Argo CD client on the sandbox's emulator, with its token; tests that need
/// another login or server start from these.
pub fn argocd_config(sb: &Sandbox) -> gitops_promote::clients::argocd::ArgoConfig {
    gitops_promote::clients::argocd::ArgoConfig {
        server: sb.argocd_url.clone(),
        token: Some(sb.argocd.token().into()),
        ..Default::default()
    }
}

/// The Argo CD client on the sandbox's emulator, connected with [`argocd_config`].
pub async fn argocd_client(sb: &Sandbox) -> gitops_promote::clients::argocd::ArgoCd {
    gitops_promote::clients::argocd::ArgoCd::connect(&argocd_config(sb))
        .await
        .expect("the Argo CD client connects")
}

// ---------------------------------------------------------------------------------------------
// Prometheus.

/// Waits (up to 60 s) until Prometheus has scraped the exporter enough for `rate()` on `app`, so
/// that a gate measures instead of finding no data.
pub fn wait_for_metrics(sb: &Sandbox, app: &str) {
    use gitops_promote::clients::verify::{self, Verdict, VerifyConfig};
    // 5 s is the shortest window any test queries: where it has two samples, every longer one has.
    let probe = VerifyConfig {
        prometheus_url: sb.prometheus.as_ref().expect("Prometheus").url.clone(),
        queries: verify::parse_queries(&format!(
            r#"sum(rate(http_requests_total{{app="{app}"}}[5s]))"#
        ))
        .unwrap(),
        count: 1,
        ..VerifyConfig::default()
    };
    wait_until("Prometheus data", Duration::from_secs(60), || {
        sb.block_on(verify::run(&probe, &|_| {}))
            .is_ok_and(|r| r.verdict == Verdict::Successful)
    });
}

/// PromQL for the share of `app`'s requests answered 500 over `window`: what the exporter raises
/// for `-bad` and `-errors` tags, so the metrics gate tests judge versions by it.
pub fn error_ratio(app: &str, window: &str) -> String {
    format!(
        r#"sum(rate(http_requests_total{{app="{app}",code="500"}}[{window}])) / sum(rate(http_requests_total{{app="{app}"}}[{window}]))"#
    )
}

// ---------------------------------------------------------------------------------------------
// Waiting, and the helper processes a test runs.

/// Waits until `cond` holds, polling every 50 ms, or panics after `timeout` naming `what`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `f` on another thread while `during` acts on the sandbox from this one (e.g. approves the
/// PR the binary is waiting on), and returns `f`'s result.
pub fn while_running<T: Send>(f: impl FnOnce() -> T + Send, during: impl FnOnce()) -> T {
    std::thread::scope(|s| {
        let h = s.spawn(f);
        during();
        h.join().expect("the step's thread")
    })
}

/// Runs an async test body on a runtime of its own (the sandbox has another).
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs a helper tool (`git`, `openssl`) to its end and returns its stdout, or panics with its
/// stderr: a tool that fails is the test's setup breaking, never a finding.
pub fn checked(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A loopback port nothing listens on (bound, then released): for a server the test starts, or
/// for a URL that must refuse connections.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A helper server a test runs (openssl, lighttpd), killed when dropped so that a failing test
/// leaves none behind.
pub struct Daemon {
    child: std::process::Child,
}

impl Daemon {
    /// Spawns `cmd` and waits (up to 20 s) until it accepts connections on `port`.
    pub fn start(what: &str, cmd: &mut std::process::Command, port: u16) -> Daemon {
        let d = Daemon {
            child: cmd.spawn().unwrap_or_else(|e| panic!("{what} starts: {e}")),
        };
        wait_until(what, Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
