//! Pull request operations: find, open or reuse, read, merge (read back before any resend),
//! comment and close.

use super::error::is_rule_block;
use super::transport::decode;
use super::{Comment, GitHub, GitHubError, Merge, NewPr, PrInfo, PrRef};
use crate::base::MergeMethod;
use chrono::{DateTime, Utc};
use http::Method;
use octocrab::models::pulls::PullRequest;
use serde_json::{json, Value};

/// Whether `s` is a full hex commit SHA (SHA-1 or SHA-256).
fn looks_like_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl GitHub {
    /// The PR whose head is our branch `head`, in `state` (open, closed, all); the newest one.
    pub async fn find_pr_by_head(
        &self,
        head: &str,
        state: &str,
    ) -> Result<Option<PrInfo>, GitHubError> {
        let path = self.path(&format!(
            "/pulls?head={}:{head}&state={state}&per_page=100",
            self.owner
        ));
        let prs: Vec<PullRequest> = self.get(&path).await?;
        Ok(prs.iter().map(PrInfo::from_model).max_by_key(|p| p.number))
    }

    /// Opens the PR, or takes over the open PR for the same head (a re-run), then applies labels,
    /// reviewers and assignees. Reviewers GitHub refuses (not collaborators, the author) become
    /// warnings rather than failures.
    ///
    /// # Errors
    /// Any API error; a create that got no answer is read back before it is sent again.
    pub async fn open_or_reuse_pr(&self, new: &NewPr) -> Result<PrRef, GitHubError> {
        let mut pr = None;
        if let Some(p) = self.find_pr_by_head(&new.head, "open").await? {
            pr = Some((p.number, p.url, p.head_sha, false));
        }
        let body = json!({"title": new.title, "head": new.head, "base": new.base, "body": new.body, "draft": new.draft});
        let path = self.path("/pulls");
        let mut tries = 0;
        while pr.is_none() {
            tries += 1;
            match self.write_once(Method::POST, &path, Some(&body)).await {
                Ok(a) => {
                    let p: PullRequest = decode(&Method::POST, &path, &a.body)?;
                    let i = PrInfo::from_model(&p);
                    pr = Some((i.number, i.url, i.head_sha, true));
                }
                Err(e) => {
                    let exists = matches!(&e, GitHubError::Api { status: 422, message, .. } if message.contains("already exists"));
                    if !(exists || e.retryable()) {
                        return Err(e);
                    }
                    // Did the create happen anyway (lost answer) or race with another run?
                    match self.find_pr_by_head(&new.head, "open").await? {
                        Some(p) => pr = Some((p.number, p.url, p.head_sha, !exists)),
                        None if tries < 3 && !exists => {
                            tokio::time::sleep(self.pause(&e, tries)).await
                        }
                        None => return Err(e),
                    }
                }
            }
        }
        let (number, url, found, created) = pr.expect("set above");
        // A PR taken over after our force-push may still show the head before it.
        let head_sha = new.pushed.clone().unwrap_or(found);
        let mut warnings = Vec::new();
        if !new.labels.is_empty() {
            let p = self.path(&format!("/issues/{number}/labels"));
            self.idempotent(Method::POST, &p, Some(&json!({"labels": new.labels})))
                .await?;
        }
        if !new.reviewers.is_empty() || !new.team_reviewers.is_empty() {
            let p = self.path(&format!("/pulls/{number}/requested_reviewers"));
            let mut body = json!({"reviewers": new.reviewers});
            if !new.team_reviewers.is_empty() {
                body["team_reviewers"] = json!(new.team_reviewers);
            }
            match self.idempotent(Method::POST, &p, Some(&body)).await {
                Err(GitHubError::Api {
                    status: 422,
                    message,
                    ..
                }) => warnings.push(format!(
                    "reviewers {:?} and teams {:?} not requested: {message}",
                    new.reviewers, new.team_reviewers
                )),
                other => {
                    other?;
                }
            }
        }
        if !new.assignees.is_empty() {
            let p = self.path(&format!("/issues/{number}/assignees"));
            self.idempotent(Method::POST, &p, Some(&json!({"assignees": new.assignees})))
                .await?;
        }
        Ok(PrRef {
            number,
            url,
            head_sha,
            created,
            warnings,
        })
    }

    /// The PR as GitHub reports it now (conditional GET: an unchanged PR costs no quota).
    pub async fn pr(&self, number: u64) -> Result<PrInfo, GitHubError> {
        let p: PullRequest = self.get(&self.path(&format!("/pulls/{number}"))).await?;
        Ok(PrInfo::from_model(&p))
    }

    /// Merges PR `number` with `method` if its head is still `head_sha`. A merge whose answer was
    /// lost is read back (the PR shows `merged`) before it is sent again, so it never merges twice.
    /// For a rebase merge, `commits` lists every replayed commit, oldest first.
    ///
    /// # Errors
    /// Errors other than the [`Merge`] outcomes (authorization, validation, connectivity after
    /// read-back).
    pub async fn merge(
        &self,
        number: u64,
        method: MergeMethod,
        head_sha: &str,
    ) -> Result<Merge, GitHubError> {
        self.merge_with(number, method, head_sha, None).await
    }

    /// [`GitHub::merge`] with the merge or squash commit's title and message set, so trailers
    /// reach the base whatever the repo's default squash message is (rebase merges ignore it).
    ///
    /// # Errors
    /// As [`GitHub::merge`].
    pub async fn merge_with(
        &self,
        number: u64,
        method: MergeMethod,
        head_sha: &str,
        commit: Option<(&str, &str)>,
    ) -> Result<Merge, GitHubError> {
        let path = self.path(&format!("/pulls/{number}/merge"));
        let mut body = json!({"merge_method": method.as_str(), "sha": head_sha});
        if let Some((title, message)) = commit {
            body["commit_title"] = json!(title);
            body["commit_message"] = json!(message);
        }
        let mut tries = 0;
        loop {
            tries += 1;
            match self.write_once(Method::PUT, &path, Some(&body)).await {
                // The answer names the merge (or squash) commit: no need to read the PR back.
                // A rebase merge still reads it for the number of replayed commits.
                Ok(a) if method != MergeMethod::Rebase => {
                    let answer: Value = serde_json::from_slice(&a.body).unwrap_or_default();
                    if let (Some(true), Some(sha)) =
                        (answer["merged"].as_bool(), answer["sha"].as_str())
                    {
                        if looks_like_sha(sha) {
                            let sha = sha.to_string();
                            return Ok(Merge::Merged {
                                commits: vec![sha.clone()],
                                sha,
                            });
                        }
                    }
                    break;
                }
                Ok(_) => break,
                Err(GitHubError::Api {
                    status: 405,
                    message,
                    ..
                }) => {
                    return Ok(if message.contains("Base branch was modified") {
                        Merge::BaseModified
                    } else if is_rule_block(&message) {
                        Merge::Blocked(message)
                    } else {
                        Merge::NotMergeable(message)
                    })
                }
                // GitHub answers 409 for two things: a strict rule wanting the base merged in
                // first, and a head that is not the `sha` we sent (issue #13).
                Err(GitHubError::Api {
                    status: 409,
                    message,
                    ..
                }) => {
                    return Ok(if message.contains("out of date") {
                        Merge::OutOfDate
                    } else {
                        Merge::HeadModified
                    })
                }
                Err(e) if e.retryable() => {
                    // The merge may have happened: read back before sending it again.
                    let info = self.pr(number).await?;
                    if info.merged {
                        break;
                    }
                    if tries >= 3 || info.state != "open" {
                        return Err(e);
                    }
                    tokio::time::sleep(self.pause(&e, tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.merged_commits(number, method).await
    }

    /// Asks GitHub to merge the base into the PR's head (`PUT /pulls/{n}/update-branch`), only if
    /// the head is still `expected_head`. GitHub answers 202 and pushes its merge commit later.
    ///
    /// # Errors
    /// 422 when the head moved or the merge conflicts, with GitHub's message; others as any call.
    /// Not resent blindly: a lost answer is a connectivity error, and the caller reads the head.
    pub async fn update_branch(&self, number: u64, expected_head: &str) -> Result<(), GitHubError> {
        let path = self.path(&format!("/pulls/{number}/update-branch"));
        let body = json!({"expected_head_sha": expected_head});
        self.write_once(Method::PUT, &path, Some(&body)).await?;
        Ok(())
    }

    /// The first parents of commit `sha`, as GitHub lists them.
    pub async fn parents(&self, sha: &str) -> Result<Vec<String>, GitHubError> {
        let c: Value = self.get(&self.path(&format!("/commits/{sha}"))).await?;
        Ok(c["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["sha"].as_str().map(str::to_string))
            .collect())
    }

    /// Reads the merged PR for `merge_commit_sha` and, for rebase, walks back over the replayed commits.
    async fn merged_commits(&self, number: u64, method: MergeMethod) -> Result<Merge, GitHubError> {
        let info = self.pr(number).await?;
        let sha = info
            .merge_commit_sha
            .clone()
            .ok_or_else(|| GitHubError::Decode {
                method: Method::GET,
                path: self.path(&format!("/pulls/{number}")),
                detail: "merged PR without merge_commit_sha".into(),
            })?;
        let mut commits = vec![sha.clone()];
        if method == MergeMethod::Rebase {
            let n = info.commits.unwrap_or(1);
            let mut cur = sha.clone();
            for _ in 1..n {
                let c: Value = self.get(&self.path(&format!("/commits/{cur}"))).await?;
                match c["parents"][0]["sha"].as_str() {
                    Some(p) => {
                        cur = p.to_string();
                        commits.push(cur.clone());
                    }
                    None => break,
                }
            }
            commits.reverse();
        }
        Ok(Merge::Merged { sha, commits })
    }

    /// Comments why, then closes the PR (closing twice is harmless).
    pub async fn close_pr(&self, number: u64, comment: &str) -> Result<(), GitHubError> {
        if !comment.is_empty() {
            self.comment(number, comment).await?;
        }
        let path = self.path(&format!("/pulls/{number}"));
        self.idempotent(Method::PATCH, &path, Some(&json!({"state": "closed"})))
            .await?;
        Ok(())
    }

    /// Adds an issue comment. A comment whose answer was lost is looked for (same body, written
    /// since we sent it) before it is sent again, so it is not written twice.
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), GitHubError> {
        let path = self.path(&format!("/issues/{number}/comments"));
        // GitHub's clock and ours may differ a little; look back a minute.
        let sent = Utc::now() - chrono::Duration::seconds(60);
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .write_once(Method::POST, &path, Some(&json!({"body": body})))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.retryable() && tries < 3 => {
                    let written = self.comments_since(number, sent).await?;
                    if written.iter().any(|c| c.body == body) {
                        return Ok(());
                    }
                    tokio::time::sleep(self.pause(&e, tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Comments written at or after `since`, oldest first.
    pub async fn comments_since(
        &self,
        number: u64,
        since: DateTime<Utc>,
    ) -> Result<Vec<Comment>, GitHubError> {
        let since = since.format("%Y-%m-%dT%H:%M:%SZ");
        let list: Vec<octocrab::models::issues::Comment> = self
            .get_all(&self.path(&format!("/issues/{number}/comments?since={since}")))
            .await?;
        Ok(list
            .into_iter()
            .map(|c| Comment {
                user: c.user.login,
                body: c.body.unwrap_or_default(),
                created_at: c.created_at,
            })
            .collect())
    }

    /// The PRs that merged commit `sha` (or contain it while open), as GitHub lists them.
    ///
    /// # Errors
    /// Any API error; a SHA GitHub does not know answers 422.
    pub async fn prs_for_commit(&self, sha: &str) -> Result<Vec<PrInfo>, GitHubError> {
        let prs: Vec<PullRequest> = self
            .get_all(&self.path(&format!("/commits/{sha}/pulls")))
            .await?;
        Ok(prs.iter().map(PrInfo::from_model).collect())
    }
}
