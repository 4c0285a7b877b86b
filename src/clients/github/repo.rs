//! Repository operations: the default branch, branch deletion, a user's permission, the base's
//! required checks and the checks on a commit.

use super::gate::Check;
use super::{GitHub, GitHubError};
use http::Method;
use octocrab::models::checks::ListCheckRuns;
use octocrab::models::pulls::Review;
use serde_json::Value;
use std::collections::HashMap;

impl GitHub {
    /// The repository's default branch.
    ///
    /// # Errors
    /// Authorization when the token cannot see the repo (404), as every call.
    pub async fn default_branch(&self) -> Result<String, GitHubError> {
        let v: Value = self.get(&self.path("")).await?;
        v["default_branch"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| GitHubError::Decode {
                method: Method::GET,
                path: self.path(""),
                detail: "no default_branch".into(),
            })
    }

    /// Deletes our branch; a branch already gone (404/422) is fine.
    pub async fn delete_branch(&self, branch: &str) -> Result<(), GitHubError> {
        match self
            .idempotent(
                Method::DELETE,
                &self.path(&format!("/git/refs/heads/{branch}")),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(GitHubError::Api {
                status: 404 | 422, ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The commit branch `branch` points at now, with its message (`GET /git/ref/heads/{b}`: the
    /// ref itself, not a PR's view of it, which lags behind a push); `None` for a branch that is
    /// gone.
    ///
    /// # Errors
    /// Any API error but 404.
    pub async fn branch_head(&self, branch: &str) -> Result<Option<(String, String)>, GitHubError> {
        let rf = match self
            .get::<Value>(&self.path(&format!("/git/ref/heads/{branch}")))
            .await
        {
            Ok(r) => r,
            Err(GitHubError::Api { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let sha = rf["object"]["sha"].as_str().unwrap_or_default().to_string();
        let c: Value = self.get(&self.path(&format!("/commits/{sha}"))).await?;
        let message = c["commit"]["message"].as_str().unwrap_or_default();
        Ok(Some((sha, message.to_string())))
    }

    /// `user`'s permission on the repo: admin, maintain, write, triage, read or none.
    pub async fn permission(&self, user: &str) -> Result<String, GitHubError> {
        match self
            .get::<Value>(&self.path(&format!("/collaborators/{user}/permission")))
            .await
        {
            Ok(v) => Ok(v["permission"].as_str().unwrap_or("none").to_string()),
            Err(GitHubError::Api { status: 404, .. }) => Ok("none".into()),
            Err(e) => Err(e),
        }
    }

    /// Whether the author of `review` may approve: admin, maintain or write. When the token may
    /// not read permissions (403), the review's author association stands in for them.
    pub(super) async fn writer(
        &self,
        review: &Review,
        user: &str,
        cache: &mut HashMap<String, bool>,
    ) -> Result<bool, GitHubError> {
        use octocrab::models::AuthorAssociation as A;
        if let Some(w) = cache.get(user) {
            return Ok(*w);
        }
        let w = match self.permission(user).await {
            Ok(p) => matches!(p.as_str(), "admin" | "maintain" | "write"),
            Err(GitHubError::Api { status: 403, .. }) => matches!(
                review.author_association,
                Some(A::Owner | A::Member | A::Collaborator)
            ),
            Err(e) => return Err(e),
        };
        cache.insert(user.to_string(), w);
        Ok(w)
    }

    /// Required status check contexts on the base branch, from what a token without
    /// administration may read: the branch's protection summary (`GET /branches/{b}`) and the
    /// rules of the rulesets on it (`GET /rules/branches/{b}`, metadata: read). The classic
    /// protection endpoint is not used: it answers 403 to most tokens, and that is no "none".
    pub(super) async fn required_contexts(
        &self,
        base: &str,
        progress: &dyn Fn(&str),
    ) -> Vec<String> {
        let mut contexts: Vec<String> = Vec::new();
        let mut add = |c: &str| {
            if !c.is_empty() && !contexts.iter().any(|x| x == c) {
                contexts.push(c.to_string());
            }
        };
        let branch = self
            .get::<Value>(&self.path(&format!("/branches/{base}")))
            .await;
        if let Ok(b) = &branch {
            let rsc = &b["protection"]["required_status_checks"];
            for c in rsc["contexts"].as_array().into_iter().flatten() {
                add(c.as_str().unwrap_or_default());
            }
            for c in rsc["checks"].as_array().into_iter().flatten() {
                add(c["context"].as_str().unwrap_or_default());
            }
        }
        let rules = self.branch_rules(base).await;
        if let Ok(rules) = &rules {
            for r in rules
                .iter()
                .filter(|r| r["type"] == "required_status_checks")
            {
                let checks = r["parameters"]["required_status_checks"].as_array();
                for c in checks.into_iter().flatten() {
                    add(c["context"].as_str().unwrap_or_default());
                }
            }
        }
        if let (Err(e), _) | (_, Err(e)) = (&branch, &rules) {
            progress(&format!(
                "warning: cannot read the required checks of {base} ({e}); waiting for the checks that report and for GitHub's mergeable_state"
            ));
        }
        contexts
    }

    /// The rules of every active ruleset on branch `base` (`GET /rules/branches/{b}`, readable
    /// with metadata: read), as GitHub lists them (`repository-rule-detailed`).
    ///
    /// # Errors
    /// Any API error (a token that may not read them gets 403 or 404).
    pub async fn branch_rules(&self, base: &str) -> Result<Vec<Value>, GitHubError> {
        self.get_all(&self.path(&format!("/rules/branches/{base}")))
            .await
    }

    /// The statuses and check runs on `sha`, as one list for the gate to judge, and the
    /// permissions the token lacks to read them (`statuses`, `checks`): GitHub answers 403
    /// "Resource not accessible by integration" to a workflow token whose `permissions:` leave
    /// them out, and that part of the list is then empty.
    ///
    /// # Errors
    /// Any other API error.
    pub(super) async fn checks(
        &self,
        sha: &str,
    ) -> Result<(Vec<Check>, Vec<&'static str>), GitHubError> {
        let mut denied = Vec::new();
        let combined: Value = match self
            .get(&self.path(&format!("/commits/{sha}/status")))
            .await
        {
            Err(GitHubError::Api { status: 403, .. }) => {
                denied.push("statuses");
                Value::Null
            }
            other => other?,
        };
        let runs: ListCheckRuns = match self
            .get(&self.path(&format!("/commits/{sha}/check-runs?per_page=100")))
            .await
        {
            Err(GitHubError::Api { status: 403, .. }) => {
                denied.push("checks");
                serde_json::from_value(serde_json::json!({"total_count": 0, "check_runs": []}))
                    .expect("an empty list of check runs")
            }
            other => other?,
        };
        Ok((Check::all(&combined, &runs), denied))
    }
}
