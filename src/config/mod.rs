//! Inputs, written down once: [`INPUTS`] is the single table that `action.yml`, `--help` and
//! `docs/inputs.md` are generated from. Parsing has two layers (STYLE.md #7): [`RawInputs`] holds
//! the trimmed strings as they arrive (CLI flag, else `INPUT_<NAME>`, else nothing), and
//! [`Config::from_raw`] turns them into checked types before anything is touched. Every error names
//! the input and what was expected. This module stops at validation: `set` lines, queries and
//! conditions are kept as text for the modules that understand them.

use crate::base::parse_duration;
use crate::base::{Classify, ErrorKind};
pub use crate::base::{MergeMethod, Secret};
mod docs;
mod inputs;
mod raw;
pub mod strategy;
mod template;

pub use docs::*;
pub use inputs::*;
pub use raw::*;
pub use template::*;

use inputs::Command::{Guard, Status};
use std::fmt;
use std::time::Duration;
use strategy::Strategy;
use url::Url;

/// One invalid input: which, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input '{input}': {message}")]
pub struct InputError {
    /// The input name.
    pub input: String,
    /// What was expected and what was found.
    pub message: String,
}

/// The error returned by [`Config::from_raw`]: every invalid input found, so that one run reports
/// them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// At least one problem.
    pub problems: Vec<InputError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msgs: Vec<String> = self.problems.iter().map(|p| p.to_string()).collect();
        f.write_str(&msgs.join("; "))
    }
}

impl std::error::Error for ConfigError {}

impl Classify for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Config
    }
    fn hint(&self) -> Option<String> {
        Some("see docs/inputs.md for every input".into())
    }
}

impl Classify for InputError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Config
    }
    fn hint(&self) -> Option<String> {
        Some(match input_def(&self.input) {
            Some(d) => format!("{}: {}", d.name, d.description),
            None => "see docs/inputs.md".into(),
        })
    }
}

/// `owner/name` of a GitHub repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// User or organization.
    pub owner: String,
    /// Repository name.
    pub name: String,
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// How apps are synced (DESIGN.md §2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Refresh auto-sync apps, sync the others.
    Auto,
    /// Sync every app.
    Always,
    /// Only wait.
    Never,
}

use crate::clients::argocd::ArgoConfig;
use crate::clients::net::{self, Trust};
use crate::clients::values::SetOp;
/// What an empty query result counts as, and one named query: the gate's own types, so config
/// and gate cannot drift.
pub use crate::clients::verify::{NamedQuery as Query, NoData, VerifyConfig};

/// Argo CD connection and app selection; present only when `argocd-server` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoSettings {
    /// How to reach the API server: the client's own configuration.
    pub client: ArgoConfig,
    /// Apps by name.
    pub apps: Vec<String>,
    /// Apps by label selector.
    pub selector: Option<String>,
}

/// The run context from the runner's `GITHUB_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    /// REST API base (`GITHUB_API_URL`).
    pub api_url: Url,
    /// Web and git host (`GITHUB_SERVER_URL`).
    pub server_url: Url,
    /// `GITHUB_RUN_ID`, `local` outside Actions.
    pub run_id: String,
    /// `GITHUB_RUN_ATTEMPT`, `1` outside Actions.
    pub run_attempt: String,
    /// `{server}/{GITHUB_REPOSITORY}/actions/runs/{run_id}`, empty outside Actions.
    pub run_url: String,
    /// `GITHUB_JOB`, the job's id (the same for every leg of a matrix), `local` outside Actions.
    pub job: String,
}

/// What a promotion touches, known from the inputs alone: the values files its `set` lines
/// name and the Argo CD apps it deploys. Trailers record it, the default branch name hashes it,
/// and `guard`, `status` and a standalone rollback act only on promotions within it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Values files, in the order the `set` lines first name them (`file` for lines without one).
    pub files: Vec<String>,
    /// `(file, path)` of every `set` line, sorted: what the change set edits, whatever the values.
    pub paths: Vec<(String, String)>,
    /// App names as given, or `selector=<selector>`.
    pub apps: Vec<String>,
}

impl Scope {
    /// A short, stable hash of the files, paths and apps: two matrix legs editing different files
    /// or deploying different apps get different branches, a re-run of one leg the same.
    pub fn key(&self) -> String {
        let mut text = String::new();
        for (f, p) in &self.paths {
            text.push_str(&format!("set {f}:{p}\n"));
        }
        let mut apps = self.apps.clone();
        apps.sort();
        for a in apps {
            text.push_str(&format!("app {a}\n"));
        }
        let id = git2::Oid::hash_object(git2::ObjectType::Blob, text.as_bytes())
            .expect("hashing bytes cannot fail");
        id.to_string()[..8].to_string()
    }
}

