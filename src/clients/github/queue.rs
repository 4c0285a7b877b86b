//! The merge queue, through GitHub's GraphQL API: a base whose rules require it answers the REST
//! merge 405 "Changes must be made through the merge queue"; the PR is then enqueued
//! (`enqueuePullRequest`, docs.github.com GraphQL "Mutations") and watched until GitHub merges its
//! merge group (the PR is merged, `mergeCommit.oid` its commit on the base) or removes it from the
//! queue (`RemovedFromMergeQueueEvent.reason` on its timeline). GraphQL sits at
//! `https://api.github.com/graphql`, and on GitHub Enterprise Server at `https://HOST/api/graphql`
//! (docs.github.com, Enterprise Server "Forming calls with GraphQL"). It stops at one PR: the queue's
//! order and its other entries are GitHub's business.

use super::{GitHub, GitHubError};
use http::Method;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// GitHub's message for a REST merge on a base that requires the merge queue.
pub const THROUGH_THE_QUEUE: &str = "Changes must be made through the merge queue";

/// The base the GraphQL path `/graphql` is joined to, from the REST base: the REST base itself
/// (`https://api.github.com`), or on GHES `https://HOST/api` for REST at `https://HOST/api/v3`.
pub fn graphql_base(api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    api.strip_suffix("/v3")
        .filter(|a| a.ends_with("/api"))
        .unwrap_or(api)
        .to_string()
}

/// Where a queued PR stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    /// In the queue; the entry's state (QUEUED, AWAITING_CHECKS, MERGEABLE, ...).
    Queued(String),
    /// Merged: the commit on the base.
    Merged(String),
    /// Out of the queue and not merged, with GitHub's reason when it gives one.
    Removed(String),
}

/// What waiting on the queue came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOutcome {
    /// Merged: the commit on the base.
    Merged(String),
    /// Removed from the queue, with the reason.
    Removed(String),
    /// Still queued when the wait ended; the last entry state.
    StillQueued(String),
}

const ENQUEUE: &str = "mutation($id: ID!, $head: GitObjectID) { enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $head}) { mergeQueueEntry { id state position } } }";

const STATE: &str = "query($id: ID!) { node(id: $id) { ... on PullRequest { merged state mergeCommit { oid } mergeQueueEntry { state position } timelineItems(last: 1, itemTypes: [REMOVED_FROM_MERGE_QUEUE_EVENT]) { nodes { ... on RemovedFromMergeQueueEvent { reason } } } } } }";

