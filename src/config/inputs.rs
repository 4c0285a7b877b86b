//! The one table of inputs and outputs: `action.yml`, `--help`, `docs/inputs.md` and the README's
//! tables are generated from it.

use std::fmt;

/// The command a run performs; inputs are required per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// The action's main step: edit, PR, merge, sync, wait, verify.
    Promote,
    /// Revert a promotion: the post step, or standalone with `merge-sha`/`pr-number`.
    Rollback,
    /// The metrics gate alone.
    Verify,
    /// Roll back the last promotion if the gate fails within `rollback-window`.
    Guard,
    /// Drift check: each app Synced to the base branch head.
    Status,
}

impl Command {
    /// Every command the `command` input accepts.
    pub const ALL: [Command; 5] = [
        Command::Promote,
        Command::Rollback,
        Command::Verify,
        Command::Guard,
        Command::Status,
    ];

    /// The name used in the `command` input and as a subcommand.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Promote => "promote",
            Command::Rollback => "rollback",
            Command::Verify => "verify",
            Command::Guard => "guard",
            Command::Status => "status",
        }
    }

    /// Parses a `command` input value.
    pub fn parse(s: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an input holds; drives the CLI value name and the check applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// `true`/`True`/`TRUE` or `false`/`False`/`FALSE`, as `core.getBooleanInput` accepts.
    Bool,
    /// A non-negative integer.
    Int,
    /// A duration like `90s`, `10m`, `1h30m`, `500ms`.
    Duration,
    /// An http(s) URL.
    Url,
    /// `owner/name`.
    Repo,
    /// Items separated by newlines or commas.
    List,
    /// One item a line.
    Lines,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Text with `{placeholders}`.
    Template,
    /// A YAML document.
    Yaml,
}

impl Kind {
    /// The value name shown in `--help`.
    pub(super) fn value_name(self) -> &'static str {
        match self {
            Kind::Text | Kind::Template | Kind::Yaml => "TEXT",
            Kind::Bool => "BOOL",
            Kind::Int => "N",
            Kind::Duration => "DURATION",
            Kind::Url => "URL",
            Kind::Repo => "OWNER/NAME",
            Kind::List | Kind::Lines => "ITEM",
            Kind::Choice(_) => "WORD",
        }
    }
}

/// One input: its name (also the CLI flag and `INPUT_<NAME>`), docs, default and checks.
#[derive(Debug, Clone, Copy)]
pub struct InputDef {
    /// The input name, e.g. `github-token`.
    pub name: &'static str,
    /// One or two sentences for action.yml, `--help` and the README.
    pub description: &'static str,
    /// The value used when the input is absent or empty.
    pub default: Option<&'static str>,
    /// What action.yml writes as default when it differs from `default` (an expression).
    pub action_default: Option<&'static str>,
    /// An environment variable read after `INPUT_<NAME>` and before the default.
    pub env_fallback: Option<&'static str>,
    /// The commands that fail without it.
    pub required_for: &'static [Command],
    /// Masked in logs before anything is printed.
    pub secret: bool,
    /// The kind of value.
    pub kind: Kind,
}

/// An input definition with the common fields defaulted, so the table stays readable.
const fn input(name: &'static str, kind: Kind, description: &'static str) -> InputDef {
    InputDef {
        name,
        description,
        default: None,
        action_default: None,
        env_fallback: None,
        required_for: &[],
        secret: false,
        kind,
    }
}

impl InputDef {
    /// With this default.
    const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    /// With this action.yml default expression.
    const fn action_default(mut self, d: &'static str) -> Self {
        self.action_default = Some(d);
        self
    }
    /// Falling back to this environment variable.
    const fn env(mut self, var: &'static str) -> Self {
        self.env_fallback = Some(var);
        self
    }
    /// Required for these commands.
    const fn required(mut self, cmds: &'static [Command]) -> Self {
        self.required_for = cmds;
        self
    }
    /// Masked in logs.
    const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// The environment variable the runner sets: upper-cased, hyphens kept.
    pub fn env_name(&self) -> String {
        format!("INPUT_{}", self.name.to_uppercase())
    }

