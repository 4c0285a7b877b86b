//! The gate before a merge: approvals, checks and a mergeable state.

use super::{Gate, GitHub, GitHubError, PrInfo, PrRef};
use octocrab::models::pulls::{Review, ReviewState};
use std::collections::HashMap;
use std::time::{Duration, Instant};

impl GitHub {
    /// Waits until the PR may be merged: `required_approvals` distinct writers whose latest decisive
    /// review approves the current head, no writer requesting changes, checks green (when asked),
    /// and a `mergeable_state` that allows a try (DESIGN.md §2 step 7). Prints a progress line
    /// whenever the state changes and at least every 15 s. A PR merged meanwhile is returned as is.
    ///
    /// # Errors
    /// `Approval` for changes requested or approvals missing at the deadline; `CheckFailed`;
    /// `Conflict` for a dirty or closed PR; `WaitTimeout` for checks or mergeability still pending.
    pub async fn wait_ready(
        &self,
        pr: &PrRef,
        gate: &Gate,
        progress: &dyn Fn(&str),
    ) -> Result<PrInfo, GitHubError> {
        let started = Instant::now();
        let mut last_line = String::new();
        let mut last_at = Instant::now();
        let mut writers = HashMap::new();
        let mut missing_since: Option<Instant> = None;
        let mut warned = false;
        let required = self.required_contexts(pr, progress).await;
        loop {
            let info = self.pr(pr.number).await?;
            if info.merged {
                return Ok(info);
            }
            if info.state != "open" {
                return Err(GitHubError::Conflict {
                    number: pr.number,
                    reason: "was closed before it could be merged".into(),
                });
            }
            // Approvals: the latest decisive review of each writer, on the current head.
            let mut approved = 0u32;
            // Reviews are read even with no approvals required: a writer's CHANGES_REQUESTED blocks.
            {
                let reviews: Vec<Review> = self
                    .get_all(&self.path(&format!("/pulls/{}/reviews", pr.number)))
                    .await?;
                let mut latest: HashMap<String, &Review> = HashMap::new();
                for r in &reviews {
                    let decisive = matches!(
                        r.state,
                        Some(
                            ReviewState::Approved
                                | ReviewState::ChangesRequested
                                | ReviewState::Dismissed
                        )
                    );
                    if let (true, Some(u)) = (decisive, &r.user) {
                        latest.insert(u.login.clone(), r);
                    }
                }
                let mut users: Vec<_> = latest.into_iter().collect();
                users.sort_by(|a, b| a.0.cmp(&b.0));
                for (user, r) in users {
                    if !self.writer(r, &user, &mut writers).await? {
                        continue;
                    }
                    match r.state {
                        Some(ReviewState::ChangesRequested) => {
                            return Err(GitHubError::Approval {
                                number: pr.number,
                                reason: format!("{user} requested changes"),
                            })
                        }
                        Some(ReviewState::Approved)
                            if r.commit_id.as_deref() == Some(info.head_sha.as_str()) =>
                        {
                            approved += 1
                        }
                        _ => {}
                    }
                }
            }
            let approvals_ok = approved >= gate.required_approvals;
            // Checks: statuses and check runs on the head; required contexts that never reported.
            let mut pending: Vec<String> = Vec::new();
            if gate.wait_for_checks {
                pending = self
                    .checks_pending(pr.number, &info.head_sha, &required)
                    .await?;
                let none_reported =
                    !required.is_empty() && required.iter().all(|c| pending.contains(c));
                if none_reported && info.user == "github-actions[bot]" {
                    let since = *missing_since.get_or_insert_with(Instant::now);
                    // A minute is plenty for a workflow to start; short gates warn sooner.
                    let grace = Duration::from_secs(60).min(gate.approval_timeout / 4);
                    if !warned && since.elapsed() >= grace {
                        warned = true;
                        progress(&format!(
                            "warning: required checks {required:?} have not started on PR #{}: a PR opened with GITHUB_TOKEN does not trigger workflows; use an app token or a PAT",
                            pr.number
                        ));
                    }
                }
            }
            let state = info.mergeable_state.as_str();
            if state == "dirty" || info.mergeable == Some(false) {
                return Err(GitHubError::Conflict {
                    number: pr.number,
                    reason: "has conflicts with its base (mergeable_state dirty)".into(),
                });
            }
            let known = info.mergeable.is_some() && !matches!(state, "unknown" | "draft");
            if approvals_ok && pending.is_empty() && known {
                // clean/unstable/has_hooks merge; blocked/behind try, the token may bypass.
                return Ok(info);
            }
            let elapsed = started.elapsed();
            let remaining = gate.approval_timeout.saturating_sub(elapsed);
            let line = format!(
                "PR #{}: approvals {approved}/{}, checks {}, mergeable_state {state}",
                pr.number,
                gate.required_approvals,
                if pending.is_empty() {
                    "done".to_string()
                } else {
                    format!("pending ({})", pending.join(", "))
                },
            );
            if line != last_line || last_at.elapsed() >= Duration::from_secs(15) {
                progress(&format!(
                    "{line}; {}s elapsed, {}s left",
                    elapsed.as_secs(),
                    remaining.as_secs()
                ));
                last_line = line;
                last_at = Instant::now();
            }
            if remaining.is_zero() {
                if !approvals_ok {
                    return Err(GitHubError::Approval {
                        number: pr.number,
                        reason: format!(
                            "{approved} of {} required approvals after {:?}",
                            gate.required_approvals, gate.approval_timeout
                        ),
                    });
                }
                let what = if pending.is_empty() {
                    format!("mergeable_state {state}")
                } else {
                    format!("checks {}", pending.join(", "))
                };
                return Err(GitHubError::WaitTimeout {
                    number: pr.number,
                    waited: elapsed,
                    what,
                });
            }
            tokio::time::sleep(gate.poll.min(remaining)).await;
        }
    }
}
