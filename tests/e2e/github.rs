//! `gitops_promote::clients::github` against the sandbox's GitHub emulator: opening and reusing the PR, the
//! approval and checks gate, the three merge methods with real git, GitHub's 405/409 outcomes, and
//! the retry rules (GETs retried, merges read back, Retry-After honoured).

use crate::harness::{
    commit_on_main, file_at, github_client, main_sha, progress, push_tag, run, sandbox, REPO,
};
use gitops_promote::base::MergeMethod;
use gitops_promote::base::{Classify, ErrorKind};
use gitops_promote::clients::github::{Gate, GitHub, GitHubError, Merge, NewPr, PrRef};
use sandbox::{Fault, FaultRule, Sandbox};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn new_pr(branch: &str) -> NewPr {
    NewPr {
        head: branch.into(),
        base: "main".into(),
        title: "Promote app to 2.0.0".into(),
        body: "Promoted by gitops-promote".into(),
        labels: vec!["promotion".into(), "app".into()],
        reviewers: vec!["alice".into()],
        assignees: vec!["bob".into()],
        ..NewPr::default()
    }
}

/// Opens the PR of `branch` as the product's PR step does: the setup of every gate and merge test.
async fn open_pr(gh: &GitHub, branch: &str) -> PrRef {
    gh.open_or_reuse_pr(&new_pr(branch)).await.unwrap()
}

fn gate(approvals: u32, timeout_ms: u64, checks: bool) -> Gate {
    Gate {
        required_approvals: approvals,
        approval_timeout: Duration::from_millis(timeout_ms),
        wait_for_checks: checks,
        poll: Duration::from_millis(50),
    }
}

/// Reads a raw body from the emulator, as a user looking at the PR page would.
async fn raw(sb: &Sandbox, path: &str) -> serde_json::Value {
    let o = crate::harness::octocrab(&sb.github_api_url, Some(&sb.world.token));
    o.get(path, None::<&()>).await.unwrap()
}

#[test]
fn opens_a_pr_with_labels_reviewers_assignees_and_reuses_it_on_rerun() {
    let sb = sandbox();
    push_tag(&sb, "gitops-promote/main/1-1", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let first = gh
            .open_or_reuse_pr(&new_pr("gitops-promote/main/1-1"))
            .await
            .unwrap();
        assert!(first.created);
        assert!(first.warnings.is_empty(), "{:?}", first.warnings);
        let again = gh
            .open_or_reuse_pr(&new_pr("gitops-promote/main/1-1"))
            .await
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.number, first.number);
        let pr = raw(&sb, &format!("/repos/{REPO}/pulls/{}", first.number)).await;
        let labels: Vec<&str> = pr["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["promotion", "app"]);
        assert_eq!(pr["requested_reviewers"][0]["login"], "alice");
        assert_eq!(pr["assignees"][0]["login"], "bob");
        let info = gh.pr(first.number).await.unwrap();
        assert_eq!(info.head_ref, "gitops-promote/main/1-1");
        assert_eq!(info.user, "github-actions[bot]");
        assert_eq!(
            gh.find_pr_by_head("gitops-promote/main/1-1", "open")
                .await
                .unwrap()
                .unwrap()
                .number,
            first.number
        );
        assert!(gh.find_pr_by_head("nope", "all").await.unwrap().is_none());
    });
}

#[test]
fn reviewer_who_is_not_a_collaborator_becomes_a_warning() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    sb.github.set_permission(REPO, "mallory", "none");
    run(async {
        let gh = github_client(&sb);
        let mut new = new_pr("b");
        new.reviewers = vec!["mallory".into()];
        let pr = gh.open_or_reuse_pr(&new).await.unwrap();
        assert!(
            pr.warnings[0].contains("not a collaborator"),
            "{:?}",
            pr.warnings
        );
    });
}

#[test]
fn gate_waits_for_an_approval_added_later_through_the_control_api() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    let control = format!("{}/github/repos/{REPO}/pulls/1/reviews", sb.control_url());
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        let (lines, progress) = progress();
        let (returned, approved) = (AtomicBool::new(false), AtomicBool::new(false));
        let approve = async {
            // Approve once the gate has reported that it waits; if it returns first, that is the bug.
            while !returned.load(Ordering::SeqCst)
                && !lines
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|l| l.contains("approvals 0/1"))
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let o = crate::harness::octocrab(control.as_str(), None);
            let resp = o
                ._post(
                    control.as_str(),
                    Some(&serde_json::json!({"user": "alice", "state": "APPROVED"})),
                )
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            approved.store(true, Ordering::SeqCst);
        };
        let g = gate(1, 10_000, false);
        let wait = async {
            let r = gh.wait_ready(&pr, &g, &progress).await;
            returned.store(true, Ordering::SeqCst);
            (r, approved.load(Ordering::SeqCst))
        };
        let ((ready, waited), ()) = tokio::join!(wait, approve);
        assert!(
            waited,
            "the gate passed before the approval: {:?}",
            lines.lock().unwrap()
        );
        let ready = ready.unwrap();
        assert_eq!(ready.head_sha, pr.head_sha);
        assert!(
            matches!(ready.mergeable_state.as_str(), "clean" | "unstable"),
            "{}",
            ready.mergeable_state
        );
    });
}

