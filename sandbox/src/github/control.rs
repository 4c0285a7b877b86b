//! Test-only control of the GitHub emulator, as Rust methods and as HTTP routes under
//! `/_sandbox/github` (documented in sandbox/README.md): what people and CI do on real GitHub.

use super::{error, now, routes, CheckRun, CommitStatus, GitHub, MergeMethods, Protection, Review};
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

/// Which commit a check run or status is set on.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A commit SHA.
    Sha(String),
    /// The head commit of pull request n, at the time of the call.
    Pr(u64),
}

impl GitHub {
    fn target_sha(&self, repo: &str, t: &Target) -> Option<String> {
        match t {
            Target::Sha(s) => Some(s.clone()),
            Target::Pr(n) => {
                let st = self.state.lock().unwrap();
                let p = st.pulls.iter().find(|p| p.repo == repo && p.number == *n)?;
                let (open, branch, frozen) = (p.open, p.head_ref.clone(), p.head_sha.clone());
                drop(st);
                let live = self
                    .world
                    .open(repo)
                    .ok()
                    .and_then(|r| super::git::branch_sha(&r, &branch));
                Some(if open { live.unwrap_or(frozen) } else { frozen })
            }
        }
    }

    /// The head SHA of PR `n` as GitHub reports it now (live while open).
    pub fn pr_head(&self, repo: &str, n: u64) -> Option<String> {
        self.target_sha(repo, &Target::Pr(n))
    }

    /// Adds a review by `user` (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) on `commit_id`, the
    /// PR head when `None`. Returns the review id, or `None` for an unknown PR.
    pub fn add_review(
        &self,
        repo: &str,
        n: u64,
        user: &str,
        state: &str,
        commit_id: Option<&str>,
    ) -> Option<u64> {
        let commit_id = match commit_id {
            Some(c) => c.to_string(),
            None => self.pr_head(repo, n)?,
        };
        let mut st = self.state.lock().unwrap();
        let id = st.id();
        st.reviews.push(Review {
            id,
            repo: repo.into(),
            number: n,
            user: user.into(),
            state: state.into(),
            body: String::new(),
            commit_id,
            submitted_at: now(),
        });
        if let Some(p) = st
            .pulls
            .iter_mut()
            .find(|p| p.repo == repo && p.number == n)
        {
            p.requested_reviewers.retain(|r| r != user);
        }
        Some(id)
    }

    /// Adds an issue comment on PR `n` as `user`.
    pub fn add_comment(&self, repo: &str, n: u64, user: &str, body: &str) -> bool {
        routes::add_comment(self, repo, n, user, body).is_ok()
    }

    /// Sets `user`'s permission on `repo`: admin, maintain, write, triage, read or none (default write).
    pub fn set_permission(&self, repo: &str, user: &str, permission: &str) {
        let mut st = self.state.lock().unwrap();
        st.permissions
            .insert((repo.into(), user.into()), permission.into());
    }

    /// Sets a check run `name` on the target: `status` queued/in_progress/completed, `conclusion`
    /// success/failure/neutral/cancelled/skipped/timed_out/action_required when completed.
    pub fn set_check_run(
        &self,
        repo: &str,
        target: &Target,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) -> bool {
        let Some(sha) = self.target_sha(repo, target) else {
            return false;
        };
        let c = CheckRun {
            id: 0,
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(str::to_string),
            started_at: String::new(),
        };
        routes::set_check(self, repo, &sha, c);
        true
    }

    /// Sets a commit status `context` to `state` (error, failure, pending, success) on the target.
    pub fn set_status(&self, repo: &str, target: &Target, context: &str, state: &str) -> bool {
        let Some(sha) = self.target_sha(repo, target) else {
            return false;
        };
        let s = CommitStatus {
            id: 0,
            context: context.into(),
            state: state.into(),
            description: None,
            target_url: None,
            created_at: String::new(),
        };
        routes::set_status(self, repo, &sha, s);
        true
    }

    /// Protects `branch` (or removes the protection with `None`).
    pub fn set_protection(&self, repo: &str, branch: &str, p: Option<Protection>) {
        let mut st = self.state.lock().unwrap();
        let key = (repo.to_string(), branch.to_string());
        match p {
            Some(p) => st.protection.insert(key, p),
            None => st.protection.remove(&key),
        };
    }

