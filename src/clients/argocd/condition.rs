//! The wait's condition, pure (STYLE.md #1, with Kargo's rules): is an app Synced at a revision
//! containing the merge, and Healthy?

use super::model::*;
use crate::base::text::short;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// What the app's state says about the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Synced and Healthy at this revision: the merge or a descendant.
    Done(String),
    /// Not there yet, and why.
    Pending(String),
    /// Synced at the target but Degraded: terminal once it lasts past the grace period.
    Degraded(String),
    /// Will not get there (failed operation, terminal condition).
    Failed(String),
    /// Unhealthy for good, with no grace to wait out: an aborted Argo Rollouts rollout.
    Aborted(String),
}

/// What the wait waits for: the merge commit, and which revisions count as containing it.
#[derive(Clone)]
pub struct Target {
    /// The merge commit SHA, for messages.
    pub merge_sha: String,
    /// Whether a revision is the merge or a descendant of it on the base branch (git answers).
    pub contains: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// A rollback through Argo CD history: the app runs an earlier revision while git still holds
    /// the promoted one, so it ends OutOfSync by design, and that is its success.
    pub from_history: bool,
}

impl Target {
    /// A target satisfied only by exactly `sha`.
    pub fn exact(sha: &str) -> Target {
        let want = sha.to_string();
        Target {
            merge_sha: sha.to_string(),
            contains: Arc::new(move |r| r == want),
            from_history: false,
        }
    }

    /// Any revision, Synced and Healthy: a child app that tracks another repo than the merge's
    /// (`merge_sha` is only for messages).
    pub fn any(merge_sha: &str) -> Target {
        Target {
            merge_sha: merge_sha.to_string(),
            contains: Arc::new(|_| true),
            from_history: false,
        }
    }