    /// The default as documented (action.yml expression, else the plain default).
    pub fn documented_default(&self) -> Option<&'static str> {
        self.action_default.or(self.default)
    }
}

use Command::{Guard, Promote, Rollback, Status, Verify};

const DURATION: Kind = Kind::Duration;
const BOOL: Kind = Kind::Bool;
const MERGE_METHODS: Kind = Kind::Choice(&["merge", "squash", "rebase"]);

/// Every input, in the order the docs list them (DESIGN.md §1a). Additions to §1a: `allow-empty`,
/// `author-name`, `author-email`, `grace`, `prometheus-token`, `alert`, `request-timeout`,
/// `retry-budget`, `job-status`, `rollback-github-token`.
#[rustfmt::skip]
pub const INPUTS: &[InputDef] = &[
    input("command", Kind::Choice(&["promote", "rollback", "verify", "guard", "status"]),
        "What the main step does: promote, rollback, verify, guard or status.").default("promote"),
    input("github-token", Kind::Text,
        "Token with contents:write and pull-requests:write on the release repo; the merge gate also reads checks (checks:read) and commit statuses (statuses:read).")
        .action_default("${{ github.token }}").env("GITHUB_TOKEN").secret()
        .required(&[Promote, Rollback, Guard, Status]),
    input("repository", Kind::Repo, "The release repo, as owner/name.")
        .action_default("${{ github.repository }}").env("GITHUB_REPOSITORY")
        .required(&[Promote, Rollback, Guard, Status]),
    input("github-api-url", Kind::Url, "REST API of the instance holding the release repo, e.g. https://ghe.example.com/api/v3; empty means the workflow's own (GITHUB_API_URL)."),
    input("github-server-url", Kind::Url, "Web and git host of the instance holding the release repo, e.g. https://ghe.example.com; empty means the workflow's own (GITHUB_SERVER_URL)."),
    input("ca-cert", Kind::Text, "CA certificates trusted for GitHub, git and Prometheus besides the system's (SSL_CERT_FILE, else the distribution's bundle), e.g. a GitHub Enterprise Server's internal CA: the PEM text (-----BEGIN CERTIFICATE-----...) or the path of a PEM file."),
    input("base", Kind::Text, "Branch the PR targets; empty means the repo's default branch."),
    input("file", Kind::Text, "Values file, relative to the repo root.").default("values.yaml"),
    input("set", Kind::Lines,
        "One path=value a line, e.g. image.tag=1.2.3; a line may name its own file first (charts/api/values.yaml:image.tag=1.2.3).")
        .required(&[Promote]),
    input("create-missing", BOOL, "Add keys that do not exist instead of failing.").default("false"),
    input("allow-empty", BOOL, "Open and merge a PR even when the values are already set.").default("false"),
    input("commit-message", Kind::Template,
        "Commit message template; may use {repository}, {base}, {changes}, {files} (the values files changed), {key} (a short hash of the files, paths and apps the promotion touches), {job}, {run_url}, {run_id}, {run_attempt}.")
        .default("Promote {changes} in {files} on {base}"),
    input("pr-title", Kind::Template, "PR title template (same placeholders as commit-message).")
        .default("Promote {changes} in {files} on {base}"),
    input("pr-body", Kind::Template, "PR body template (same placeholders as commit-message).")
        .default("Promotes {changes} in {files} of {repository} on {base}.\n\nOpened by gitops-promote from {run_url}."),
    input("branch", Kind::Template, "Head branch template (same placeholders as commit-message). The default is unique per job and per change set ({key}), so the legs of a matrix never share a branch, and leaves out the attempt, so a re-run of the job takes over its own PR instead of opening a second one. A branch is taken over only when its head is a promotion of the same change set; any other is left alone and the step fails.")
        .default("gitops-promote/{base}/{run_id}-{job}-{key}"),
    input("author-name", Kind::Text, "Commit author and committer name.").default("github-actions[bot]"),
    input("author-email", Kind::Text, "Commit author and committer email.")
        .default("41898282+github-actions[bot]@users.noreply.github.com"),
    input("labels", Kind::List, "PR labels, separated by commas or newlines."),
    input("reviewers", Kind::List, "PR reviewers (logins), separated by commas or newlines."),
    input("team-reviewers", Kind::List, "PR reviewer teams (slugs of the release repo's organization), separated by commas or newlines. GitHub refuses teams to a token that cannot read the organization (GITHUB_TOKEN); the step then warns and goes on."),
    input("assignees", Kind::List, "PR assignees (logins), separated by commas or newlines."),
    input("draft", BOOL, "Open the PR as a draft.").default("false"),
    input("required-approvals", Kind::Int, "Approving reviews to wait for before merging.").default("0"),
    input("approval-timeout", DURATION, "How long to wait for approvals; then an approval error.").default("1h"),
    input("wait-for-checks", BOOL, "Wait for the required checks before merging.").default("true"),
    input("merge", BOOL, "Merge the PR; false opens the PR and stops.").default("true"),
    input("merge-method", MERGE_METHODS, "How to merge: merge, squash or rebase.").default("squash"),
    input("argocd-server", Kind::Url, "Argo CD URL; without it, sync and wait are skipped."),
    input("argocd-token", Kind::Text, "Argo CD API token (or use argocd-username and argocd-password).").secret(),
    input("argocd-username", Kind::Text, "Argo CD user for a session login."),
    input("argocd-password", Kind::Text, "Password of argocd-username.").secret(),
    input("argocd-insecure", BOOL, "Skip TLS verification of the Argo CD server.").default("false"),
    input("argocd-ca-cert", Kind::Text, "CA certificate that signs the Argo CD server's certificate: the PEM text (-----BEGIN CERTIFICATE-----...) or the path of a PEM file; it replaces the system roots for Argo CD."),
    input("argocd-app", Kind::List, "Argo CD applications to sync and wait for, separated by commas or newlines."),
    input("argocd-selector", Kind::Text, "Label selector choosing the applications, e.g. team=web."),
    input("argocd-app-namespace", Kind::Text, "Namespace of the applications (apps in any namespace)."),
    input("argocd-project", Kind::Text, "Only applications of this Argo CD project."),
    input("sync", Kind::Choice(&["auto", "always", "never"]),
        "auto: refresh auto-sync apps and sync the others; always: sync every app; never: only wait.")
        .default("auto"),
    input("prune", BOOL, "Prune resources during the sync.").default("false"),
    input("sync-options", Kind::List, "Argo CD sync options such as ServerSideApply=true, separated by commas or newlines."),
    input("health-timeout", DURATION, "How long to wait for the apps to be Synced and Healthy.").default("10m"),
    input("degraded-grace", DURATION, "How long an app may stay Degraded before it counts as failed.").default("0s"),
    input("request-timeout", DURATION,
        "How long one request to GitHub, Argo CD or Prometheus may take, and git may stall on a read or write, before it counts as a timeout.")
        .default("30s"),
    input("retry-budget", DURATION,
        "How long one call to GitHub, Argo CD or git is retried after transient failures (5xx, dropped connections, timeouts, 429, rate limits with Retry-After) before its error goes to the failure strategy.")
        .default("2m"),
    input("on-failure", Kind::Choice(&["rollback", "ignore", "abort"]),
        "Default action on a failure: rollback, ignore or abort.").default("rollback"),
    input("failure-strategy", Kind::Yaml,
        "YAML list refining on-failure per error type: on, action (retry, rollback, ignore, abort, manual), retries, interval, timeout, then."),
    input("rollback-merge-method", MERGE_METHODS, "How to merge the revert PR; empty means merge-method."),
    input("rollback-github-token", Kind::Text,
        "Token for the rollback's GitHub API calls (the revert PR, its merge, its comments); empty means github-token, which still pushes the revert branch. Give it a token your rulesets let bypass (a bypass actor), so a revert merges where a promotion would wait for reviews.")
        .secret(),
    input("rollback-required-approvals", Kind::Int, "Approving reviews the revert PR waits for.").default("0"),
    input("history-fallback", BOOL,
        "When the revert conflicts, roll apps without auto-sync back through Argo CD history.").default("false"),
    input("merge-sha", Kind::Text, "Merge commit to revert (standalone rollback)."),
    input("pr-number", Kind::Int, "Merged PR to revert (standalone rollback)."),
    input("prometheus-url", Kind::Url, "Prometheus URL for the metrics gate; guard needs it unless alert is set.").required(&[Verify]),
    input("prometheus-token", Kind::Text, "Bearer token for Prometheus.").secret(),
    input("query", Kind::Lines,
        "PromQL queries, one a line, optionally named: `errors: sum(rate(...))`; guard needs them unless alert is set.").required(&[Verify]),
    input("success-condition", Kind::Text, "Condition over result that passes a measurement, e.g. result >= 0.99."),
    input("failure-condition", Kind::Text, "Condition over result that fails a measurement, e.g. result > 0.05."),
    input("initial-delay", DURATION, "Wait before the first measurement.").default("0s"),
    input("interval", DURATION, "Time between measurements.").default("30s"),
    input("count", Kind::Int, "Number of measurements.").default("3"),
    input("failure-limit", Kind::Int, "Failed measurements tolerated before the gate fails.").default("0"),
    input("inconclusive-limit", Kind::Int, "Inconclusive measurements tolerated before the gate fails.").default("0"),
    input("no-data", Kind::Choice(&["fail", "pass", "inconclusive"]),
        "What an empty query result counts as: fail, pass or inconclusive.").default("fail"),
    input("rollback-window", DURATION, "guard: roll back only a promotion younger than this.").default("1h"),
    input("grace", DURATION, "status: how long an app may lag the base branch head before it fails.").default("5m"),
    input("alert", Kind::Text,
        "guard: an alert as JSON, e.g. toJSON(github.event.client_payload) of a repository_dispatch; a firing alert counts as a failed gate, a resolved one as nothing to do."),
    input("dry-run", BOOL, "Clone and edit, print the diff and the plan, change nothing remote.").default("false"),
    input("job-status", Kind::Choice(&["success", "failure", "cancelled"]),
        "Leave unset: the job's status as the runner evaluates it for each step, so the post step tells a cancelled job from a failed one.")
        .action_default("${{ job.status }}"),
];

