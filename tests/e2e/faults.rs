//! Proof that nothing is lost when the outside world breaks (issue #7).
//!
//! - `fault_matrix`: every outside call the promote flow and the post-step rollback make, each
//!   answered once with a 5xx, a dropped connection, a 429, a 403 secondary rate limit, a delay past
//!   `request-timeout`, and with a 5xx that lasts (every answer for 60 calls). Each case runs the built binary
//!   in its own sandbox, as the runner would (main step, then the post step when main failed), and
//!   is classified from what a user would find: the base branch, the PRs and their comments, the
//!   branches left, the app's deployed tag and health. The calls are not listed by hand: a clean
//!   run's call log names them, so a new call in the flows joins the matrix by itself.
//! - `git_faults`: clone and push through a proxy that drops, stalls or answers 503 (the git host is not
//!   behind the sandbox's fault layer); `prometheus_faults`: the metrics gate's queries.
//! - `killed_*`: the main step SIGKILLed between steps; the post step cleans up or reverts.
//! - `two_promotions_of_the_same_app_at_once_end_consistent`: two jobs racing.
//!
//! Results go to `target/tmp/{fault-matrix,git-faults,prometheus-faults}.json`;
//! `scripts/reliability-doc.sh` reruns them and renders `docs/reliability.md`.
//! `FAULT_MATRIX_FILTER=<text>` runs only the matrix cases whose `flow | call | fault` line contains
//! it, `FAULT_MATRIX_THREADS` sets how many run at once (3), and `FAULT_MATRIX_VERBOSE=1` prints
//! each case's logs.

use crate::harness::{calls_to, Ctx, Run, Spawned, Step, REPO};
use sandbox::{Fault, FaultRule};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;

/// The tag every case promotes; the seed runs 1.0.0.
const NEW_TAG: &str = "1.1.0";
const OLD_TAG: &str = "1.0.0";
/// The cases' `request-timeout` and `retry-budget`: short, so that a timeout or a lasting fault
/// costs seconds, and the budget outlasts one timed-out call and its retry.
const REQUEST_TIMEOUT: &str = "4s";
const RETRY_BUDGET: &str = "10s";
/// Longer than `REQUEST_TIMEOUT`.
const TIMEOUT_DELAY_MS: u64 = 5_000;
/// Enough hits to outlast every retry the product makes for one call.
const PERSISTENT: u32 = 60;

/// Which flow a case faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The main step: promote, with the in-step rollback its failure strategy runs.
    Promote,
    /// The post step rolling back a promotion that succeeded (a later step of the job failed).
    Rollback,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Promote => "promote",
            Flow::Rollback => "rollback (post step)",
        }
    }
}

/// One outside call, as a fault rule matches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallPattern {
    pub service: String,
    pub method: String,
    pub path: String,
}

impl CallPattern {
    fn label(&self) -> String {
        format!("{} {} {}", self.service, self.method, self.path)
    }
}

/// The fault kinds of the matrix.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Status502,
    Reset,
    RateLimit429,
    Secondary403,
    Timeout,
    Persistent502,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Status502 => "502 once",
            Kind::Reset => "reset once",
            Kind::RateLimit429 => "429 once",
            Kind::Secondary403 => "403 secondary, Retry-After 1",
            Kind::Timeout => "timeout once",
            Kind::Persistent502 => "502 persistent",
        }
    }

    fn rule(self, c: &CallPattern) -> FaultRule {
        let (fault, times) = match self {
            Kind::Status502 => (
                Fault::Status {
                    status: 502,
                    body: None,
                },
                1,
            ),
            Kind::Reset => (Fault::Reset, 1),
            Kind::RateLimit429 => (
                Fault::RateLimit {
                    secondary: false,
                    retry_after: 1,
                },
                1,
            ),
            Kind::Secondary403 => (
                Fault::RateLimit {
                    secondary: true,
                    retry_after: 1,
                },
                1,
            ),
            Kind::Timeout => (
                Fault::Delay {
                    ms: TIMEOUT_DELAY_MS,
                },
                1,
            ),
            Kind::Persistent502 => (
                Fault::Status {
                    status: 502,
                    body: None,
                },
                PERSISTENT,
            ),
        };
        FaultRule {
            service: c.service.clone(),
            method: Some(c.method.clone()),
            path: c.path.clone(),
            times,
            fault,
        }
    }
}

/// How a case ended, as a user finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndState {
    /// The new tag is on the base branch and the app runs it.
    Promoted,
    /// The base branch moved but its values are as before; the app runs the old tag.
    Reverted,
    /// The base branch never moved.
    Untouched,
}

/// Inputs every case uses: short waits so a stuck case ends quickly.
fn case_inputs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("set", "image.tag=1.1.0"),
        ("health-timeout", "20s"),
        ("approval-timeout", "10s"),
        ("request-timeout", REQUEST_TIMEOUT),
        ("retry-budget", RETRY_BUDGET),
    ]
}

/// `/repos/acme/deploy/pulls/1` → `/repos/acme/deploy/pulls/*`; refs and SHAs likewise.
fn pattern_of(path: &str) -> String {
    let mut out = Vec::new();
    for seg in path.split('/') {
        if out.last() == Some(&"refs".to_string()) {
            out.push("**".to_string());
            break;
        }
        let hex = seg.len() == 40 && seg.chars().all(|c| c.is_ascii_hexdigit());
        if hex || (!seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit())) {
            out.push("*".to_string());
        } else {
            out.push(seg.to_string());
        }
    }
    out.join("/")
}