#[test]
fn stale_approval_on_an_older_head_does_not_count_and_times_out_as_approval() {
    let sb = sandbox();
    let old = push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.github
            .add_review(REPO, pr.number, "alice", "APPROVED", Some(&old))
            .unwrap();
        push_tag(&sb, "b", "2.0.1");
        let (lines, progress) = progress();
        let err = gh
            .wait_ready(&pr, &gate(1, 400, false), &progress)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Approval, "{err}");
        assert!(
            err.to_string().contains("0 of 1 required approvals"),
            "{err}"
        );
        assert!(lines.lock().unwrap()[0].contains("approvals 0/1"));
    });
}

#[test]
fn approval_from_a_read_only_user_does_not_count() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    sb.github.set_permission(REPO, "reader", "read");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.github
            .add_review(REPO, pr.number, "reader", "APPROVED", None)
            .unwrap();
        let err = gh
            .wait_ready(&pr, &gate(1, 300, false), &|_| {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Approval);
    });
}

#[test]
fn changes_requested_fails_the_gate_with_kind_approval() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.github
            .add_review(REPO, pr.number, "alice", "APPROVED", None)
            .unwrap();
        sb.github
            .add_review(REPO, pr.number, "carol", "CHANGES_REQUESTED", None)
            .unwrap();
        let err = gh
            .wait_ready(&pr, &gate(1, 10_000, false), &|_| {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Approval);
        assert!(err.to_string().contains("carol requested changes"), "{err}");
    });
}

#[test]
fn gate_waits_for_pending_checks_then_passes_when_green() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        let target = sandbox::github::Target::Pr(pr.number);
        sb.github
            .set_check_run(REPO, &target, "ci", "in_progress", None);
        let (lines, progress) = progress();
        let (returned, finished) = (AtomicBool::new(false), AtomicBool::new(false));
        let finish = async {
            // Until the gate reports the check pending; if it returns first, that is the bug.
            while !returned.load(Ordering::SeqCst)
                && !lines
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|l| l.contains("pending (ci)"))
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sb.github
                .set_check_run(REPO, &target, "ci", "completed", Some("success"));
            sb.github.set_status(REPO, &target, "lint", "success");
            finished.store(true, Ordering::SeqCst);
        };
        let g = gate(0, 10_000, true);
        let wait = async {
            let r = gh.wait_ready(&pr, &g, &progress).await;
            returned.store(true, Ordering::SeqCst);
            (r, finished.load(Ordering::SeqCst))
        };
        let ((ready, waited), ()) = tokio::join!(wait, finish);
        assert!(
            waited,
            "the gate passed before the check completed: {:?}",
            lines.lock().unwrap()
        );
        assert_eq!(ready.unwrap().mergeable_state, "clean");
    });
}

#[test]
fn failing_check_fails_the_gate() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        let target = sandbox::github::Target::Pr(pr.number);
        sb.github
            .set_check_run(REPO, &target, "ci", "completed", Some("failure"));
        let err = gh
            .wait_ready(&pr, &gate(0, 10_000, true), &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&err, GitHubError::CheckFailed { name, conclusion, .. } if name == "ci" && conclusion == "failure"),
            "{err}"
        );
    });
}

fn parents(sb: &Sandbox, sha: &str) -> Vec<String> {
    let repo = sb.world.open(REPO).unwrap();
    let c = repo.find_commit(git2::Oid::from_str(sha).unwrap()).unwrap();
    c.parent_ids().map(|p| p.to_string()).collect()
}