/// One output: its name and description.
#[derive(Debug, Clone, Copy)]
pub struct OutputDef {
    /// The output name.
    pub name: &'static str,
    /// What it holds.
    pub description: &'static str,
}

/// Every output (DESIGN.md §1a).
#[rustfmt::skip]
pub const OUTPUTS: &[OutputDef] = &[
    OutputDef { name: "changed", description: "true when the values changed and a PR was opened." },
    OutputDef { name: "pr-number", description: "Number of the promotion PR." },
    OutputDef { name: "pr-url", description: "URL of the promotion PR." },
    OutputDef { name: "pr-operation", description: "What happened to the PR: created, updated (a re-run took over its own PR) or none (nothing to promote, or a dry run)." },
    OutputDef { name: "head-branch", description: "The promotion's branch." },
    OutputDef { name: "head-sha", description: "The commit pushed to the promotion's branch." },
    OutputDef { name: "merge-sha", description: "Commit the PR was merged as." },
    OutputDef { name: "synced-revision", description: "Revision the apps were synced to." },
    OutputDef { name: "health", description: "Health of the apps after the wait, e.g. Healthy." },
    OutputDef { name: "apps", description: "JSON list of the apps synced, with revision and health." },
    OutputDef { name: "revert-sha", description: "Commit that reverted the promotion, after a rollback." },
    OutputDef { name: "revert-pr-number", description: "Number of the revert PR, after a rollback." },
    OutputDef { name: "revert-pr-url", description: "URL of the revert PR, after a rollback." },
    OutputDef { name: "rolled-back", description: "true when the promotion was rolled back." },
    OutputDef { name: "verification", description: "Verdict of the metrics gate: successful, failed or inconclusive (Argo Rollouts' analysis phases)." },
    OutputDef { name: "error-type", description: "When the step fails: the failure's type as failure-strategy names it (config, timeout, health, ...), for a later step's if:." },
];

/// The definition of an input by name.
pub fn input_def(name: &str) -> Option<&'static InputDef> {
    INPUTS.iter().find(|d| d.name == name)
}