/// The typed, validated configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// What this run does.
    pub command: Command,
    /// Token for the GitHub API and git.
    pub github_token: Secret,
    /// Token for the rollback's revert PR and its merge (`rollback-github-token`), when it is not
    /// `github_token`: teams give reverts one that rulesets let bypass.
    pub rollback_github_token: Option<Secret>,
    /// The release repo.
    pub repository: Repo,
    /// Target branch; `None` means the repo's default branch.
    pub base: Option<String>,
    /// Default values file.
    pub file: String,
    /// `path=value` lines (optionally `file:path=value`), parsed by `values`.
    pub sets: Vec<String>,
    /// Add missing keys.
    pub create_missing: bool,
    /// Open and merge a PR even without changes.
    pub allow_empty: bool,
    /// Commit message template.
    pub commit_message: Template,
    /// PR title template.
    pub pr_title: Template,
    /// PR body template.
    pub pr_body: Template,
    /// Head branch template.
    pub branch: Template,
    /// Commit author name.
    pub author_name: String,
    /// Commit author email.
    pub author_email: String,
    /// PR labels.
    pub labels: Vec<String>,
    /// PR reviewers.
    pub reviewers: Vec<String>,
    /// PR reviewer teams (slugs).
    pub team_reviewers: Vec<String>,
    /// PR assignees.
    pub assignees: Vec<String>,
    /// Open as draft.
    pub draft: bool,
    /// Approvals to wait for.
    pub required_approvals: u32,
    /// Wait limit for approvals.
    pub approval_timeout: Duration,
    /// Wait for required checks.
    pub wait_for_checks: bool,
    /// Merge the PR (false: open it and stop).
    pub merge: bool,
    /// How to merge.
    pub merge_method: MergeMethod,
    /// Argo CD; `None` skips sync and wait.
    pub argocd: Option<ArgoSettings>,
    /// How to sync.
    pub sync: SyncMode,
    /// Prune on sync.
    pub prune: bool,
    /// Sync options.
    pub sync_options: Vec<String>,
    /// Wait limit for Synced and Healthy.
    pub health_timeout: Duration,
    /// Time Degraded is tolerated.
    pub degraded_grace: Duration,
    /// Limit of one request, and of a git read or write that stalls.
    pub request_timeout: Duration,
    /// How long one call is retried after transient failures.
    pub retry_budget: Duration,
    /// The `on-failure` action, also the strategy's default.
    pub on_failure: crate::config::strategy::Action,
    /// What each error type leads to.
    pub failure_strategy: Strategy,
    /// How to merge the revert PR.
    pub rollback_merge_method: MergeMethod,
    /// Approvals the revert PR waits for.
    pub rollback_required_approvals: u32,
    /// Roll back through Argo CD history when the revert conflicts.
    pub history_fallback: bool,
    /// Standalone rollback: the merge commit.
    pub merge_sha: Option<String>,
    /// Standalone rollback: the merged PR.
    pub pr_number: Option<u64>,
    /// The metrics gate; `None` without `prometheus-url`.
    pub verify: Option<VerifyConfig>,
    /// guard: age limit of the promotion to roll back.
    pub rollback_window: Duration,
    /// status: lag tolerated.
    pub grace: Duration,
    /// guard: the alert payload (a JSON object), when the run was triggered by one.
    pub alert: Option<String>,
    /// Change nothing remote.
    pub dry_run: bool,
    /// GitHub REST base (`GITHUB_API_URL`, default `https://api.github.com`).
    pub github_api_url: Url,
    /// GitHub web and git host (`GITHUB_SERVER_URL`, default `https://github.com`).
    pub github_server_url: Url,
    /// Run id, attempt and URL.
    pub run: RunContext,
    /// The certificates GitHub, git and Prometheus connections trust (`ca-cert` besides the
    /// system's).
    pub trust: Trust,
}

/// Collects problems while reading inputs, so every bad input is reported at once.
struct Reader<'a> {
    raw: &'a RawInputs,
    command: Command,
    problems: Vec<InputError>,
}

impl<'a> Reader<'a> {
    /// A problem the metrics gate found in its inputs, under the input it names.
    fn fail_with(&mut self, e: &crate::clients::verify::VerifyError) {
        use crate::clients::verify::VerifyError as V;
        match e {
            V::Input { input, message } => self.fail(input, message.clone()),
            V::Condition {
                input,
                column,
                message,
            } => self.fail(input, format!("at column {column}: {message}")),
            other => self.fail("query", other.to_string()),
        }
    }

    fn fail(&mut self, input: &str, message: String) {
        self.problems.push(InputError {
            input: input.into(),
            message,
        });
    }

    /// The value or default; records a problem when required for this command and absent.
    fn opt(&mut self, name: &'static str) -> Option<&'a str> {
        let def = input_def(name).expect("input is in INPUTS");
        let v = self.raw.value(name);
        if v.is_none() && def.required_for.contains(&self.command) {
            let how = match def.env_fallback {
                Some(var) => format!(" (or {var})"),
                None => String::new(),
            };
            self.fail(
                name,
                format!("required for {}: set the input{how}", self.command.as_str()),
            );
        }
        v
    }

    fn text(&mut self, name: &'static str) -> String {
        self.opt(name).unwrap_or_default().to_string()
    }

    fn opt_text(&mut self, name: &'static str) -> Option<String> {
        self.opt(name).map(str::to_string)
    }

    /// The certificates of a PEM input: its text, or the path of a PEM file (users write both).
    fn certificates(
        &mut self,
        name: &'static str,
    ) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        let Some(v) = self.opt(name).map(str::to_string) else {
            return Vec::new();
        };
        match net::input_certs(name, &v) {
            Ok(certs) => certs,
            Err(e) => {
                self.fail(name, e);
                Vec::new()
            }
        }
    }

    fn parsed<T>(
        &mut self,
        name: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let v = self.opt(name)?;
        let r = parse(v);
        if r.is_none() {
            self.fail(name, format!("expected {expected}, got '{v}'"));
        }
        r
    }

    fn bool(&mut self, name: &'static str) -> bool {
        self.parsed(name, "true or false", parse_bool)
            .unwrap_or(false)
    }

    fn duration(&mut self, name: &'static str) -> Duration {
        self.parsed(name, "a duration like 90s, 10m or 1h30m", parse_duration)
            .unwrap_or_default()
    }

    fn int(&mut self, name: &'static str) -> u32 {
        self.parsed(name, "a whole number like 0 or 2", |s| s.parse().ok())
            .unwrap_or_default()
    }

    fn choice<T>(&mut self, name: &'static str, map: &[(&str, T)]) -> Option<T>
    where
        T: Copy,
    {
        let words: Vec<&str> = map.iter().map(|(w, _)| *w).collect();
        let expected = match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => words.join(""),
        };
        self.parsed(name, &expected, |s| {
            map.iter().find(|(w, _)| *w == s).map(|(_, t)| *t)
        })
    }

    fn merge_method(&mut self, name: &'static str) -> Option<MergeMethod> {
        self.choice(
            name,
            &[
                ("merge", MergeMethod::Merge),
                ("squash", MergeMethod::Squash),
                ("rebase", MergeMethod::Rebase),
            ],
        )
    }

    fn url(&mut self, name: &'static str) -> Option<Url> {
        self.parsed(
            name,
            "an http(s) URL like https://argocd.example.com",
            parse_url,
        )
    }