/// The distinct calls in a sandbox's call log, in first-seen order.
fn distinct_calls(ctx: &Ctx) -> Vec<CallPattern> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in ctx.sb.faults.calls(None) {
        let p = CallPattern {
            service: c.service.clone(),
            method: c.method.clone(),
            path: pattern_of(&c.path),
        };
        if seen.insert(p.clone()) {
            out.push(p);
        }
    }
    out
}

/// The calls a clean run of `flow` makes.
fn calls_of(flow: Flow) -> Vec<CallPattern> {
    let ctx = Ctx::new();
    let main = ctx.main(&case_inputs());
    main.assert_ok();
    if flow == Flow::Rollback {
        ctx.sb.faults.clear_calls();
        ctx.post(&case_inputs(), &main.state).assert_ok();
    }
    distinct_calls(&ctx)
}

/// One case's result, as recorded in the JSON file and the doc.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub flow: Flow,
    pub call: CallPattern,
    pub kind: Kind,
    pub main_code: i32,
    pub post_code: Option<i32>,
    pub end: EndState,
    /// How many times the product sent the faulted call.
    pub sends: usize,
    pub error: Option<String>,
    /// Never-rules broken and other bad ends: the findings.
    pub violations: Vec<String>,
    /// Allowed but worth knowing: an app left behind after a lasting fault, announced.
    pub notes: Vec<String>,
    pub secs: f64,
}

/// `tag: "X"` in a values file.
fn tag_in(values: &str) -> Option<String> {
    sandbox::argocd::image_tag(values)
}