impl GitHub {
    /// One GraphQL request; an answer with `errors` is an `Api` error carrying their messages.
    /// Sent once: the callers are a state query (repeated by its wait loop) and an enqueue that
    /// is read back by that same query.
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, GitHubError> {
        let path = "/graphql";
        let body = json!({"query": query, "variables": variables});
        let failed = |e| GitHubError::transport(&Method::POST, path, e);
        let fut = async {
            let builder = http::Request::builder().method(Method::POST).uri(path);
            let req = self
                .gql
                .build_request(builder, Some(&body))
                .map_err(failed)?;
            let resp = self.gql.execute(req).await.map_err(failed)?;
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await.map_err(failed)?.to_bytes();
            Ok::<_, GitHubError>((parts.status.as_u16(), bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.call_timeout, fut)
            .await
            .map_err(|_| GitHubError::Timeout {
                method: Method::POST,
                path: path.to_string(),
                after: self.call_timeout,
            })??;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let errors: Vec<&str> = v["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["message"].as_str()).collect())
            .unwrap_or_default();
        if status >= 400 || !errors.is_empty() {
            let message = if errors.is_empty() {
                v["message"]
                    .as_str()
                    .unwrap_or("GraphQL request failed")
                    .to_string()
            } else {
                errors.join("; ")
            };
            return Err(GitHubError::Api {
                method: Method::POST,
                path: path.to_string(),
                status: if status >= 400 { status } else { 422 },
                message,
                retry_after: None,
            });
        }
        Ok(v["data"].clone())
    }

    /// The PR's GraphQL node id (`node_id` in REST answers).
    ///
    /// # Errors
    /// As any REST read.
    pub async fn pr_node_id(&self, number: u64) -> Result<String, GitHubError> {
        let v: Value = self.get(&self.path(&format!("/pulls/{number}"))).await?;
        Ok(v["node_id"].as_str().unwrap_or_default().to_string())
    }

    /// Adds PR `node_id` to its base's merge queue, if its head is still `head_sha`.
    ///
    /// # Errors
    /// GitHub's refusal (`Api`, its GraphQL messages), or the transport's.
    pub async fn enqueue(&self, node_id: &str, head_sha: &str) -> Result<(), GitHubError> {
        self.graphql(ENQUEUE, json!({"id": node_id, "head": head_sha}))
            .await
            .map(|_| ())
    }

    /// Where PR `node_id` stands in the queue.
    ///
    /// # Errors
    /// As [`GitHub::enqueue`].
    pub async fn queue_state(&self, node_id: &str) -> Result<QueueState, GitHubError> {
        let d = self.graphql(STATE, json!({"id": node_id})).await?;
        let pr = &d["node"];
        if pr["merged"].as_bool() == Some(true) {
            return Ok(QueueState::Merged(
                pr["mergeCommit"]["oid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        if let Some(state) = pr["mergeQueueEntry"]["state"].as_str() {
            return Ok(QueueState::Queued(state.to_string()));
        }
        let reason = pr["timelineItems"]["nodes"]
            .as_array()
            .and_then(|n| n.last())
            .and_then(|n| n["reason"].as_str())
            .unwrap_or("GitHub gave no reason")
            .to_string();
        Ok(QueueState::Removed(if pr["state"] == "CLOSED" {
            format!("the PR was closed ({reason})")
        } else {
            reason
        }))
    }
}

/// Enqueues PR `number` (head `head_sha`) and waits up to `timeout`, polling every `poll`, until
/// GitHub merges it or takes it out of the queue; `progress` hears each change of state.
///
/// # Errors
/// GitHub's refusal to enqueue, and reads that fail.
pub async fn merge_through_queue(
    gh: &GitHub,
    number: u64,
    head_sha: &str,
    timeout: Duration,
    poll: Duration,
    progress: &dyn Fn(&str),
) -> Result<QueueOutcome, GitHubError> {
    let id = gh.pr_node_id(number).await?;
    gh.enqueue(&id, head_sha).await?;
    progress(&format!(
        "PR #{number}: the base requires the merge queue; added it to the queue"
    ));
    let started = Instant::now();
    let mut last = String::new();
    loop {
        match gh.queue_state(&id).await? {
            QueueState::Merged(sha) => {
                progress(&format!(
                    "PR #{number}: merged by the merge queue as {}",
                    crate::base::text::short(&sha)
                ));
                return Ok(QueueOutcome::Merged(sha));
            }
            QueueState::Removed(why) => return Ok(QueueOutcome::Removed(why)),
            QueueState::Queued(state) => {
                if started.elapsed() >= timeout {
                    return Ok(QueueOutcome::StillQueued(state));
                }
                if state != last {
                    progress(&format!(
                        "PR #{number}: in the merge queue, {state}; {}s elapsed, {}s left",
                        started.elapsed().as_secs(),
                        timeout.saturating_sub(started.elapsed()).as_secs()
                    ));
                    last = state;
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_sits_beside_rest() {
        assert_eq!(
            graphql_base("https://api.github.com"),
            "https://api.github.com"
        );
        assert_eq!(
            graphql_base("https://api.github.com/"),
            "https://api.github.com"
        );
        assert_eq!(
            graphql_base("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api"
        );
        assert_eq!(
            graphql_base("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/api"
        );
        assert_eq!(
            graphql_base("http://127.0.0.1:4000"),
            "http://127.0.0.1:4000"
        );
    }
}