    fn list(&mut self, name: &'static str) -> Vec<String> {
        self.opt(name).map(split_list).unwrap_or_default()
    }

    fn lines(&mut self, name: &'static str) -> Vec<String> {
        self.opt(name).map(split_lines).unwrap_or_default()
    }

    fn template(&mut self, name: &'static str) -> Template {
        let text = self.text(name);
        match Template::parse(name, &text) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(e);
                Template { input: name, text }
            }
        }
    }
}

/// Whether `path` stays inside the repo: relative, no `..`, `.` or empty parts, no backslash.
pub fn is_repo_path(path: &str) -> bool {
    !(path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == ".."))
}

/// Parses a boolean the way `core.getBooleanInput` does.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Parses an http or https URL.
fn parse_url(s: &str) -> Option<Url> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Parses `owner/name`.
pub fn parse_repo(s: &str) -> Option<Repo> {
    let (owner, name) = s.split_once('/')?;
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(name) && name != "." && name != "..").then(|| Repo {
        owner: owner.into(),
        name: name.into(),
    })
}

/// Splits on newlines and commas, trimming and dropping empty items.
fn split_list(s: &str) -> Vec<String> {
    s.split(['\n', ','])
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits on newlines, trimming and dropping empty lines.
fn split_lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .collect()
}

impl Config {
    /// The config the rollback's GitHub API calls run with: `github-token` replaced by
    /// `rollback-github-token` when that is set, so a bypass token acts on the revert alone.
    pub fn for_rollback(&self) -> Config {
        let mut c = self.clone();
        if let Some(t) = &self.rollback_github_token {
            c.github_token = t.clone();
        }
        c
    }