fn app_health(ctx: &Ctx, app: &str) -> String {
    ctx.sb
        .argocd
        .application(app)
        .and_then(|a| a["status"]["health"]["status"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Checks the end state against the allowed ones and the never-rules.
fn classify(
    ctx: &Ctx,
    flow: Flow,
    base0: &str,
    main: &Run,
    post: Option<&Run>,
    lasting: bool,
) -> (EndState, Vec<String>, Vec<String>) {
    let mut v = Vec::new();
    let mut notes = Vec::new();
    let head = ctx.main_sha();
    let repo = ctx.sb.world.open(REPO).unwrap();
    let (h, b) = (
        git2::Oid::from_str(&head).unwrap(),
        git2::Oid::from_str(base0).unwrap(),
    );
    if h != b && !repo.graph_descendant_of(h, b).unwrap_or(false) {
        v.push(format!(
            "base branch rewritten: {base0} is not in main's history"
        ));
    }
    let tag = tag_in(&ctx.values_on_main());
    let end = if h == b {
        if flow == Flow::Promote {
            EndState::Untouched
        } else {
            EndState::Promoted
        }
    } else if tag.as_deref() == Some(NEW_TAG) {
        EndState::Promoted
    } else if tag.as_deref() == Some(OLD_TAG) {
        EndState::Reverted
    } else {
        v.push(format!("main has tag {tag:?}"));
        EndState::Untouched
    };
    // The app must run what main says, and be Healthy.
    let want = if end == EndState::Promoted {
        NEW_TAG
    } else {
        OLD_TAG
    };
    let deployed = ctx.sb.argocd.deployed_tag("app");
    let health = app_health(ctx, "app");
    let mut app_wrong = Vec::new();
    if deployed.as_deref() != Some(want) {
        app_wrong.push(format!("{end:?} but the app runs {deployed:?}"));
    }
    if health != "Healthy" {
        app_wrong.push(format!("app is {health}"));
    }
    // The last step that ran decides what the job shows.
    let last = post.unwrap_or(main);
    let good_end = match flow {
        Flow::Promote => end == EndState::Promoted,
        Flow::Rollback => end == EndState::Reverted,
    };
    let failed = main.code != 0 || post.is_some_and(|p| p.code != 0);
    if good_end && flow == Flow::Promote && main.code != 0 && post.is_none() {
        v.push("promoted but the step failed".into());
    }
    if !good_end && !failed {
        v.push(format!("{end:?} but every step succeeded"));
    }
    let announced = !main.errors().is_empty() || !last.errors().is_empty();
    if failed && !announced {
        v.push("failed without an ::error annotation".into());
    }
    // An Argo CD that keeps failing (or refuses with 403, its "permission denied") can leave the
    // app behind the base branch; that is allowed only when the failure is announced.
    if !app_wrong.is_empty() {
        if lasting && failed && announced {
            notes.push(format!("{} (error reported)", app_wrong.join("; ")));
        } else {
            v.extend(app_wrong);
        }
    }
    // No duplicate PRs, nothing of ours left open or lying around without a word.
    let prs = ctx.sb.github.prs(REPO);
    let promos = prs
        .iter()
        .filter(|p| !p.head_ref.contains("/revert-"))
        .count();
    let reverts = prs.len() - promos;
    if promos > 1 || reverts > 1 {
        v.push(format!("{promos} promotion PRs and {reverts} revert PRs"));
    }
    for p in prs.iter().filter(|p| p.state == "open") {
        if p.comments.is_empty() {
            v.push(format!("PR #{} left open without a comment", p.number));
        }
    }
    for br in ctx.our_branches() {
        let open_pr = prs.iter().any(|p| p.head_ref == br && p.state == "open");
        // A merged PR whose branch GitHub would not delete: allowed when the PR says so.
        let explained = prs.iter().any(|p| {
            p.head_ref == br && p.merged && p.comments.iter().any(|(_, c)| c.contains(&br))
        });
        if explained {
            notes.push(format!("branch {br} left, as its merged PR says"));
        } else if !open_pr {
            v.push(format!("branch {br} left without an open PR"));
        }
    }
    (end, v, notes)
}

/// The violation of a case whose fault no call ever met: it ran clean and checked nothing.
const NOT_DELIVERED: &str = "the fault never reached the product";

/// Whether the case's fault met a call of the product. The call log shows every fault that did,
/// except a delay whose call the product abandoned (not logged); a `delay` fault is known spent
/// when a probe of the same call is answered at once. Call it after the end state was read: a
/// probe that gets through is a real call to the emulator.
fn fault_delivered(ctx: &Ctx, call: &CallPattern, delay: bool) -> bool {
    use std::io::{Read, Write};
    let logged = ctx.sb.faults.calls(Some(&call.service)).iter().any(|c| {
        c.injected && c.method == call.method && sandbox::faults::path_matches(&call.path, &c.path)
    });
    if logged || !delay {
        return logged;
    }
    let base = match call.service.as_str() {
        "github" => ctx.sb.github_api_url.clone(),
        "argocd" => ctx.sb.argocd_url.clone(),
        "prometheus" => ctx.sb.prometheus.as_ref().expect("Prometheus").url.clone(),
        other => panic!("no probe for {other}"),
    };
    let addr = base.trim_start_matches("http://").to_string();
    let path: Vec<&str> = call
        .path
        .split('/')
        .map(|seg| if seg.starts_with('*') { "0" } else { seg })
        .collect();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_millis(TIMEOUT_DELAY_MS / 2)))
        .unwrap();
    write!(
        s,
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        call.method,
        path.join("/")
    )
    .unwrap();
    let mut first = [0u8; 1];
    matches!(s.read(&mut first), Ok(1))
}

/// The message of the error the job shows: the failed post step's, else the main step's.
fn first_error(main: &Run, post: Option<&Run>) -> Option<String> {
    let last = post.filter(|p| p.code != 0).unwrap_or(main);
    last.errors()
        .into_iter()
        .chain(main.errors())
        .next()
        .map(|e| e.split("::").last().unwrap_or("").trim().to_string())
}

/// Runs one case in its own sandbox.
fn run_case(flow: Flow, call: &CallPattern, kind: Kind) -> Outcome {
    let started = Instant::now();
    let ctx = Ctx::new();
    let inputs = case_inputs();
    let (main, base0) = match flow {
        Flow::Promote => {
            let base0 = ctx.main_sha();
            ctx.sb.faults.inject(kind.rule(call));
            (ctx.main(&inputs), base0)
        }
        Flow::Rollback => {
            let m = ctx.main(&inputs);
            m.assert_ok();
            let base0 = ctx.main_sha();
            ctx.sb.faults.clear_calls();
            ctx.sb.faults.inject(kind.rule(call));
            (m, base0)
        }
    };
    // The runner runs the post step when the job failed: after a failed main, or (rollback flow)
    // after a later step failed.
    let post = match flow {
        // The runner gives the post step the same inputs as the main step.
        Flow::Promote if main.code != 0 => Some(ctx.post(&inputs, &main.state)),
        Flow::Promote => None,
        Flow::Rollback => Some(ctx.post(&inputs, &main.state)),
    };
    if std::env::var_os("FAULT_MATRIX_VERBOSE").is_some() {
        eprintln!("--- main\n{}", main.log());
        if let Some(p) = &post {
            eprintln!("--- post\n{}", p.log());
        }
        for c in ctx.sb.faults.calls(None) {
            let hit = if c.injected { " (fault)" } else { "" };
            eprintln!(
                "{:>7} ms {} {} {} -> {}{hit}",
                c.at_ms, c.service, c.method, c.path, c.status
            );
        }
    }
    let lasting = matches!(kind, Kind::Persistent502);
    let (end, mut violations, notes) = classify(&ctx, flow, &base0, &main, post.as_ref(), lasting);
    let sends = ctx
        .sb
        .faults
        .calls(Some(&call.service))
        .iter()
        .filter(|c| c.method == call.method && sandbox::faults::path_matches(&call.path, &c.path))
        .count();
    // Last: the probe of a delay reaches the emulator once the fault is spent.
    if !fault_delivered(&ctx, call, matches!(kind, Kind::Timeout)) {
        violations.push(NOT_DELIVERED.into());
    }
    ctx.sb.faults.clear();
    let error = first_error(&main, post.as_ref());
    Outcome {
        flow,
        call: call.clone(),
        kind,
        main_code: main.code,
        post_code: post.as_ref().map(|p| p.code),
        end,
        sends,
        error,
        violations,
        notes,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// Every call of both flows, each with every fault kind.
/// The fault kinds every call meets.
const KINDS: [Kind; 6] = [
    Kind::Status502,
    Kind::Reset,
    Kind::RateLimit429,
    Kind::Secondary403,
    Kind::Timeout,
    Kind::Persistent502,
];

/// Calls each flow must make, so a call log that recorded nothing cannot make an empty matrix pass.
const MUST_CALL: [&str; 3] = [
    "github POST /repos/acme/deploy/pulls",
    "github PUT /repos/acme/deploy/pulls/*/merge",
    "argocd POST /api/v1/applications/app/sync",
];

/// Every call of each flow's clean run, with every fault kind.
fn cases(calls: &[(Flow, Vec<CallPattern>)]) -> Vec<(Flow, CallPattern, Kind)> {
    let mut out = Vec::new();
    for (flow, calls) in calls {
        for call in calls {
            for k in KINDS {
                out.push((*flow, call.clone(), k));
            }
        }
    }
    // Slow cases first, so they overlap with the many quick ones.
    out.sort_by_key(|(_, _, k)| !matches!(k, Kind::Timeout | Kind::Persistent502));
    out
}

fn to_json(o: &Outcome) -> serde_json::Value {
    json!({
        "flow": o.flow.name(),
        "call": o.call.label(),
        "fault": o.kind.label(),
        "end": format!("{:?}", o.end).to_lowercase(),
        "main_exit": o.main_code,
        "post_exit": o.post_code,
        "sends": o.sends,
        "error": o.error,
        "violations": o.violations,
        "notes": o.notes,
        "secs": (o.secs * 10.0).round() / 10.0,
    })
}

/// The markdown page for a list of recorded outcomes (the JSON `to_json` writes).
pub fn render_doc(cases: &[serde_json::Value]) -> String {
    let mut s = String::from(
        "# Reliability: the fault matrix\n\n\
         Generated by `scripts/reliability-doc.sh` from the results of the e2e tests \
         `faults::fault_matrix`, `faults::git_faults` and `faults::prometheus_faults` \
         (`tests/e2e/faults.rs`); do not edit by hand.\n\n\
         Each row is one run of the built binary against the sandbox with one fault injected on \
         one outside call (the first call matching the pattern; *persistent* = every matching call, \
         up to 60, so the main step and its rollback both meet it). The main step runs; when it fails, the post step runs with its state, \
         as the runner does. Every case runs with `request-timeout: 4s` and `retry-budget: 10s`, so a \
         *timeout* is an answer delayed past 4 s. Git calls go through a proxy that drops the \
         connection, stalls past the timeout, or answers 503 or 429 (*sends* is not counted there; \
         git has no secondary rate limit, and a 403 from the git host is a refusal, covered by the \
         bad-input tests). *Rollback* rows fault the post step that reverts a promotion after \
         a later step of the job failed.\n\n\
         End states: **promoted** (new tag on the base branch, app Healthy on it), **reverted** \
         (base branch back to the old values, app Healthy on them), **untouched** (base branch \
         never moved; the step failed with an error). *Sends* counts how often the product sent \
         the faulted call (retries included). *Findings* lists broken rules (force-push to the \
         base, duplicate PRs, PRs or branches of ours left without a comment, an app not Healthy \
         on what the base branch says, a failure without an annotation) in bold; plain text is \
         allowed but worth knowing (a lasting Argo CD fault leaves the app behind the base \
         branch, and the step fails saying so).\n\n",
    );
    s.push_str("| flow | cases | promoted | reverted | untouched | findings |\n|---|---|---|---|---|---|\n");
    for flow in ["promote", "rollback (post step)"] {
        let of: Vec<&serde_json::Value> = cases.iter().filter(|c| c["flow"] == flow).collect();
        let n = |end: &str| of.iter().filter(|c| c["end"] == end).count();
        let bad = of
            .iter()
            .filter(|c| c["violations"].as_array().is_some_and(|a| !a.is_empty()))
            .count();
        s.push_str(&format!(
            "| {flow} | {} | {} | {} | {} | {bad} |\n",
            of.len(),
            n("promoted"),
            n("reverted"),
            n("untouched")
        ));
    }
    s.push('\n');
    for flow in ["promote", "rollback (post step)"] {
        s.push_str(&format!("## {flow}\n\n"));
        s.push_str("| call | fault | end | exit main/post | sends | error | findings |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        for c in cases.iter().filter(|c| c["flow"] == flow) {
            let post = c["post_exit"]
                .as_i64()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            let err = scrub(c["error"].as_str().unwrap_or("")).replace('|', "\\|");
            let err: String = err.chars().take(90).collect();
            let strs = |k: &str| -> Vec<String> {
                c[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut findings: Vec<String> = strs("violations")
                .into_iter()
                .map(|f| format!("**{f}**"))
                .collect();
            findings.extend(strs("notes"));
            s.push_str(&format!(
                "| `{}` | {} | {} | {}/{} | {} | {} | {} |\n",
                c["call"].as_str().unwrap_or(""),
                c["fault"].as_str().unwrap_or(""),
                c["end"].as_str().unwrap_or(""),
                c["main_exit"],
                post,
                c["sends"]
                    .as_u64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                err,
                if findings.is_empty() {
                    "none".to_string()
                } else {
                    findings.join("; ").replace('|', "\\|")
                }
            ));
        }
        s.push('\n');
    }
    s
}

/// Renders `docs/reliability.md` from the last recorded matrix (run by `scripts/reliability-doc.sh`
/// after the matrix; ignored otherwise, as it needs that file).
#[test]
#[ignore = "run by scripts/reliability-doc.sh after fault_matrix"]
fn render_reliability_doc() {
    let mut cases: Vec<serde_json::Value> = Vec::new();
    for f in [
        results_path(),
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("git-faults.json"),
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("prometheus-faults.json"),
    ] {
        let text = std::fs::read_to_string(&f)
            .unwrap_or_else(|_| panic!("{} missing: run scripts/reliability-doc.sh", f.display()));
        cases.extend(
            serde_json::from_value::<Vec<serde_json::Value>>(serde_json::from_str(&text).unwrap())
                .unwrap(),
        );
    }
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    std::fs::write(doc, render_doc(&cases)).unwrap();
}

/// Where the matrix's results go.
pub fn results_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-matrix.json")
}

/// The whole matrix, three cases at a time. Fails listing every case that broke a rule.
#[test]
fn fault_matrix() {
    // FAULT_MATRIX_FILTER="promote | argocd POST" runs only the cases whose line contains it.
    let filter = std::env::var("FAULT_MATRIX_FILTER").unwrap_or_default();
    let calls: Vec<_> = [Flow::Promote, Flow::Rollback]
        .into_iter()
        .map(|f| (f, calls_of(f)))
        .collect();
    let all = cases(&calls);
    for (flow, calls) in &calls {
        let labels: Vec<String> = calls.iter().map(CallPattern::label).collect();
        for must in MUST_CALL {
            assert!(
                labels.iter().any(|l| l == must),
                "a clean {} run made no `{must}` call; it made {labels:?}",
                flow.name()
            );
        }
        for call in calls {
            let kinds = all
                .iter()
                .filter(|(f, c, _)| f == flow && c == call)
                .count();
            assert_eq!(
                kinds,
                KINDS.len(),
                "{} | {} is not faulted every way",
                flow.name(),
                call.label()
            );
        }
    }
    let cases: Vec<_> = all
        .into_iter()
        .filter(|(f, c, k)| {
            format!("{} | {} | {}", f.name(), c.label(), k.label()).contains(&filter)
        })
        .collect();
    assert!(
        !cases.is_empty(),
        "FAULT_MATRIX_FILTER={filter:?} matches no case: nothing would be checked"
    );
    let planned = cases.len();
    let queue = Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    let workers: usize = std::env::var("FAULT_MATRIX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some((i, (flow, call, kind))) = pop_front(&queue) {
                    let o = run_case(flow, &call, kind);
                    eprintln!(
                        "{} | {} | {} -> {:?} {:?} ({:.1}s)",
                        o.flow.name(),
                        o.call.label(),
                        o.kind.label(),
                        o.end,
                        o.violations,
                        o.secs
                    );
                    results.lock().unwrap().push((i, o));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    assert_eq!(results.len(), planned, "every case ran");
    results.sort_by(|a, b| (a.1.flow as u8, &a.1.call, a.0).cmp(&(b.1.flow as u8, &b.1.call, b.0)));
    let json: Vec<serde_json::Value> = results.iter().map(|(_, o)| to_json(o)).collect();
    std::fs::write(results_path(), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, o)| !o.violations.is_empty())
        .map(|(_, o)| {
            format!(
                "{} | {} | {}: {:?}",
                o.flow.name(),
                o.call.label(),
                o.kind.label(),
                o.violations
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} bad cases:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn scrub_hides_ports_and_shas() {
    let sha = "a".repeat(40);
    assert_eq!(
        scrub(&format!(
            "GET http://127.0.0.1:4123/commits/{sha}/status: 502 (deadbeef)"
        )),
        "GET http://127.0.0.1:PORT/commits/SHA/status: 502 (deadbeef)"
    );
}

#[test]
fn pattern_of_hides_numbers_shas_and_branch_names() {
    assert_eq!(
        pattern_of("/repos/acme/deploy/pulls/12"),
        "/repos/acme/deploy/pulls/*"
    );
    assert_eq!(
        pattern_of("/repos/acme/deploy/git/refs/heads/gitops-promote/main/1001"),
        "/repos/acme/deploy/git/refs/**"
    );
    assert_eq!(
        pattern_of(&format!("/repos/a/b/commits/{}/status", "a".repeat(40))),
        "/repos/a/b/commits/*/status"
    );
}

/// The next case of the queue, in order (the slow ones are first).
fn pop_front<T>(queue: &Mutex<Vec<T>>) -> Option<T> {
    let mut q = queue.lock().unwrap();
    (!q.is_empty()).then(|| q.remove(0))
}

// ---------------------------------------------------------------------------------------------
// Killing the main step between steps.

/// Starts a promotion, holds the call after `phase` was recorded with a long delay, kills the
/// process there (SIGKILL: no cleanup of its own), and runs the post step with the state it left.
fn kill_at(phase: &str, service: &str, method: &str, path: &str) -> (Ctx, String, Run) {
    let ctx = Ctx::new();
    let base0 = ctx.main_sha();
    // The held call is the next one after the state write; give the step time to reach it.
    let (state, _) = kill_held(
        &ctx,
        (service, method, path),
        &case_inputs(),
        &format!("phase {phase}"),
        |s| s.state().get("phase").map(String::as_str) == Some(phase),
        500,
    );
    let post = ctx.post(&case_inputs(), &state);
    (ctx, base0, post)
}

/// Holds the first `(service, method, path)` call for a minute, starts the main step with
/// `inputs`, waits until `ready`, gives it `settle_ms` to reach the held call, and SIGKILLs it:
/// the state it left and what it printed.
fn kill_held(
    ctx: &Ctx,
    (service, method, path): (&str, &str, &str),
    inputs: &[(&str, &str)],
    what: &str,
    ready: impl Fn(&Spawned) -> bool,
    settle_ms: u64,
) -> (std::collections::BTreeMap<String, String>, Run) {
    ctx.sb.faults.inject(FaultRule {
        service: service.into(),
        method: Some(method.into()),
        path: path.into(),
        times: 1,
        fault: Fault::Delay { ms: 60_000 },
    });
    let mut s = Spawned::main(ctx, inputs);
    crate::harness::wait_until(what, std::time::Duration::from_secs(60), || ready(&s));
    std::thread::sleep(std::time::Duration::from_millis(settle_ms));
    s.child.kill().unwrap();
    let state = s.state();
    (state, s.finish())
}

/// The post step put everything back: the seeded values on main, the app Healthy on the old tag.
fn assert_back(ctx: &Ctx) {
    assert_eq!(ctx.values_on_main(), sandbox::world::SEED_VALUES);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some(OLD_TAG));
    assert_eq!(app_health(ctx, "app"), "Healthy");
}

/// Nothing of ours is left: no open PR, no branch of ours.
fn assert_clean(ctx: &Ctx) {
    let prs = ctx.sb.github.prs(REPO);
    assert!(prs.iter().all(|p| p.state == "closed"), "{prs:?}");
    assert!(ctx.our_branches().is_empty(), "{:?}", ctx.our_branches());
}

#[test]
fn killed_after_the_push_the_post_step_deletes_the_branch() {
    let (ctx, base0, post) = kill_at("pushed", "github", "GET", "/repos/*/*/pulls");
    post.assert_ok();
    assert_eq!(ctx.main_sha(), base0);
    assert_clean(&ctx);
}

#[test]
fn killed_at_the_gate_the_post_step_closes_the_pr_with_a_comment() {
    // The gate's first read of its own (the rules are read before the push too).
    let (ctx, base0, post) = kill_at("pr-open", "github", "GET", "/repos/*/*/pulls/*/reviews");
    post.assert_ok();
    assert_eq!(ctx.main_sha(), base0);
    assert_clean(&ctx);
    let pr = ctx.sb.github.prs(REPO).pop().unwrap();
    assert!(!pr.merged && !pr.comments.is_empty(), "{pr:?}");
}

#[test]
fn killed_after_the_merge_the_post_step_reverts() {
    let (ctx, base0, post) = kill_at("merged", "argocd", "GET", "/api/v1/applications/*");
    post.assert_ok();
    assert_ne!(
        ctx.main_sha(),
        base0,
        "the merge is on main, then its revert"
    );
    assert_back(&ctx);
    assert_clean(&ctx);
}

#[test]
fn killed_while_waiting_for_health_the_post_step_reverts() {
    let ctx = Ctx::new();
    // The sync is the last call before the wait's watch, which is held.
    let (state, _) = kill_held(
        &ctx,
        ("argocd", "GET", "/api/v1/stream/applications"),
        &case_inputs(),
        "the sync",
        |_| !calls_to(&ctx.sb, "argocd", "POST", "/sync").is_empty(),
        300,
    );
    let post = ctx.post(&case_inputs(), &state);
    post.assert_ok();
    assert_back(&ctx);
    assert_clean(&ctx);
}

/// The main step is killed inside its own rollback (a bad tag went Degraded; the revert PR is open
/// and its merge is held): the post step takes that revert PR over, merges it and redeploys. One
/// revert PR, the old values on main, the app Healthy on them.
#[test]
fn killed_during_the_in_step_rollback_the_post_step_finishes_it() {
    let ctx = Ctx::new();
    // The default request-timeout (30 s) keeps the held merge in flight until the kill.
    let mut inputs = case_inputs();
    inputs.retain(|(k, _)| !matches!(*k, "set" | "request-timeout" | "retry-budget"));
    inputs.push(("set", "image.tag=1.2.0-bad"));
    // The call log lists a call when it is answered, so watch for the revert PR instead: its
    // gate takes milliseconds, then the merge is held.
    let (state, killed) = kill_held(
        &ctx,
        ("github", "PUT", "/repos/*/*/pulls/2/merge"),
        &inputs,
        "the revert PR",
        |_| ctx.sb.github.prs(REPO).len() == 2,
        2000,
    );
    assert!(
        state.contains_key("merge-sha")
            && state.get("phase").map(String::as_str) != Some("rolled-back"),
        "killed after the promotion merged, before the rollback finished: {state:?}\n{}",
        killed.log()
    );
    let post = ctx.post(&inputs, &state);
    post.assert_ok();
    assert_back(&ctx);
    let prs = ctx.sb.github.prs(REPO);
    assert_eq!(prs.len(), 2, "the promotion and one revert PR: {prs:?}");
    assert!(prs.iter().all(|p| p.merged), "{prs:?}");
    assert_clean(&ctx);
}

/// Regression: the base head of a second promotion has a parent the depth-1 clone does not hold;
/// the push walked into it and failed with "object not found".
#[test]
fn a_second_promotion_pushes_from_a_shallow_clone_with_history() {
    let ctx = Ctx::new();
    ctx.main(&[("set", "image.tag=1.1.0")]).assert_ok();
    ctx.main(&[("set", "image.tag=1.2.0")]).assert_ok();
}

// ---------------------------------------------------------------------------------------------
// Two jobs promoting the same app at once.

/// Two promotions of `app` race (two jobs, two tags on the same line). Both succeed, each having
/// waited for a revision containing its own merge; at the end the app runs what main says,
/// Healthy, and nothing of ours is left open.
#[test]
fn two_promotions_of_the_same_app_at_once_end_consistent() {
    let ctx = Ctx::new();
    let inputs = |tag: &'static str| {
        vec![
            ("set", tag),
            ("health-timeout", "60s"),
            ("argocd-app", "app"),
        ]
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| ctx.main(&inputs("image.tag=1.1.0")));
        let b = s.spawn(|| ctx.main(&inputs("image.tag=1.2.0")));
        (a.join().unwrap(), b.join().unwrap())
    });
    let repo = ctx.sb.world.open(REPO).unwrap();
    for run in [&a, &b] {
        // The second to merge finds its PR in conflict and rebuilds it on the new base.
        run.assert_ok();
        let merge = git2::Oid::from_str(run.output("merge-sha")).unwrap();
        let synced = git2::Oid::from_str(run.output("synced-revision")).unwrap();
        assert!(
            synced == merge || repo.graph_descendant_of(synced, merge).unwrap(),
            "waited on {synced}, which does not contain its merge {merge}:\n{}",
            run.log()
        );
    }
    let on_main = tag_in(&ctx.values_on_main());
    let deployed = ctx.sb.argocd.deployed_tag("app");
    assert_eq!(deployed, on_main, "the app runs what main says");
    assert_eq!(app_health(&ctx, "app"), "Healthy");
    let prs = ctx.sb.github.prs(REPO);
    assert!(
        prs.iter()
            .all(|p| p.state == "closed" || !p.comments.is_empty()),
        "{prs:?}"
    );
    assert!(ctx.our_branches().is_empty(), "{:?}", ctx.our_branches());
}

/// Ports and commit SHAs out of an error (`127.0.0.1:PORT`, `SHA`), so the doc does not change
/// with the sandbox's ports or the commits' timestamps.
fn scrub(text: &str) -> String {
    scrub_ports(text)
        .split_inclusive(|c: char| !c.is_ascii_hexdigit())
        .map(|part| {
            let hex = part.trim_end_matches(|c: char| !c.is_ascii_hexdigit());
            if hex.len() == 40 {
                format!("SHA{}", &part[40..])
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// `127.0.0.1:41234` → `127.0.0.1:PORT`.
fn scrub_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + 10]);
        rest = &rest[i + 10..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("PORT");
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// Faults on git over HTTP: the git host (lighttpd) is not behind the sandbox's fault layer, so a
// small TCP proxy in front of it drops or answers 503 to the clone's or the push's requests.

/// What the proxy does to a matching request.
#[derive(Debug, Clone, Copy)]
enum GitFault {
    Reset,
    Status503,
    /// 429 with `Retry-After: 1`, as a throttling git host answers.
    Status429,
    /// Reads the request and answers nothing for longer than `request-timeout`.
    Stall,
}

/// A proxy to the git host; requests whose first line contains `pattern` get `fault`, `times`.
struct GitProxy {
    url: String,
    rule: std::sync::Arc<Mutex<Option<(String, GitFault, u32)>>>,
    /// Stalled requests the client hung up on before the proxy would have answered: proof that
    /// libgit2 honours `request-timeout` instead of hanging the job.
    gave_up: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Requests that got the fault: none means the case ran clean and checked nothing.
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl GitProxy {
    fn start(upstream: &str) -> GitProxy {
        use std::io::{Read, Write};
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rule: std::sync::Arc<Mutex<Option<(String, GitFault, u32)>>> = Default::default();
        let gave_up: std::sync::Arc<std::sync::atomic::AtomicUsize> = Default::default();
        let hits: std::sync::Arc<std::sync::atomic::AtomicUsize> = Default::default();
        let (r, g, h) = (rule.clone(), gave_up.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { break };
                let (r, g, h, upstream) = (r.clone(), g.clone(), h.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let mut head = vec![0u8; 2048];
                    let n = client.read(&mut head).unwrap_or(0);
                    let line = String::from_utf8_lossy(&head[..n])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let hit = {
                        let mut g = r.lock().unwrap();
                        match g.as_mut() {
                            Some((p, f, t)) if *t > 0 && line.contains(p.as_str()) => {
                                *t -= 1;
                                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                Some(*f)
                            }
                            _ => None,
                        }
                    };
                    match hit {
                        Some(GitFault::Reset) => return,
                        Some(GitFault::Status503) => {
                            let _ = client.write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                            return;
                        }
                        Some(GitFault::Status429) => {
                            let _ = client.write_all(
                                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                            return;
                        }
                        Some(GitFault::Stall) => {
                            // Answer nothing for a minute; a client that closes first timed out.
                            let _ =
                                client.set_read_timeout(Some(std::time::Duration::from_secs(60)));
                            let mut rest = [0u8; 4096];
                            loop {
                                match client.read(&mut rest) {
                                    Ok(0) => {
                                        g.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                        return;
                                    }
                                    Ok(_) => continue,
                                    Err(_) => return,
                                }
                            }
                        }
                        None => {}
                    }
                    let Ok(mut server) = std::net::TcpStream::connect(&upstream) else {
                        return;
                    };
                    let _ = server.write_all(&head[..n]);
                    let (mut c2, mut s2) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c2, &mut s2);
                        let _ = s2.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = up.join();
                });
            }
        });
        GitProxy {
            url,
            rule,
            gave_up,
            hits,
        }
    }

    fn set(&self, pattern: &str, fault: GitFault, times: u32) {
        *self.rule.lock().unwrap() = Some((pattern.to_string(), fault, times));
    }
}

/// Clone (`upload-pack`) and push (`receive-pack`) faults in promote and in the post-step
/// rollback: each ends promoted, reverted, or untouched with an error, and breaks no never-rule.
/// Recorded to `target/tmp/git-faults.json` for the doc.
#[test]
fn git_faults() {
    let mut out = Vec::new();
    for flow in [Flow::Promote, Flow::Rollback] {
        for (call, pattern) in [
            ("git clone/fetch (upload-pack)", "upload-pack"),
            ("git push (receive-pack)", "receive-pack"),
        ] {
            for (label, fault, times) in [
                ("reset once", GitFault::Reset, 1),
                ("stall once (timeout)", GitFault::Stall, 1),
                ("503 once", GitFault::Status503, 1),
                ("429 once", GitFault::Status429, 1),
                ("503 persistent", GitFault::Status503, 1000),
            ] {
                let started = Instant::now();
                let ctx = Ctx::new();
                let proxy = GitProxy::start(ctx.sb.git_url());
                let inputs = case_inputs();
                let none = Default::default();
                let (main, base0) = match flow {
                    Flow::Promote => {
                        let base0 = ctx.main_sha();
                        proxy.set(pattern, fault, times);
                        let m = Spawned::start_via(&ctx, Step::Main, &inputs, &none, &proxy.url)
                            .finish();
                        (m, base0)
                    }
                    Flow::Rollback => {
                        let m = Spawned::start_via(&ctx, Step::Main, &inputs, &none, &proxy.url)
                            .finish();
                        m.assert_ok();
                        proxy.set(pattern, fault, times);
                        (m, ctx.main_sha())
                    }
                };
                let post = (flow == Flow::Rollback || main.code != 0).then(|| {
                    Spawned::start_via(&ctx, Step::Post, &inputs, &main.state, &proxy.url).finish()
                });
                proxy.set("", GitFault::Reset, 0);
                let lasting = times > 1;
                if matches!(fault, GitFault::Stall) {
                    assert_eq!(
                        proxy.gave_up.load(std::sync::atomic::Ordering::SeqCst),
                        1,
                        "{call}: the stalled request was not abandoned (request-timeout ignored)"
                    );
                }
                let (end, mut violations, notes) =
                    classify(&ctx, flow, &base0, &main, post.as_ref(), lasting);
                if proxy.hits.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    violations.push(NOT_DELIVERED.into());
                }
                let error = first_error(&main, post.as_ref());
                eprintln!(
                    "{} | {call} | {label} -> {end:?} {violations:?}",
                    flow.name()
                );
                out.push((
                    violations.clone(),
                    json!({
                        "flow": flow.name(),
                        "call": call,
                        "fault": label,
                        "end": format!("{end:?}").to_lowercase(),
                        "main_exit": main.code,
                        "post_exit": post.as_ref().map(|p| p.code),
                        "sends": serde_json::Value::Null,
                        "error": error,
                        "violations": violations,
                        "notes": notes,
                        "secs": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                    }),
                ));
            }
        }
    }
    record_cases("git-faults.json", &out);
}

// ---------------------------------------------------------------------------------------------
// Faults on the metrics gate's Prometheus queries, through the binary.

/// Each Prometheus query answered 502, dropped, delayed past `request-timeout` or throttled (429,
/// 403 with Retry-After) once, or 503 throughout: the gate retries or
/// counts error measurements, and the run ends promoted or reverted, never half-way.
/// Recorded to `target/tmp/prometheus-faults.json` for the doc.
#[test]
fn prometheus_faults() {
    let query = crate::harness::error_ratio("app", "10s");
    let mut out = Vec::new();
    for (label, fault, times) in [
        (
            "502 once",
            Fault::Status {
                status: 502,
                body: None,
            },
            1,
        ),
        ("reset once", Fault::Reset, 1),
        (
            "timeout once",
            Fault::Delay {
                ms: TIMEOUT_DELAY_MS,
            },
            1,
        ),
        (
            "429 once",
            Fault::RateLimit {
                secondary: false,
                retry_after: 1,
            },
            1,
        ),
        (
            "403 secondary, Retry-After 1",
            Fault::RateLimit {
                secondary: true,
                retry_after: 1,
            },
            1,
        ),
        (
            "503 persistent",
            Fault::Status {
                status: 503,
                body: None,
            },
            1000,
        ),
    ] {
        let started = Instant::now();
        let ctx = Ctx::with_metrics("app");
        let url = ctx.sb.prometheus.as_ref().unwrap().url.clone();
        let base0 = ctx.main_sha();
        ctx.sb.faults.clear_calls();
        let delay = matches!(fault, Fault::Delay { .. });
        ctx.sb.faults.inject(FaultRule {
            service: "prometheus".into(),
            method: None,
            path: "/api/v1/query".into(),
            times,
            fault,
        });
        let mut inputs = case_inputs();
        inputs.extend([
            ("prometheus-url", url.as_str()),
            ("query", query.as_str()),
            ("success-condition", "result < 0.05"),
            ("interval", "1s"),
            ("count", "3"),
        ]);
        let main = ctx.main(&inputs);
        let post = (main.code != 0).then(|| ctx.post(&inputs, &main.state));
        let (end, mut violations, notes) =
            classify(&ctx, Flow::Promote, &base0, &main, post.as_ref(), times > 1);
        let error = first_error(&main, post.as_ref());
        let sends = ctx.sb.faults.calls(Some("prometheus")).len();
        let query_call = CallPattern {
            service: "prometheus".into(),
            method: "POST".into(),
            path: "/api/v1/query".into(),
        };
        if !fault_delivered(&ctx, &query_call, delay) {
            violations.push(NOT_DELIVERED.into());
        }
        ctx.sb.faults.clear();
        eprintln!("prometheus | {label} -> {end:?} {violations:?} {error:?}");
        if times == 1 {
            assert_eq!(
                end,
                EndState::Promoted,
                "{label}: a blip fails the gate\n{}",
                main.log()
            );
        }
        out.push((
            violations.clone(),
            json!({
                "flow": Flow::Promote.name(),
                "call": "prometheus POST /api/v1/query",
                "fault": label,
                "end": format!("{end:?}").to_lowercase(),
                "main_exit": main.code,
                "post_exit": post.as_ref().map(|p| p.code),
                "sends": sends,
                "error": error,
                "violations": violations,
                "notes": notes,
                "secs": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            }),
        ));
    }
    record_cases("prometheus-faults.json", &out);
}

/// Writes the cases' results for docs/reliability.md and fails listing every case that broke a rule.
fn record_cases(file: &str, out: &[(Vec<String>, serde_json::Value)]) {
    let json: Vec<&serde_json::Value> = out.iter().map(|(_, j)| j).collect();
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(file),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    let bad: Vec<String> = out
        .iter()
        .filter(|(v, _)| !v.is_empty())
        .map(|(_, j)| j.to_string())
        .collect();
    assert!(
        bad.is_empty(),
        "{} bad cases:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