#[test]
fn merges_with_each_method_as_github_does() {
    let sb = sandbox();
    run(async {
        let gh = github_client(&sb);
        for (i, method) in [MergeMethod::Merge, MergeMethod::Squash, MergeMethod::Rebase]
            .into_iter()
            .enumerate()
        {
            let branch = format!("b{i}");
            push_tag(&sb, &branch, &format!("2.{i}.0"));
            let head = push_tag(&sb, &branch, &format!("2.{i}.1"));
            let base_before = main_sha(&sb);
            let pr = open_pr(&gh, &branch).await;
            let Merge::Merged { sha, commits } = gh.merge(pr.number, method, &head).await.unwrap()
            else {
                panic!("{method:?} did not merge");
            };
            assert_eq!(main_sha(&sb), sha);
            let tag = file_at(&sb, "main", "charts/app/values.yaml").unwrap();
            assert!(tag.contains(&format!("tag: \"2.{i}.1\"")), "{method:?}");
            match method {
                MergeMethod::Merge => {
                    assert_eq!(parents(&sb, &sha), [base_before, head]);
                    assert_eq!(commits, vec![sha.clone()]);
                }
                MergeMethod::Squash => {
                    assert_eq!(parents(&sb, &sha), [base_before]);
                    assert_eq!(commits, vec![sha.clone()]);
                }
                MergeMethod::Rebase => {
                    assert_eq!(commits.len(), 2);
                    assert_eq!(parents(&sb, &commits[0]), [base_before]);
                    assert_eq!(parents(&sb, &commits[1]), [commits[0].clone()]);
                    assert_eq!(commits[1], sha);
                }
            }
            let info = gh.pr(pr.number).await.unwrap();
            assert!(info.merged);
            assert_eq!(info.merge_commit_sha.as_deref(), Some(sha.as_str()));
        }
    });
}

#[test]
fn merge_after_someone_pushed_to_the_base_answers_base_modified_then_merges() {
    let sb = sandbox();
    let head = push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        gh.pr(pr.number).await.unwrap();
        gh.pr(pr.number).await.unwrap();
        commit_on_main(&sb, &[("README.md", "hi\n")], "someone else");
        assert_eq!(
            gh.merge(pr.number, MergeMethod::Merge, &head)
                .await
                .unwrap(),
            Merge::BaseModified
        );
        assert!(matches!(
            gh.merge(pr.number, MergeMethod::Merge, &head)
                .await
                .unwrap(),
            Merge::Merged { .. }
        ));
    });
}

#[test]
fn merge_with_a_moved_head_answers_head_modified() {
    let sb = sandbox();
    let old = push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        push_tag(&sb, "b", "2.0.1");
        assert_eq!(
            gh.merge(pr.number, MergeMethod::Squash, &old)
                .await
                .unwrap(),
            Merge::HeadModified
        );
    });
}

#[test]
fn merge_blocked_by_protection_is_blocked_with_githubs_message() {
    let sb = sandbox();
    let head = push_tag(&sb, "b", "2.0.0");
    sb.github.set_protection(
        REPO,
        "main",
        Some(sandbox::github::Protection {
            required_approving_review_count: 1,
            ..Default::default()
        }),
    );
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        let m = gh
            .merge(pr.number, MergeMethod::Merge, &head)
            .await
            .unwrap();
        // A rule not met yet is a wait, not a conflict: it may clear (a review, a check).
        assert_eq!(
            m,
            Merge::Blocked(
                "At least 1 approving review is required by reviewers with write access.".into()
            )
        );
    });
}

#[test]
fn a_502_on_get_is_retried() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.faults.inject(FaultRule {
            service: "github".into(),
            method: Some("GET".into()),
            path: "/repos/*/*/pulls/*".into(),
            times: 2,
            fault: Fault::Status {
                status: 502,
                body: None,
            },
        });
        sb.faults.clear_calls();
        assert_eq!(gh.pr(pr.number).await.unwrap().number, pr.number);
        let statuses: Vec<u16> = sb
            .faults
            .calls(Some("github"))
            .iter()
            .map(|c| c.status)
            .collect();
        assert_eq!(statuses, [502, 502, 200]);
    });
}

#[test]
fn a_502_on_the_merge_put_is_read_back_and_merges_exactly_once() {
    let sb = sandbox();
    let head = push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.faults.inject(FaultRule {
            service: "github".into(),
            method: Some("PUT".into()),
            path: "/repos/*/*/pulls/*/merge".into(),
            times: 1,
            fault: Fault::Status {
                status: 502,
                body: None,
            },
        });
        sb.faults.clear_calls();
        let m = gh
            .merge(pr.number, MergeMethod::Merge, &head)
            .await
            .unwrap();
        assert!(matches!(m, Merge::Merged { .. }), "{m:?}");
        let calls = sb.faults.calls(Some("github"));
        let puts: Vec<u16> = calls
            .iter()
            .filter(|c| c.method == "PUT")
            .map(|c| c.status)
            .collect();
        assert_eq!(puts, [502, 200], "one failed PUT, one merge");
        let first_put = calls.iter().position(|c| c.method == "PUT").unwrap();
        assert_eq!(
            calls[first_put + 1].method,
            "GET",
            "the PR was read back before resending"
        );
        let repo = sb.world.open(REPO).unwrap();
        let main = repo
            .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
            .unwrap();
        assert_eq!(main.parent_count(), 2);
        assert_eq!(
            main.parent(0).unwrap().parent_count(),
            0,
            "merged once: the seed commit is below it"
        );
    });
}