    /// Builds and checks the config of `command` from the raw inputs; nothing is touched.
    ///
    /// # Errors
    /// Every invalid or missing input, each naming the input and what was expected.
    pub fn from_raw(command: Command, raw: &RawInputs) -> Result<Config, ConfigError> {
        let mut r = Reader {
            raw,
            command,
            problems: Vec::new(),
        };
        if let Some(c) = raw.get("command") {
            match Command::parse(c) {
                None => r.fail(
                    "command",
                    format!("expected promote, rollback, verify, guard or status, got '{c}'"),
                ),
                Some(c) if c != command => r.fail(
                    "command",
                    format!("'{c}' conflicts with the subcommand {command}"),
                ),
                Some(_) => {}
            }
        }
        let github_token = Secret::new(r.text("github-token"));
        let rollback_github_token = r.opt_text("rollback-github-token").map(Secret::new);
        let repository = r
            .parsed("repository", "owner/name like acme/deploy", parse_repo)
            .unwrap_or(Repo {
                owner: String::new(),
                name: String::new(),
            });
        let base = r.opt_text("base");
        let file = r.text("file");
        let sets = r.lines("set");
        for line in &sets {
            let path = line.split_once('=').map(|(p, _)| p.trim());
            if path.is_none_or(|p| p.is_empty() || p.ends_with(':')) {
                r.fail(
                    "set",
                    format!("expected one path=value a line like image.tag=1.2.3, got '{line}'"),
                );
            } else if let Ok(op) = SetOp::parse(line) {
                // Checked before the clone: a file outside the repo is a typo or worse.
                if let Some(f) = op.file.filter(|f| !is_repo_path(f)) {
                    r.fail(
                        "set",
                        format!("the file of '{line}' must be a path inside the repository like charts/api/values.yaml, got '{f}'"),
                    );
                }
            }
        }
        let create_missing = r.bool("create-missing");
        let allow_empty = r.bool("allow-empty");
        let commit_message = r.template("commit-message");
        let pr_title = r.template("pr-title");
        let pr_body = r.template("pr-body");
        let branch = r.template("branch");
        let author_name = r.text("author-name");
        let author_email = r.text("author-email");
        let labels = r.list("labels");
        let reviewers = r.list("reviewers");
        let team_reviewers = r.list("team-reviewers");
        let assignees = r.list("assignees");
        let draft = r.bool("draft");
        let required_approvals = r.int("required-approvals");
        let approval_timeout = r.duration("approval-timeout");
        let wait_for_checks = r.bool("wait-for-checks");
        let merge = r.bool("merge");
        let merge_method = r
            .merge_method("merge-method")
            .unwrap_or(MergeMethod::Squash);

        let request_timeout = r.duration("request-timeout");
        if request_timeout.is_zero() && raw.get("request-timeout").is_some() {
            r.fail("request-timeout", "must be more than 0s".into());
        }
        let retry_budget = r.duration("retry-budget");
        let server = r.url("argocd-server");
        let token = r.opt_text("argocd-token").map(Secret::new);
        let username = r.opt_text("argocd-username");
        let password = r.opt_text("argocd-password").map(Secret::new);
        let insecure = r.bool("argocd-insecure");
        let ca_cert = r.opt_text("argocd-ca-cert");
        let apps = r.list("argocd-app");
        let selector = r.opt_text("argocd-selector");
        let app_namespace = r.opt_text("argocd-app-namespace");
        let project = r.opt_text("argocd-project");
        if username.is_some() != password.is_some() {
            let missing = if username.is_some() {
                "argocd-password"
            } else {
                "argocd-username"
            };
            r.fail(
                missing,
                "required with argocd-username/argocd-password".into(),
            );
        }
        if server.is_some() && apps.is_empty() && selector.is_none() {
            // Found now, not after the merge: a promotion must not be half done for a typo.
            r.fail(
                "argocd-app",
                "argocd-server is set, so name the applications to sync in argocd-app or argocd-selector".into(),
            );
        }
        if raw.get("argocd-server").is_none() {
            for name in [
                "argocd-app",
                "argocd-selector",
                "argocd-token",
                "argocd-username",
            ] {
                if raw.get(name).is_some() {
                    r.fail(name, "needs argocd-server".into());
                }
            }
        }
        let argocd = server.map(|server| ArgoSettings {
            client: ArgoConfig {
                server: server.to_string(),
                token,
                username,
                password,
                insecure,
                ca_cert,
                app_namespace,
                project,
                call_timeout: Some(request_timeout),
                retry_budget: Some(retry_budget),
                release_repo: None,
            },
            apps,
            selector,
        });
        if command == Status && argocd.is_none() && raw.get("argocd-server").is_none() {
            r.fail("argocd-server", "required for status: set the input".into());
        }
        let sync = r
            .choice(
                "sync",
                &[
                    ("auto", SyncMode::Auto),
                    ("always", SyncMode::Always),
                    ("never", SyncMode::Never),
                ],
            )
            .unwrap_or(SyncMode::Auto);
        let prune = r.bool("prune");
        let sync_options = r.list("sync-options");
        for o in &sync_options {
            if !o.contains('=') {
                r.fail(
                    "sync-options",
                    format!("expected Name=value items like ServerSideApply=true, got '{o}'"),
                );
            }
        }
        let health_timeout = r.duration("health-timeout");
        let degraded_grace = r.duration("degraded-grace");

        let on_failure_text = r.text("on-failure");
        let strategy_yaml = r.text("failure-strategy");
        let failure_strategy = match Strategy::parse(&on_failure_text, &strategy_yaml) {
            Ok(s) => s,
            Err(e) => {
                r.fail(e.input, e.message);
                Strategy::simple(crate::config::strategy::Action::Rollback)
            }
        };
        let on_failure = failure_strategy.default_action().clone();

        let rollback_merge_method = if raw.get("rollback-merge-method").is_some() {
            r.merge_method("rollback-merge-method")
                .unwrap_or(merge_method)
        } else {
            merge_method
        };
        let rollback_required_approvals = r.int("rollback-required-approvals");
        let history_fallback = r.bool("history-fallback");
        let merge_sha = r.parsed("merge-sha", "a commit SHA (7 to 40 hex digits)", |s| {
            (s.len() >= 7 && s.len() <= 40 && s.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| s.to_ascii_lowercase())
        });
        let pr_number = r.parsed("pr-number", "a PR number like 42", |s| {
            s.parse::<u64>().ok().filter(|n| *n > 0)
        });

        let prometheus_url = r.url("prometheus-url");
        let prometheus_token = r.opt_text("prometheus-token").map(Secret::new);
        // The gate's own parser, so comments, names and duplicates are judged as the gate does.
        let queries: Vec<Query> = match r.opt("query") {
            None => Vec::new(),
            Some(text) => match crate::clients::verify::parse_queries(text) {
                Ok(q) => q,
                Err(e) => {
                    r.fail_with(&e);
                    Vec::new()
                }
            },
        };
        let success_condition = r.opt_text("success-condition");
        let failure_condition = r.opt_text("failure-condition");
        if !queries.is_empty() && success_condition.is_none() && failure_condition.is_none() {
            r.fail(
                "success-condition",
                "a query needs success-condition or failure-condition, e.g. result >= 0.99".into(),
            );
        }
        let verify = VerifyConfig {
            prometheus_url: prometheus_url
                .as_ref()
                .map_or_else(String::new, Url::to_string),
            bearer_token: prometheus_token,
            queries,
            success_condition,
            failure_condition,
            initial_delay: r.duration("initial-delay"),
            interval: r.duration("interval"),
            count: r.int("count"),
            failure_limit: r.int("failure-limit"),
            inconclusive_limit: r.int("inconclusive-limit"),
            no_data: r
                .choice(
                    "no-data",
                    &[
                        ("fail", NoData::Fail),
                        ("pass", NoData::Pass),
                        ("inconclusive", NoData::Inconclusive),
                    ],
                )
                .unwrap_or(NoData::Fail),
            timeout: request_timeout,
            trust: Trust::default(),
        };
        let rollback_window = r.duration("rollback-window");
        let grace = r.duration("grace");
        let alert = r.opt_text("alert");
        if let Some(a) = &alert {
            if !serde_json::from_str::<serde_json::Value>(a).is_ok_and(|v| v.is_object()) {
                r.fail(
                    "alert",
                    "expected a JSON object such as an Alertmanager webhook body ({\"status\": \"firing\", \"alerts\": [...]})".into(),
                );
            }
        }
        if command == Guard && alert.is_none() {
            // Without an alert the gate decides, so it must be complete before anything is read.
            if prometheus_url.is_none() && raw.get("prometheus-url").is_none() {
                r.fail(
                    "prometheus-url",
                    "required for guard unless alert is set: set the input".into(),
                );
            }
            if verify.queries.is_empty() {
                r.fail(
                    "query",
                    "required for guard unless alert is set: set the input".into(),
                );
            }
        }
        // Every gate input is checked now, before anything is touched: a typo in a condition
        // must not cost a merge, a deploy and a rollback (DESIGN.md §2.1). Queries without a
        // `prometheus-url` are checked too (the `verify` command then says the URL is missing).
        if r.problems.is_empty() && (prometheus_url.is_some() || !verify.queries.is_empty()) {
            let checked = VerifyConfig {
                prometheus_url: prometheus_url
                    .as_ref()
                    .map_or_else(|| "http://prometheus.invalid".into(), Url::to_string),
                ..verify.clone()
            };
            if let Err(e) = checked.check() {
                r.fail_with(&e);
            }
        }
        let mut verify = prometheus_url.is_some().then_some(verify);
        let dry_run = r.bool("dry-run");

        let ctx_url = |r: &mut Reader<'_>, var: &str, default: &str| {
            let v = raw.context.get(var).map_or(default, String::as_str);
            parse_url(v).unwrap_or_else(|| {
                r.fail(var, format!("expected an http(s) URL, got '{v}'"));
                Url::parse(default).expect("default URL parses")
            })
        };
        let github_api_url = ctx_url(&mut r, "GITHUB_API_URL", "https://api.github.com");
        let github_server_url = ctx_url(&mut r, "GITHUB_SERVER_URL", "https://github.com");
        let run_id = raw.context.get("GITHUB_RUN_ID").cloned();
        let run_url = match (&run_id, raw.context.get("GITHUB_REPOSITORY")) {
            (Some(id), Some(repo)) => format!(
                "{}/{repo}/actions/runs/{id}",
                github_server_url.as_str().trim_end_matches('/')
            ),
            _ => String::new(),
        };
        // A release repo on another instance (GHES, or github.com from a GHES runner): its API and
        // git host come from the inputs, the run's own link from the runner's.
        let github_api_url = r.url("github-api-url").unwrap_or(github_api_url);
        let github_server_url = r.url("github-server-url").unwrap_or(github_server_url);
        // A GHES API URL pasted into the server input would make clone URLs under /api/v3/, which
        // the git host answers 404 as a missing repository: name the mix-up instead.
        let server_path = github_server_url.path().trim_end_matches('/');
        if server_path.ends_with("/api/v3") || server_path.ends_with("/api") {
            r.fail(
                "github-server-url",
                format!(
                    "expected the web and git host (e.g. https://ghe.example.com), got the API URL '{github_server_url}': put it in github-api-url"
                ),
            );
        }
        // The release repo's URL, to find its source among a multi-source app's.
        let argocd = argocd.map(|mut a| {
            let host = github_server_url.as_str().trim_end_matches('/');
            a.client.release_repo = Some(format!("{host}/{repository}"));
            a
        });
        let run = RunContext {
            api_url: github_api_url.clone(),
            server_url: github_server_url.clone(),
            run_id: run_id.unwrap_or_else(|| "local".into()),
            run_attempt: raw
                .context
                .get("GITHUB_RUN_ATTEMPT")
                .cloned()
                .unwrap_or_else(|| "1".into()),
            run_url,
            job: raw
                .context
                .get("GITHUB_JOB")
                .cloned()
                .unwrap_or_else(|| "local".into()),
        };