    /// Adds a repository ruleset targeting `branch` with these requirements (`None` removes it).
    pub fn set_ruleset(&self, repo: &str, branch: &str, rules: Option<Protection>) {
        let mut st = self.state.lock().unwrap();
        let key = (repo.to_string(), branch.to_string());
        match rules {
            Some(r) => st.rulesets.insert(key, r),
            None => st.rulesets.remove(&key),
        };
    }

    /// Gives the repository's organization a team `slug` with access to it: it may then be asked
    /// to review.
    pub fn add_team(&self, slug: &str) {
        self.state.lock().unwrap().teams.push(slug.to_string());
    }

    /// Sets the repository's "Allow GitHub Actions to create and approve pull requests"; off, the
    /// token gets GitHub's 403 on opening a PR.
    pub fn set_actions_may_open_prs(&self, allowed: bool) {
        self.state.lock().unwrap().actions_may_open_prs = allowed;
    }

    /// Whether the token may read classic branch protection (administration: read).
    pub fn set_admin_token(&self, admin: bool) {
        self.state.lock().unwrap().admin_token = admin;
    }

    /// Sets which merge methods `repo` allows.
    pub fn set_merge_methods(&self, repo: &str, m: MergeMethods) {
        self.state.lock().unwrap().methods.insert(repo.into(), m);
    }

    /// How long a PR's `head.sha` keeps naming the commit before a push to its branch (default
    /// zero): GitHub updates the PR asynchronously.
    pub fn set_head_delay(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().head_delay = delay;
    }

    /// Takes repository permission `name` (`checks`, `statuses`) from the token, or gives it back:
    /// without it GitHub answers the routes that need it 403 "Resource not accessible by
    /// integration", as a workflow's `permissions:` block that leaves it out does.
    pub fn set_token_permission(&self, name: &str, granted: bool) {
        let mut st = self.state.lock().unwrap();
        st.denied.retain(|d| d != name);
        if !granted {
            st.denied.push(name.to_string());
        }
    }

    /// How many reads of a PR answer `mergeable: null` after its head or base moves (default 1).
    pub fn set_mergeable_reads(&self, n: u32) {
        self.state.lock().unwrap().mergeable_reads = n;
    }
}

#[derive(Deserialize)]
struct ReviewReq {
    user: String,
    state: String,
    commit_id: Option<String>,
}

#[derive(Deserialize)]
struct CommentReq {
    user: String,
    body: String,
}

#[derive(Deserialize)]
struct PermissionReq {
    permission: String,
}