#[test]
fn rate_limits_are_waited_out_as_retry_after_says() {
    let sb = sandbox();
    let head = push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.faults.inject(FaultRule {
            service: "github".into(),
            method: Some("GET".into()),
            path: "/repos/*/*/pulls/*".into(),
            times: 1,
            fault: Fault::RateLimit {
                secondary: false,
                retry_after: 1,
            },
        });
        sb.faults.inject(FaultRule {
            service: "github".into(),
            method: Some("PUT".into()),
            path: "/repos/*/*/pulls/*/merge".into(),
            times: 1,
            fault: Fault::RateLimit {
                secondary: true,
                retry_after: 1,
            },
        });
        sb.faults.clear_calls();
        gh.pr(pr.number).await.unwrap();
        assert!(matches!(
            gh.merge(pr.number, MergeMethod::Merge, &head)
                .await
                .unwrap(),
            Merge::Merged { .. }
        ));
        let calls = sb.faults.calls(Some("github"));
        for (limited, status) in [("GET", 429), ("PUT", 403)] {
            let i = calls
                .iter()
                .position(|c| c.method == limited && c.status == status)
                .unwrap();
            let next = calls[i + 1..].iter().find(|c| c.method == limited).unwrap();
            assert!(
                next.at_ms - calls[i].at_ms >= 1000,
                "{limited} resent after {} ms",
                next.at_ms - calls[i].at_ms
            );
        }
    });
}

#[test]
fn bad_token_is_an_authentication_error_and_unknown_repo_authorization() {
    let sb = sandbox();
    run(async {
        let bad = GitHub::new(&sb.github_api_url, "ghs_wrong", REPO).unwrap();
        let err = bad.default_branch().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        assert!(err.to_string().contains("Bad credentials"), "{err}");
        assert!(
            !format!("{err:?} {bad:?}").contains("ghs_wrong"),
            "the token leaks"
        );
        let other = GitHub::new(&sb.github_api_url, &sb.world.token, "acme/nope").unwrap();
        let err = other.default_branch().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authorization);
        assert!(err.hint().unwrap().contains("pull-requests: write"));
    });
}

#[test]
fn comments_permissions_close_and_branch_deletion() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    sb.github.set_permission(REPO, "dave", "read");
    run(async {
        let gh = github_client(&sb);
        assert_eq!(gh.default_branch().await.unwrap(), "main");
        let pr = open_pr(&gh, "b").await;
        let since = chrono::Utc::now() - chrono::Duration::seconds(1);
        gh.comment(pr.number, "waiting for /proceed").await.unwrap();
        assert!(sb.github.add_comment(REPO, pr.number, "alice", "/proceed"));
        let comments = gh.comments_since(pr.number, since).await.unwrap();
        let seen: Vec<(&str, &str)> = comments
            .iter()
            .map(|c| (c.user.as_str(), c.body.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("github-actions[bot]", "waiting for /proceed"),
                ("alice", "/proceed")
            ]
        );
        let later = chrono::Utc::now() + chrono::Duration::seconds(5);
        assert!(gh
            .comments_since(pr.number, later)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(gh.permission("dave").await.unwrap(), "read");
        assert_eq!(gh.permission("alice").await.unwrap(), "write");
        gh.close_pr(pr.number, "Promotion abandoned").await.unwrap();
        assert_eq!(gh.pr(pr.number).await.unwrap().state, "closed");
        gh.delete_branch("b").await.unwrap();
        gh.delete_branch("b").await.unwrap();
        assert!(sb
            .world
            .open(REPO)
            .unwrap()
            .find_reference("refs/heads/b")
            .is_err());
    });
}

#[test]
fn required_checks_that_never_start_on_a_github_token_pr_warn_then_time_out() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    sb.github.set_protection(
        REPO,
        "main",
        Some(sandbox::github::Protection {
            required_status_checks: vec!["ci".into()],
            ..Default::default()
        }),
    );
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        let (lines, progress) = progress();
        let err = gh
            .wait_ready(&pr, &gate(0, 800, true), &progress)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("checks ci"), "{err}");
        let lines = lines.lock().unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("GITHUB_TOKEN does not trigger workflows")),
            "{lines:?}"
        );
    });
}