        let trust = Trust {
            extra: r.certificates("ca-cert"),
            ..Trust::default()
        };
        if let Some(v) = verify.as_mut() {
            v.trust = trust.clone();
        }

        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(Config {
            command,
            github_token,
            rollback_github_token,
            repository,
            base,
            file,
            sets,
            create_missing,
            allow_empty,
            commit_message,
            pr_title,
            pr_body,
            branch,
            author_name,
            author_email,
            labels,
            reviewers,
            team_reviewers,
            assignees,
            draft,
            required_approvals,
            approval_timeout,
            wait_for_checks,
            merge,
            merge_method,
            argocd,
            sync,
            prune,
            sync_options,
            health_timeout,
            degraded_grace,
            request_timeout,
            retry_budget,
            on_failure,
            failure_strategy,
            rollback_merge_method,
            rollback_required_approvals,
            history_fallback,
            merge_sha,
            pr_number,
            verify,
            rollback_window,
            grace,
            alert,
            dry_run,
            github_api_url,
            github_server_url,
            run,
            trust,
        })
    }

    /// [`Config::from_raw`] reading `INPUT_*` and `GITHUB_*` from the process environment, CLI
    /// flags first.
    ///
    /// # Errors
    /// As [`Config::from_raw`].
    pub fn from_env_and_args(
        command: Command,
        flags: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        Config::from_raw(command, &RawInputs::from_env(flags))
    }

    /// The `{changes}` text: the `set` lines joined by `, `, e.g. `image.tag=1.2.3`.
    pub fn changes(&self) -> String {
        self.sets.join(", ")
    }

    /// Template values known from the config; `base` and `changes` are filled in by the flow.
    pub fn template_vars<'a>(
        &'a self,
        repo: &'a str,
        base: &'a str,
        changes: &'a str,
        files: &'a str,
        key: &'a str,
    ) -> TemplateVars<'a> {
        TemplateVars {
            repository: repo,
            base,
            changes,
            files,
            key,
            job: &self.run.job,
            run_url: &self.run.run_url,
            run_id: &self.run.run_id,
            run_attempt: &self.run.run_attempt,
        }
    }

    /// What a guard watches: the files its `set` lines name, else `file` when it is given (not
    /// its default), and its apps. A guard run without any (as on a schedule, by app alone)
    /// watches every file.
    pub fn watched_scope(&self) -> Scope {
        let mut scope = self.scope();
        let default_file = input_def("file").and_then(|d| d.default) == Some(self.file.as_str());
        if self.sets.is_empty() && default_file {
            scope.files.clear();
        }
        scope
    }

    /// What this promotion touches (see [`Scope`]); `set` lines that do not parse are left out
    /// (the edit step reports them).
    pub fn scope(&self) -> Scope {
        let mut scope = Scope::default();
        for line in &self.sets {
            let Ok(op) = SetOp::parse(line) else { continue };
            let file = op.file.clone().unwrap_or_else(|| self.file.clone());
            if !scope.files.contains(&file) {
                scope.files.push(file.clone());
            }
            scope.paths.push((file, op.path.to_string()));
        }
        if self.sets.is_empty() {
            scope.files.push(self.file.clone());
        }
        scope.paths.sort();
        scope.paths.dedup();
        if let Some(a) = &self.argocd {
            scope.apps = match &a.selector {
                Some(sel) => vec![format!("selector={sel}")],
                None => a.apps.clone(),
            };
        }
        scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn raw(pairs: &[(&str, &str)]) -> RawInputs {
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RawInputs::collect(&[], |k| env.get(k).cloned())
    }

    fn promote(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut all = vec![
            ("INPUT_GITHUB-TOKEN", "t0k"),
            ("INPUT_REPOSITORY", "acme/deploy"),
            ("INPUT_SET", "image.tag=1.2.3"),
        ];
        all.extend_from_slice(pairs);
        Config::from_raw(Command::Promote, &raw(&all))
    }

    fn only_problem(r: Result<Config, ConfigError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        e.problems[0].to_string()
    }

    #[test]
    fn defaults_fill_a_minimal_promote() {
        let c = promote(&[]).unwrap();
        assert_eq!(
            c.repository,
            Repo {
                owner: "acme".into(),
                name: "deploy".into()
            }
        );
        assert_eq!(c.file, "values.yaml");
        assert_eq!(c.sets, ["image.tag=1.2.3"]);
        assert_eq!(c.health_timeout, Duration::from_secs(600));
        assert_eq!(c.merge_method, MergeMethod::Squash);
        assert_eq!(c.rollback_merge_method, MergeMethod::Squash);
        assert!(c.merge && c.wait_for_checks && !c.dry_run);
        assert!(c.argocd.is_none());
        assert_eq!(c.github_api_url.as_str(), "https://api.github.com/");
        assert_eq!(c.run.run_url, "");
    }

    #[test]
    fn bad_duration_names_input_and_expectation() {
        assert_eq!(
            only_problem(promote(&[("INPUT_HEALTH-TIMEOUT", "10 minutes")])),
            "input 'health-timeout': expected a duration like 90s, 10m or 1h30m, got '10 minutes'"
        );
    }

    #[test]
    fn request_timeout_and_retry_budget_reach_every_client() {
        let c = promote(&[]).unwrap();
        assert_eq!(
            (c.request_timeout, c.retry_budget),
            (Duration::from_secs(30), Duration::from_secs(120))
        );
        let c = promote(&[
            ("INPUT_REQUEST-TIMEOUT", "5s"),
            ("INPUT_RETRY-BUDGET", "0s"),
            ("INPUT_ARGOCD-SERVER", "https://argocd.example.com"),
            ("INPUT_ARGOCD-TOKEN", "a"),
            ("INPUT_ARGOCD-APP", "web"),
            ("INPUT_PROMETHEUS-URL", "http://prom:9090"),
            ("INPUT_QUERY", "up"),
            ("INPUT_SUCCESS-CONDITION", "result == 1"),
        ])
        .unwrap();
        let argo = c.argocd.unwrap();
        assert_eq!(argo.client.call_timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            argo.client.retry_budget,
            Some(Duration::ZERO),
            "0s turns retries off"
        );
        assert_eq!(c.verify.unwrap().timeout, Duration::from_secs(5));
        assert_eq!(
            only_problem(promote(&[("INPUT_REQUEST-TIMEOUT", "0s")])),
            "input 'request-timeout': must be more than 0s"
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "10", "m", "1.5h", "10 m", "1d", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans_accept_three_spellings_only() {
        assert!(promote(&[("INPUT_DRY-RUN", "TRUE")]).unwrap().dry_run);
        assert!(!promote(&[("INPUT_MERGE", "False")]).unwrap().merge);
        assert_eq!(
            only_problem(promote(&[("INPUT_DRAFT", "yes")])),
            "input 'draft': expected true or false, got 'yes'"
        );
    }

    #[test]
    fn merge_method_and_repository_are_checked() {
        assert_eq!(
            only_problem(promote(&[("INPUT_MERGE-METHOD", "fast-forward")])),
            "input 'merge-method': expected merge, squash or rebase, got 'fast-forward'"
        );
        assert_eq!(
            only_problem(promote(&[("INPUT_REPOSITORY", "acme")])),
            "input 'repository': expected owner/name like acme/deploy, got 'acme'"
        );
        let c = promote(&[
            ("INPUT_MERGE-METHOD", "rebase"),
            ("INPUT_ROLLBACK-MERGE-METHOD", "merge"),
        ])
        .unwrap();
        assert_eq!(
            (c.merge_method, c.rollback_merge_method),
            (MergeMethod::Rebase, MergeMethod::Merge)
        );
    }

    #[test]
    fn required_inputs_depend_on_the_command() {
        let r = raw(&[("INPUT_GITHUB-TOKEN", "t"), ("INPUT_REPOSITORY", "a/b")]);
        let e = Config::from_raw(Command::Promote, &r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'set': required for promote: set the input"
        );
        assert!(Config::from_raw(Command::Rollback, &r).is_ok());
        let e = Config::from_raw(Command::Verify, &raw(&[])).unwrap_err();
        let names: Vec<_> = e.problems.iter().map(|p| p.input.as_str()).collect();
        assert_eq!(names, ["prometheus-url", "query"]);
    }

    #[test]
    fn a_comment_line_in_query_is_a_comment() {
        let r = raw(&[
            ("INPUT_PROMETHEUS-URL", "http://prom:9090"),
            ("INPUT_QUERY", "# the error ratio\nsum(rate(x[5m]))"),
            ("INPUT_SUCCESS-CONDITION", "result < 0.01"),
        ]);
        let c = Config::from_raw(Command::Verify, &r).unwrap();
        let verify = c.verify.unwrap();
        let names: Vec<&str> = verify.queries.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["result"]);
        assert_eq!(verify.queries[0].promql, "sum(rate(x[5m]))");
    }

    #[test]
    fn env_fallbacks_follow_inputs() {
        let r = raw(&[
            ("GITHUB_TOKEN", "envtok"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("INPUT_SET", "a=1"),
        ]);
        let c = Config::from_raw(Command::Promote, &r).unwrap();
        assert_eq!(
            (c.github_token.expose(), c.repository.to_string().as_str()),
            ("envtok", "o/r")
        );
        let r = RawInputs::collect(&[("repository".into(), " x/y ".into())], |k| {
            (k == "INPUT_REPOSITORY").then(|| "o/r".to_string())
        });
        assert_eq!(r.get("repository"), Some("x/y"));
    }

    #[test]
    fn set_lines_need_path_and_equals() {
        let c = promote(&[(
            "INPUT_SET",
            "  image.tag=1.2\n\ncharts/api/values.yaml:image.tag=3  \n",
        )])
        .unwrap();
        assert_eq!(
            c.sets,
            ["image.tag=1.2", "charts/api/values.yaml:image.tag=3"]
        );
        assert_eq!(
            only_problem(promote(&[("INPUT_SET", "image.tag")])),
            "input 'set': expected one path=value a line like image.tag=1.2.3, got 'image.tag'"
        );
    }

    #[test]
    fn lists_split_on_commas_and_newlines() {
        let c = promote(&[
            ("INPUT_LABELS", "a, b\nc,,"),
            ("INPUT_ARGOCD-SERVER", "https://cd.example"),
            ("INPUT_ARGOCD-APP", "web\napi"),
        ])
        .unwrap();
        assert_eq!(c.labels, ["a", "b", "c"]);
        assert_eq!(c.argocd.unwrap().apps, ["web", "api"]);
    }

    #[test]
    fn argocd_inputs_are_consistent() {
        assert_eq!(
            only_problem(promote(&[("INPUT_ARGOCD-APP", "web")])),
            "input 'argocd-app': needs argocd-server"
        );
        assert_eq!(
            only_problem(promote(&[("INPUT_ARGOCD-SERVER", "ftp://x")])),
            "input 'argocd-server': expected an http(s) URL like https://argocd.example.com, got 'ftp://x'"
        );
        assert_eq!(
            only_problem(promote(&[
                ("INPUT_ARGOCD-SERVER", "https://cd"),
                ("INPUT_ARGOCD-APP", "web"),
                ("INPUT_ARGOCD-USERNAME", "admin")
            ])),
            "input 'argocd-password': required with argocd-username/argocd-password"
        );
        // Caught before anything is touched, not after the merge.
        assert_eq!(
            only_problem(promote(&[("INPUT_ARGOCD-SERVER", "https://cd")])),
            "input 'argocd-app': argocd-server is set, so name the applications to sync in argocd-app or argocd-selector"
        );
        assert!(promote(&[
            ("INPUT_ARGOCD-SERVER", "https://cd"),
            ("INPUT_ARGOCD-SELECTOR", "team=web")
        ])
        .is_ok());
    }

    #[test]
    fn templates_render_and_reject_unknown_placeholders() {
        let c = promote(&[("INPUT_PR-TITLE", "Deploy {changes} to {base} {{literal}}")]).unwrap();
        let vars = c.template_vars(
            "acme/deploy",
            "main",
            "image.tag=1.2",
            "charts/app/values.yaml",
            "0a1b2c3d",
        );
        assert_eq!(
            c.pr_title.render(&vars),
            "Deploy image.tag=1.2 to main {literal}"
        );
        assert_eq!(
            c.branch.render(&vars),
            "gitops-promote/main/local-local-0a1b2c3d"
        );
        let e = only_problem(promote(&[("INPUT_COMMIT-MESSAGE", "bump {version}")]));
        assert!(e.starts_with("input 'commit-message': unknown placeholder '{version}', expected one of {repository}"), "{e}");
    }

    #[test]
    fn the_scope_names_files_paths_and_apps_and_its_key_ignores_values() {
        let c = promote(&[
            (
                "INPUT_SET",
                "image.tag=1.2\ncharts/api/values.yaml:image.tag=3",
            ),
            ("INPUT_ARGOCD-SERVER", "https://cd"),
            ("INPUT_ARGOCD-TOKEN", "t"),
            ("INPUT_ARGOCD-APP", "web, api"),
        ])
        .unwrap();
        let s = c.scope();
        assert_eq!(s.files, ["values.yaml", "charts/api/values.yaml"]);
        assert_eq!(s.apps, ["web", "api"]);
        let newer = promote(&[
            (
                "INPUT_SET",
                "image.tag=1.3\ncharts/api/values.yaml:image.tag=4",
            ),
            ("INPUT_ARGOCD-SERVER", "https://cd"),
            ("INPUT_ARGOCD-TOKEN", "t"),
            ("INPUT_ARGOCD-APP", "api, web"),
        ])
        .unwrap();
        assert_eq!(newer.scope().key(), s.key(), "new values, same change set");
        let other = promote(&[
            ("INPUT_SET", "image.tag=1.2"),
            ("INPUT_FILE", "envs/dev.yaml"),
        ])
        .unwrap();
        assert_ne!(other.scope().key(), s.key());
        assert_eq!(s.key().len(), 8);
    }

    #[test]
    fn a_guard_without_file_or_set_watches_every_file_of_its_apps() {
        let guard = |file: &str| {
            let r = raw(&[
                ("INPUT_REPOSITORY", "acme/deploy"),
                ("INPUT_GITHUB-TOKEN", "t"),
                ("INPUT_FILE", file),
                ("INPUT_ALERT", "{\"status\":\"firing\"}"),
                ("INPUT_ARGOCD-SERVER", "https://cd"),
                ("INPUT_ARGOCD-TOKEN", "t"),
                ("INPUT_ARGOCD-APP", "web"),
            ]);
            Config::from_raw(Command::Guard, &r)
                .unwrap()
                .watched_scope()
        };
        // The runner sets the input's default when the workflow names none.
        let s = guard("values.yaml");
        assert!(s.files.is_empty(), "{s:?}");
        assert_eq!(s.apps, ["web"]);
        assert_eq!(
            guard("envs/prod/values.yaml").files,
            ["envs/prod/values.yaml"]
        );
    }

    #[test]
    fn a_set_line_naming_a_file_outside_the_repo_is_refused_before_the_clone() {
        let e = only_problem(promote(&[("INPUT_SET", "../secrets/values.yaml:a=1")]));
        assert!(e.starts_with("input 'set': the file of '../secrets/values.yaml:a=1' must be a path inside the repository"), "{e}");
    }

    #[test]
    fn a_release_repo_on_another_instance_is_reached_through_the_inputs() {
        let c = promote(&[
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "7"),
            ("INPUT_GITHUB-API-URL", "https://ghe.example/api/v3"),
            ("INPUT_GITHUB-SERVER-URL", "https://ghe.example"),
        ])
        .unwrap();
        assert_eq!(c.run.api_url.as_str(), "https://ghe.example/api/v3");
        assert_eq!(c.run.server_url.as_str(), "https://ghe.example/");
        // The run is still the workflow's, on its own instance.
        assert_eq!(c.run.run_url, "https://github.com/acme/app/actions/runs/7");
        let e = only_problem(promote(&[("INPUT_GITHUB-API-URL", "ghe.example")]));
        assert!(e.starts_with("input 'github-api-url'"), "{e}");
        let e = only_problem(promote(&[(
            "INPUT_GITHUB-SERVER-URL",
            "https://ghe.example/api/v3/",
        )]));
        assert!(
            e.starts_with("input 'github-server-url'") && e.contains("put it in github-api-url"),
            "{e}"
        );
    }

    #[test]
    fn run_context_builds_the_run_url() {
        let c = promote(&[
            ("GITHUB_SERVER_URL", "https://ghe.example/"),
            ("GITHUB_API_URL", "https://ghe.example/api/v3"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "77"),
            ("GITHUB_JOB", "build"),
            ("GITHUB_RUN_ATTEMPT", "2"),
        ])
        .unwrap();
        assert_eq!(
            c.run.run_url,
            "https://ghe.example/acme/app/actions/runs/77"
        );
        assert_eq!(
            c.branch
                .render(&c.template_vars("a/b", "main", "", "v.yaml", "k")),
            "gitops-promote/main/77-build-k"
        );
        assert_eq!(c.github_api_url.as_str(), "https://ghe.example/api/v3");
    }

    #[test]
    fn failure_strategy_errors_name_the_input() {
        assert_eq!(
            only_problem(promote(&[("INPUT_ON-FAILURE", "panic")])),
            "input 'on-failure': expected rollback, ignore or abort, got 'panic'"
        );
        let e = only_problem(promote(&[(
            "INPUT_FAILURE-STRATEGY",
            "- on: [nope]\n  action: abort\n",
        )]));
        assert!(e.starts_with("input 'failure-strategy': "), "{e}");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let e = promote(&[("INPUT_COUNT", "many"), ("INPUT_SYNC", "sometimes")]).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = promote(&[("INPUT_GITHUB-TOKEN", "ghs_topsecret")]).unwrap();
        assert_eq!(c.github_token.expose(), "ghs_topsecret");
        assert!(!format!("{c:?}").contains("ghs_topsecret"));
    }

    #[test]
    fn secrets_are_listed_for_masking() {
        let r = raw(&[
            ("INPUT_GITHUB-TOKEN", "ghs_x"),
            ("INPUT_ARGOCD-PASSWORD", "pw"),
            ("INPUT_FILE", "v.yaml"),
        ]);
        assert_eq!(r.secrets(), ["ghs_x", "pw"]);
    }

    #[test]
    fn queries_may_be_named() {
        let c = promote(&[
            ("INPUT_PROMETHEUS-URL", "http://prom:9090"),
            (
                "INPUT_QUERY",
                "errors: sum(rate(x[1m]))\nratio: job:rate5m{a=\"b\"}",
            ),
            ("INPUT_SUCCESS-CONDITION", "result < 1"),
        ])
        .unwrap();
        let names: Vec<_> = c
            .verify
            .as_ref()
            .unwrap()
            .queries
            .iter()
            .map(|q| (q.name.as_str(), q.promql.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("errors", "sum(rate(x[1m]))"),
                ("ratio", "job:rate5m{a=\"b\"}")
            ]
        );
    }

    #[test]
    fn action_yml_parses_to_the_definitions() {
        let doc: yaml_serde::Value = yaml_serde::from_str(&action_yml()).unwrap();
        let inputs = doc["inputs"].as_mapping().unwrap();
        let names: Vec<&str> = inputs.keys().map(|k| k.as_str().unwrap()).collect();
        let want: Vec<&str> = INPUTS.iter().map(|d| d.name).collect();
        assert_eq!(names, want);
        assert_eq!(
            doc["inputs"]["github-token"]["default"].as_str(),
            Some("${{ github.token }}")
        );
        assert_eq!(
            doc["inputs"]["pr-body"]["default"].as_str(),
            input_def("pr-body").unwrap().default
        );
        let outputs: Vec<&str> = doc["outputs"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(outputs.len(), OUTPUTS.len());
        assert_eq!(doc["runs"]["using"].as_str(), Some("docker"));
        assert_eq!(
            doc["runs"]["post-if"].as_str(),
            Some("failure() || cancelled()")
        );
        assert_eq!(
            doc["runs"]["post-entrypoint"].as_str(),
            Some("/usr/local/bin/gitops-promote-post")
        );
    }

    /// The names DESIGN.md §1a fixes; other checks call them, so none may go missing.
    #[test]
    fn fixed_names_of_design_1a_are_all_present() {
        let fixed_inputs = "command github-token repository base file set create-missing \
            commit-message pr-title pr-body branch labels reviewers assignees draft \
            required-approvals approval-timeout wait-for-checks merge merge-method argocd-server \
            argocd-token argocd-username argocd-password argocd-insecure argocd-ca-cert argocd-app \
            argocd-selector argocd-app-namespace argocd-project sync prune sync-options \
            health-timeout degraded-grace on-failure failure-strategy rollback-merge-method \
            rollback-required-approvals history-fallback merge-sha pr-number prometheus-url query \
            success-condition failure-condition initial-delay interval count failure-limit \
            inconclusive-limit no-data rollback-window dry-run";
        let additions = [
            "allow-empty",
            "author-name",
            "author-email",
            "grace",
            "prometheus-token",
            "alert",
            "request-timeout",
            "retry-budget",
            "job-status",
            "github-api-url",
            "github-server-url",
            "team-reviewers",
            "ca-cert",
            "rollback-github-token",
        ];
        let mut want: Vec<&str> = fixed_inputs.split_whitespace().chain(additions).collect();
        let mut have: Vec<&str> = INPUTS.iter().map(|d| d.name).collect();
        want.sort_unstable();
        have.sort_unstable();
        assert_eq!(have, want);
        let fixed_outputs = [
            "changed",
            "pr-number",
            "pr-url",
            "merge-sha",
            "synced-revision",
            "health",
            "apps",
            "revert-sha",
            "revert-pr-number",
            "rolled-back",
        ];
        let output_additions = [
            "pr-operation",
            "head-branch",
            "head-sha",
            "revert-pr-url",
            "verification",
            "error-type",
        ];
        let mut want: Vec<&str> = fixed_outputs.into_iter().chain(output_additions).collect();
        let mut outputs: Vec<&str> = OUTPUTS.iter().map(|o| o.name).collect();
        want.sort_unstable();
        outputs.sort_unstable();
        assert_eq!(outputs, want);
    }

    #[test]
    fn every_input_is_documented_once() {
        let mut names: Vec<_> = INPUTS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), INPUTS.len());
        assert!(INPUTS.iter().all(|d| !d.description.is_empty()));
    }
}