    /// The revision a rollback through history returns the app to (see [`Target::from_history`]).
    pub fn history(sha: &str) -> Target {
        Target {
            from_history: true,
            ..Target::exact(sha)
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("merge_sha", &self.merge_sha)
            .finish_non_exhaustive()
    }
}

/// Whether `app` runs the target Synced and Healthy (DESIGN.md §2.10, Kargo's rules):
/// the operation Succeeded at a revision `target.contains`, `reconciledAt >= finishedAt` (health
/// older than the sync is not trusted), Synced, Healthy. `ComparisonError`/`InvalidSpecError` and
/// a Failed/Error operation are terminal. `None` (not seen yet) is pending.
pub fn is_synced_healthy_at(app: Option<&Application>, target: &Target) -> Condition {
    let Some(app) = app else {
        return Condition::Pending("application not seen yet".into());
    };
    let st = &app.status;
    if let Some(c) = st
        .conditions
        .iter()
        .find(|c| c.kind == "ComparisonError" || c.kind == "InvalidSpecError")
    {
        // The controller replaces conditions only when it compares again: one left by an earlier
        // revision stays while the sync that fixes it runs (argo-cd controller/state.go). It is
        // terminal once it is about the merge: compared at a revision containing it, or reconciled
        // after our operation started (both on the server's clock).
        if compared_at(app, target) || reconciled_after_ours(app, target) {
            return Condition::Failed(format!("{}: {}", c.kind, c.message));
        }
        if app.operation.is_none() && st.operation_state.is_none() {
            return Condition::Pending(format!(
                "{} from an earlier comparison, waiting for the controller to compare again: {}",
                c.kind, c.message
            ));
        }
    }
    // `operation` is set by the API server on sync and cleared by the controller when the operation
    // ends: while it is set, `operationState` may still describe the previous operation.
    if app.operation.is_some() {
        return Condition::Pending("sync requested, waiting for the controller to run it".into());
    }
    if unchanged_at(app, target) {
        let mut compared = st.sync.revision.iter().chain(st.sync.revisions.iter());
        let rev = compared.find(|r| (target.contains)(r));
        return health_of(st, rev.cloned().unwrap_or_default());
    }
    let Some(op) = &st.operation_state else {
        return Condition::Pending("no sync operation yet".into());
    };
    match op.phase.as_str() {
        "Succeeded" => {}
        "Failed" | "Error" => {
            // An operation that failed at a commit before the merge (e.g. an earlier auto-sync)
            // says nothing about the merge: keep waiting for ours.
            // A multi-source operation also names the chart's version: only commits count.
            let asked: Vec<&str> = operation_revisions(op)
                .into_iter()
                .filter(|r| looks_like_sha(r))
                .collect();
            let earlier = !asked.is_empty() && asked.iter().all(|r| !(target.contains)(r));
            if earlier {
                return Condition::Pending(format!(
                    "an earlier operation {} at {}",
                    op.phase,
                    short(asked[0])
                ));
            }
            let msg = op.message.as_deref().unwrap_or("no message");
            return Condition::Failed(format!("operation {}: {msg}", op.phase));
        }
        phase => return Condition::Pending(format!("operation {phase}")),
    }
    let result = op.sync_result.as_ref();
    let revs: Vec<&str> = result
        .map(|r| {
            r.revision
                .iter()
                .chain(r.revisions.iter())
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    let Some(ran) = revs.iter().find(|r| (target.contains)(r)) else {
        let got = revs
            .iter()
            .find(|r| looks_like_sha(r))
            .or(revs.iter().find(|r| !r.is_empty()))
            .map_or("nothing", |r| short(r));
        return Condition::Pending(format!(
            "last sync ran {got}, not {} yet",
            short(&target.merge_sha)
        ));
    };
    match (st.reconciled_at, op.finished_at) {
        (Some(r), Some(f)) if r >= f => {}
        _ => {
            return Condition::Pending(
                "waiting for the controller to reconcile after the sync".into(),
            )
        }
    }
    if st.sync.status != "Synced" && !target.from_history {
        return Condition::Pending(format!("sync status {}", or_unknown(&st.sync.status)));
    }
    health_of(st, ran.to_string())
}

/// Whether the app was last compared at a revision containing the merge.
fn compared_at(app: &Application, target: &Target) -> bool {
    let st = &app.status.sync;
    st.revision
        .iter()
        .chain(st.revisions.iter())
        .any(|r| (target.contains)(r))
}

/// Whether the controller reconciled the app after an operation of ours (one that asked for or
/// ran a revision containing the merge) started. Strictly after: both times have whole seconds,
/// and a comparison in the second the operation started may be the one before it.
fn reconciled_after_ours(app: &Application, target: &Target) -> bool {
    let st = &app.status;
    let Some(op) = &st.operation_state else {
        return false;
    };
    let ours = operation_revisions(op).iter().any(|r| (target.contains)(r));
    ours && matches!((st.reconciled_at, op.started_at), (Some(r), Some(s)) if r > s)
}

/// Whether the controller compared the app Synced at a revision containing the merge with no
/// operation of ours: the merge left the app's path as it was, so auto-sync skips it (argo-cd
/// controller/appcontroller.go autoSync, "Skipping auto-sync: application status is Synced") and
/// `operationState` stays the previous sync's. Kargo's argocd waiter reads `status.sync` likewise.
pub(super) fn unchanged_at(app: &Application, target: &Target) -> bool {
    let st = &app.status;
    let compared = st
        .sync
        .revision
        .iter()
        .chain(st.sync.revisions.iter())
        .any(|r| (target.contains)(r));
    let running = st
        .operation_state
        .as_ref()
        .is_some_and(|op| matches!(op.phase.as_str(), "Running" | "Terminating"));
    let ours = st
        .operation_state
        .as_ref()
        .is_some_and(|op| operation_revisions(op).iter().any(|r| (target.contains)(r)));
    compared && st.sync.status == "Synced" && !running && !ours
}

/// The verdict from the app's health once it runs the target at `revision`. The reason comes from
/// the resources when the app's own message is empty (as it is in Argo CD 3.0 to 3.5): an Argo
/// Rollouts rollout paused at a canary step shows `Suspended` (a wait, saying so), an aborted one
/// `Degraded` with `RolloutAborted: ...` (argo-rollouts' health check), which no grace mends.
pub(super) fn health_of(st: &ApplicationStatus, revision: String) -> Condition {
    let resource = |health: &str| {
        st.resources.iter().find_map(|r| {
            let h = r.health.as_ref().filter(|h| h.status == health)?;
            Some((r, h.message.clone().unwrap_or_default()))
        })
    };
    let rollout = |health: &str| resource(health).filter(|(r, _)| r.kind == "Rollout");
    match st.health.status.as_str() {
        "Healthy" => Condition::Done(revision),
        "Degraded" => {
            if let Some((r, m)) =
                rollout("Degraded").filter(|(_, m)| m.starts_with("RolloutAborted"))
            {
                return Condition::Aborted(format!("Rollout/{}: {m}", r.name));
            }
            let reason = st
                .health
                .message
                .clone()
                .filter(|m| !m.is_empty())
                .or_else(|| {
                    resource("Degraded").map(|(r, m)| format!("{}/{}: {m}", r.kind, r.name))
                })
                .unwrap_or_else(|| "no message".into());
            Condition::Degraded(format!("Degraded: {reason}"))
        }
        "Suspended" => {
            match rollout("Suspended") {
                Some((r, m)) => Condition::Pending(format!(
                "rollout {} is paused at its step{}; it goes on when promoted (or its pause ends)",
                r.name,
                if m.is_empty() { String::new() } else { format!(" ({m})") }
            )),
                None => Condition::Pending("health Suspended".into()),
            }
        }
        h => Condition::Pending(format!("health {}", or_unknown(h))),
    }
}

/// The revisions an operation synced, or else the ones it was asked for.
pub(super) fn operation_revisions(op: &OperationState) -> Vec<&str> {
    if let Some(r) = &op.sync_result {
        let revs: Vec<&str> = r
            .revision
            .iter()
            .chain(r.revisions.iter())
            .map(String::as_str)
            .collect();
        if !revs.is_empty() {
            return revs;
        }
    }
    let sync = op.operation.as_ref().map(|o| &o["sync"]);
    let mut revs: Vec<&str> = sync
        .and_then(|s| s["revision"].as_str())
        .into_iter()
        .collect();
    if let Some(list) = sync.and_then(|s| s["revisions"].as_array()) {
        revs.extend(list.iter().filter_map(Value::as_str));
    }
    revs.retain(|r| !r.is_empty());
    revs
}

pub(super) fn looks_like_sha(r: &str) -> bool {
    r.len() >= 7 && r.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "Unknown"
    } else {
        s
    }
}

impl AppStatus {
    /// What Argo CD says about `app`; the revision of a multi-source app is the release repo
    /// `repo`'s ([`Application::release_source`]), not the chart's version.
    pub fn of(app: &Application, repo: Option<&str>) -> AppStatus {
        let s = &app.status.sync;
        AppStatus {
            name: app.metadata.name.clone(),
            sync: s.status.clone(),
            revision: app
                .synced_revision(repo)
                .or_else(|| s.revisions.iter().find(|r| looks_like_sha(r)).cloned())
                .unwrap_or_default(),
            health: app.status.health.status.clone(),
        }
    }

    /// Why the app drifts from `head`, or `None` when it is Synced at it and Healthy.
    pub fn drift(&self, head: &str) -> Option<String> {
        let mut why = Vec::new();
        if self.sync != "Synced" {
            why.push(if self.sync.is_empty() {
                "sync status unknown".to_string()
            } else {
                self.sync.clone()
            });
        }
        if self.revision != head {
            why.push(if self.revision.is_empty() {
                "at no revision".to_string()
            } else {
                format!("at {} (head {})", short(&self.revision), short(head))
            });
        }
        if self.health != "Healthy" {
            why.push(if self.health.is_empty() {
                "health unknown".to_string()
            } else {
                self.health.clone()
            });
        }
        (!why.is_empty()).then(|| {
            format!(
                "{}: {}{}",
                self.name,
                why.join(", "),
                if self.health == "Healthy" {
                    ", Healthy"
                } else {
                    ""
                }
            )
        })
    }
}