#[test]
fn gate_polls_with_etags_so_unchanged_prs_answer_304() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.faults.clear_calls();
        let err = gh
            .wait_ready(&pr, &gate(1, 400, false), &|_| {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Approval);
        let path = format!("/repos/{REPO}/pulls/{}", pr.number);
        let polls: Vec<u16> = sb
            .faults
            .calls(Some("github"))
            .iter()
            .filter(|c| c.path == path)
            .map(|c| c.status)
            .collect();
        assert!(polls.len() >= 3, "{polls:?}");
        assert!(
            polls[2..].iter().all(|s| *s == 304),
            "later polls are conditional: {polls:?}"
        );
    });
}

#[test]
fn a_lost_create_is_read_back_before_it_is_sent_again() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        sb.faults.inject(FaultRule {
            service: "github".into(),
            method: Some("POST".into()),
            path: "/repos/*/*/pulls".into(),
            times: 1,
            fault: Fault::Status {
                status: 502,
                body: None,
            },
        });
        sb.faults.clear_calls();
        let pr = gh
            .open_or_reuse_pr(&NewPr {
                labels: vec![],
                reviewers: vec![],
                assignees: vec![],
                ..new_pr("b")
            })
            .await
            .unwrap();
        assert!(pr.created);
        let calls: Vec<(String, u16)> = sb
            .faults
            .calls(Some("github"))
            .iter()
            .map(|c| (c.method.clone(), c.status))
            .collect();
        let seen: Vec<(&str, u16)> = calls.iter().map(|(m, s)| (m.as_str(), *s)).collect();
        // The read-back is a conditional GET: nothing changed, so 304.
        assert_eq!(
            seen,
            [("GET", 200), ("POST", 502), ("GET", 304), ("POST", 201)]
        );
        let open = raw(&sb, &format!("/repos/{REPO}/pulls?state=all")).await;
        assert_eq!(open.as_array().unwrap().len(), 1, "one PR, not two");
    });
}

/// A call slower than `call_timeout` is abandoned (with no retry budget it is a timeout error,
/// though the answer would have come) and, with a budget, retried.
#[test]
fn a_call_slower_than_the_timeout_is_abandoned_and_retried() {
    let sb = sandbox();
    let slow = || FaultRule {
        service: "github".into(),
        method: Some("GET".into()),
        path: "/repos/*/*".into(),
        times: 1,
        fault: Fault::Delay { ms: 20_000 },
    };
    run(async {
        let mut gh = github_client(&sb);
        gh.call_timeout = Duration::from_millis(300);
        gh.retry_budget = Duration::ZERO;
        sb.faults.inject(slow());
        let err = gh.default_branch().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        sb.faults.clear();
        gh.retry_budget = Duration::from_secs(30);
        sb.faults.inject(slow());
        assert_eq!(gh.default_branch().await.unwrap(), "main");
    });
}

#[test]
fn a_comment_whose_post_failed_is_written_exactly_once() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.faults.inject(FaultRule {
            service: "github".into(),
            method: Some("POST".into()),
            path: "/repos/*/*/issues/*/comments".into(),
            times: 1,
            fault: Fault::Status {
                status: 503,
                body: None,
            },
        });
        gh.comment(pr.number, "Rolled back").await.unwrap();
        let since = chrono::Utc::now() - chrono::Duration::seconds(120);
        let comments = gh.comments_since(pr.number, since).await.unwrap();
        assert_eq!(comments.len(), 1);
        assert_eq!(comments[0].body, "Rolled back");
    });
}

#[test]
fn a_token_that_cannot_read_permissions_falls_back_to_the_review_author_association() {
    let sb = sandbox();
    push_tag(&sb, "b", "2.0.0");
    run(async {
        let gh = github_client(&sb);
        let pr = open_pr(&gh, "b").await;
        sb.github
            .add_review(REPO, pr.number, "alice", "APPROVED", None)
            .unwrap();
        sb.faults.inject(FaultRule {
            service: "github".into(),
            method: Some("GET".into()),
            path: "/repos/*/*/collaborators/*/permission".into(),
            times: 100,
            fault: Fault::Status {
                status: 403,
                body: None,
            },
        });
        let ready = gh
            .wait_ready(&pr, &gate(1, 10_000, false), &|_| {})
            .await
            .unwrap();
        assert_eq!(ready.number, pr.number);
        let denied = sb
            .faults
            .calls(Some("github"))
            .iter()
            .filter(|c| c.path.ends_with("/permission"))
            .count();
        assert_eq!(denied, 1, "asked once, then cached");
    });
}