#[derive(Deserialize)]
struct CheckReq {
    target: Target,
    name: String,
    status: String,
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct StatusReq {
    target: Target,
    context: String,
    state: String,
}

#[derive(Deserialize)]
struct HeadDelayReq {
    millis: u64,
}

#[derive(Deserialize)]
struct ReadsReq {
    reads: u32,
}

type G = S<Arc<GitHub>>;
type P3 = Path<(String, String, String)>;

fn done(ok: bool) -> Response {
    if ok {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(404, "Not Found")
    }
}

/// The control routes (see the module doc).
pub(super) fn routes(gh: Arc<GitHub>) -> axum::Router {
    axum::Router::new()
        .route(
            "/repos/{o}/{r}/pulls/{n}/reviews",
            post(|S(gh): G, Path((o, r, n)): Path<(String, String, u64)>, Json(q): Json<ReviewReq>| async move {
                if !matches!(q.state.as_str(), "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED") {
                    return error(422, "state must be APPROVED, CHANGES_REQUESTED or COMMENTED");
                }
                match gh.add_review(&format!("{o}/{r}"), n, &q.user, &q.state, q.commit_id.as_deref()) {
                    Some(id) => (StatusCode::CREATED, Json(serde_json::json!({"id": id}))).into_response(),
                    None => error(404, "Not Found"),
                }
            }),
        )
        .route(
            "/repos/{o}/{r}/pulls/{n}/comments",
            post(|S(gh): G, Path((o, r, n)): Path<(String, String, u64)>, Json(q): Json<CommentReq>| async move {
                done(gh.add_comment(&format!("{o}/{r}"), n, &q.user, &q.body))
            }),
        )
        .route(
            "/repos/{o}/{r}/permissions/{u}",
            put(|S(gh): G, Path((o, r, u)): P3, Json(q): Json<PermissionReq>| async move {
                gh.set_permission(&format!("{o}/{r}"), &u, &q.permission);
                done(true)
            }),
        )
        .route(
            "/repos/{o}/{r}/check-runs",
            post(|S(gh): G, Path((o, r)): Path<(String, String)>, Json(q): Json<CheckReq>| async move {
                done(gh.set_check_run(&format!("{o}/{r}"), &q.target, &q.name, &q.status, q.conclusion.as_deref()))
            }),
        )
        .route(
            "/repos/{o}/{r}/statuses",
            post(|S(gh): G, Path((o, r)): Path<(String, String)>, Json(q): Json<StatusReq>| async move {
                done(gh.set_status(&format!("{o}/{r}"), &q.target, &q.context, &q.state))
            }),
        )
        .route(
            "/repos/{o}/{r}/branches/{b}/protection",
            put(|S(gh): G, Path((o, r, b)): P3, Json(p): Json<Protection>| async move {
                gh.set_protection(&format!("{o}/{r}"), &b, Some(p));
                done(true)
            })
            .delete(|S(gh): G, Path((o, r, b)): P3| async move {
                gh.set_protection(&format!("{o}/{r}"), &b, None);
                done(true)
            }),
        )
        .route(
            "/repos/{o}/{r}/rulesets/{b}",
            put(|S(gh): G, Path((o, r, b)): P3, Json(p): Json<Protection>| async move {
                gh.set_ruleset(&format!("{o}/{r}"), &b, Some(p));
                done(true)
            })
            .delete(|S(gh): G, Path((o, r, b)): P3| async move {
                gh.set_ruleset(&format!("{o}/{r}"), &b, None);
                done(true)
            }),
        )
        .route(
            "/token/admin",
            put(|S(gh): G, Json(on): Json<bool>| async move {
                gh.set_admin_token(on);
                done(true)
            }),
        )
        .route(
            "/repos/{o}/{r}/merge-methods",
            put(|S(gh): G, Path((o, r)): Path<(String, String)>, Json(m): Json<MergeMethods>| async move {
                gh.set_merge_methods(&format!("{o}/{r}"), m);
                done(true)
            }),
        )
        .route(
            "/head-delay",
            put(|S(gh): G, Json(q): Json<HeadDelayReq>| async move {
                gh.set_head_delay(std::time::Duration::from_millis(q.millis));
                done(true)
            }),
        )
        .route(
            "/token/permissions",
            put(|S(gh): G, Json(q): Json<std::collections::HashMap<String, String>>| async move {
                for (name, level) in q {
                    gh.set_token_permission(&name, level != "none");
                }
                done(true)
            }),
        )
        .route(
            "/mergeable-reads",
            put(|S(gh): G, Json(q): Json<ReadsReq>| async move {
                gh.set_mergeable_reads(q.reads);
                done(true)
            }),
        )
        .with_state(gh.clone())
        .merge(super::bypass::control_routes(gh.clone()))
        .merge(super::graphql::control_routes(gh))
}

/// What a person looking at a PR on GitHub would see, for tests' assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrView {
    /// PR number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Head branch.
    pub head_ref: String,
    /// Base branch.
    pub base_ref: String,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// The merge commit, once merged.
    pub merge_commit_sha: Option<String>,
    /// Label names.
    pub labels: Vec<String>,
    /// Users asked to review.
    pub requested_reviewers: Vec<String>,
    /// Team slugs asked to review.
    pub requested_teams: Vec<String>,
    /// Issue comments, oldest first, as (user, body).
    pub comments: Vec<(String, String)>,
}

impl GitHub {
    /// Every PR of `repo`, oldest first.
    pub fn prs(&self, repo: &str) -> Vec<PrView> {
        let st = self.state.lock().unwrap();
        st.pulls
            .iter()
            .filter(|p| p.repo == repo)
            .map(|p| PrView {
                number: p.number,
                title: p.title.clone(),
                body: p.body.clone().unwrap_or_default(),
                head_ref: p.head_ref.clone(),
                base_ref: p.base_ref.clone(),
                state: if p.open { "open" } else { "closed" }.to_string(),
                merged: p.merged,
                merge_commit_sha: p.merge_commit_sha.clone(),
                labels: p.labels.clone(),
                requested_reviewers: p.requested_reviewers.clone(),
                requested_teams: p.requested_teams.clone(),
                comments: st
                    .comments
                    .iter()
                    .filter(|c| c.repo == repo && c.number == p.number)
                    .map(|c| (c.user.clone(), c.body.clone()))
                    .collect(),
            })
            .collect()
    }

    /// PR `n` of `repo`.
    pub fn pr_view(&self, repo: &str, n: u64) -> Option<PrView> {
        self.prs(repo).into_iter().find(|p| p.number == n)
    }
}
