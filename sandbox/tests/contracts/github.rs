//! Fidelity of the GitHub emulator: every route's answer validated against GitHub's published
//! OpenAPI description (../shared/contracts/github/openapi.json), GitHub's recorded bodies read
//! into the octocrab models the product uses, and merges checked through a fresh `git clone`.

use octocrab::Octocrab;
use sandbox::github::{Protection, Target};
use sandbox::{Options, Sandbox};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

const REPO: &str = "acme/deploy";

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

use sandbox::contract::Spec;

struct Client {
    octo: Octocrab,
}

struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Client {
    fn new(sb: &Sandbox, token: &str) -> Client {
        // octocrab's own layers over a plain-HTTP hyper client, as the product builds it
        // (src/clients/github/mod.rs) without its TLS connector.
        use octocrab::service::middleware::{auth_header::AuthHeaderLayer, base_uri::BaseUriLayer};
        let base: axum::http::Uri = sb.github_api_url.trim_end_matches('/').parse().unwrap();
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<octocrab::OctoBody>();
        let auth = format!("Bearer {token}").parse().unwrap();
        let octo = octocrab::OctocrabBuilder::new_empty()
            .with_service(http)
            .with_layer(&BaseUriLayer::new(base.clone()))
            .with_layer(&AuthHeaderLayer::new(Some(auth), base.clone(), base))
            .with_auth(octocrab::AuthState::None)
            .build()
            .unwrap();
        Client { octo }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut b = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = self.octo.build_request(b, body.as_ref()).unwrap();
        let resp = self.octo.execute(req).await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let text = self.octo.body_to_string(resp).await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// Calls a route, checks the status, and validates the body against the contract.
async fn expect(
    c: &Client,
    spec: &Spec,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
    template: &str,
) -> Value {
    let a = c.call(method, path, body, &[]).await;
    assert_eq!(a.status, status, "{method} {path}: {}", a.body);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
    ] {
        assert!(a.headers.contains_key(h), "{method} {path} lacks {h}");
    }
    if !a.body.is_null() {
        spec.check(template, &method.to_ascii_lowercase(), status, &a.body);
    }
    a.body
}

#[test]
fn every_route_answers_what_githubs_openapi_describes() {
    let Some(dir) = crate::contracts(
        "github",
        "every_route_answers_what_githubs_openapi_describes",
    ) else {
        return;
    };
    let spec = Spec::load(&dir);
    let sb = Sandbox::start(Options::default()).unwrap();
    let main = sb.world.resolve(REPO, "main").unwrap().to_string();
    run(async {
        let c = Client::new(&sb, &sb.world.token);
        let r = "/repos/acme/deploy";
        let e = |m, p: String, b, s, t| {
            let (c, spec) = (&c, &spec);
            async move { expect(c, spec, m, &p, b, s, t).await }
        };
        e("GET", r.into(), None, 200, "/repos/{owner}/{repo}").await;
        e(
            "GET",
            format!("{r}/branches/main"),
            None,
            200,
            "/repos/{owner}/{repo}/branches/{branch}",
        )
        .await;
        sb.github.set_protection(
            REPO,
            "main",
            Some(Protection {
                required_approving_review_count: 1,
                required_status_checks: vec!["ci".into()],
                ..Default::default()
            }),
        );
        e(
            "GET",
            format!("{r}/branches/main"),
            None,
            200,
            "/repos/{owner}/{repo}/branches/{branch}",
        )
        .await;
        // Readable only with administration (without, 403, which the reduced description omits).
        sb.github.set_admin_token(true);
        e(
            "GET",
            format!("{r}/branches/main/protection"),
            None,
            200,
            "/repos/{owner}/{repo}/branches/{branch}/protection",
        )
        .await;
        sb.github.set_admin_token(false);
        sb.github.set_ruleset(
            REPO,
            "main",
            Some(Protection {
                required_approving_review_count: 1,
                required_status_checks: vec!["ci/test".into()],
                strict: true,
                ..Default::default()
            }),
        );
        e(
            "GET",
            format!("{r}/rules/branches/main"),
            None,
            200,
            "/repos/{owner}/{repo}/rules/branches/{branch}",
        )
        .await;
        sb.github.set_ruleset(REPO, "main", None);
        sb.github.set_protection(REPO, "main", None);
        e(
            "GET",
            format!("{r}/git/ref/heads/main"),
            None,
            200,
            "/repos/{owner}/{repo}/git/ref/{ref}",
        )
        .await;
        e(
            "GET",
            format!("{r}/git/matching-refs/heads/"),
            None,
            200,
            "/repos/{owner}/{repo}/git/matching-refs/{ref}",
        )
        .await;
        let body = json!({"ref": "refs/heads/feature", "sha": main});
        e(
            "POST",
            format!("{r}/git/refs"),
            Some(body.clone()),
            201,
            "/repos/{owner}/{repo}/git/refs",
        )
        .await;
        let dup = e(
            "POST",
            format!("{r}/git/refs"),
            Some(body),
            422,
            "/repos/{owner}/{repo}/git/refs",
        )
        .await;
        assert_eq!(dup["message"], "Reference already exists");
        let head = sb
            .world
            .commit(
                REPO,
                "feature",
                &[("charts/app/values.yaml", "image:\n  tag: \"2.0.0\"\n")],
                "Promote",
            )
            .unwrap()
            .to_string();
        let tmp = json!({"ref": "refs/heads/tmp", "sha": main});
        e(
            "POST",
            format!("{r}/git/refs"),
            Some(tmp),
            201,
            "/repos/{owner}/{repo}/git/refs",
        )
        .await;
        e(
            "PATCH",
            format!("{r}/git/refs/heads/tmp"),
            Some(json!({"sha": head})),
            200,
            "/repos/{owner}/{repo}/git/refs/{ref}",
        )
        .await;
        let back = json!({"sha": main, "force": false});
        let nff = e(
            "PATCH",
            format!("{r}/git/refs/heads/tmp"),
            Some(back),
            422,
            "/repos/{owner}/{repo}/git/refs/{ref}",
        )
        .await;
        assert_eq!(nff["message"], "Update is not a fast forward");
        e(
            "DELETE",
            format!("{r}/git/refs/heads/tmp"),
            None,
            204,
            "/repos/{owner}/{repo}/git/refs/{ref}",
        )
        .await;
        e(
            "DELETE",
            format!("{r}/git/refs/heads/tmp"),
            None,
            422,
            "/repos/{owner}/{repo}/git/refs/{ref}",
        )
        .await;

        let new = json!({"title": "Promote app to 2.0.0", "head": "feature", "base": "main", "body": "by gitops-promote"});
        let pr = e(
            "POST",
            format!("{r}/pulls"),
            Some(new.clone()),
            201,
            "/repos/{owner}/{repo}/pulls",
        )
        .await;
        assert_eq!(pr["mergeable"], Value::Null);
        let again = e(
            "POST",
            format!("{r}/pulls"),
            Some(new),
            422,
            "/repos/{owner}/{repo}/pulls",
        )
        .await;
        assert_eq!(
            again["errors"][0]["message"],
            "A pull request already exists for acme:feature."
        );
        let n = pr["number"].as_u64().unwrap();
        let p = format!("{r}/pulls/{n}");
        let list = e(
            "GET",
            format!("{r}/pulls?head=acme:feature&state=open"),
            None,
            200,
            "/repos/{owner}/{repo}/pulls",
        )
        .await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        let first = e(
            "GET",
            p.clone(),
            None,
            200,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
        )
        .await;
        assert_eq!(
            first["mergeable"],
            Value::Null,
            "null on the first read, as GitHub computes it"
        );
        let second = e(
            "GET",
            p.clone(),
            None,
            200,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
        )
        .await;
        assert_eq!(
            (
                second["mergeable"].clone(),
                second["mergeable_state"].clone()
            ),
            (json!(true), json!("clean"))
        );
        e(
            "PATCH",
            p.clone(),
            Some(json!({"title": "Promote app to 2.0.0 (edited)"})),
            200,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
        )
        .await;
        let rr = "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers";
        sb.github.add_team("platform");
        e(
            "POST",
            format!("{p}/requested_reviewers"),
            Some(json!({"reviewers": ["alice"], "team_reviewers": ["platform"]})),
            201,
            rr,
        )
        .await;
        e("GET", format!("{p}/requested_reviewers"), None, 200, rr).await;
        sb.github
            .add_review(REPO, n, "alice", "APPROVED", None)
            .unwrap();
        sb.github
            .add_review(REPO, n, "bob", "COMMENTED", None)
            .unwrap();
        let reviews = e(
            "GET",
            format!("{p}/reviews"),
            None,
            200,
            "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
        )
        .await;
        assert_eq!(reviews[0]["commit_id"], head.as_str());
        e(
            "GET",
            format!("{p}/commits"),
            None,
            200,
            "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
        )
        .await;
        let labels = e(
            "POST",
            format!("{r}/issues/{n}/labels"),
            Some(json!({"labels": ["promotion"]})),
            200,
            "/repos/{owner}/{repo}/issues/{issue_number}/labels",
        )
        .await;
        assert_eq!(labels[0]["name"], "promotion");
        let ct = "/repos/{owner}/{repo}/issues/{issue_number}/comments";
        e(
            "POST",
            format!("{r}/issues/{n}/comments"),
            Some(json!({"body": "hello"})),
            201,
            ct,
        )
        .await;
        e(
            "GET",
            format!("{r}/issues/{n}/comments?since=2020-01-01T00:00:00Z"),
            None,
            200,
            ct,
        )
        .await;
        e(
            "POST",
            format!("{r}/statuses/{head}"),
            Some(json!({"state": "pending", "context": "lint"})),
            201,
            "/repos/{owner}/{repo}/statuses/{sha}",
        )
        .await;
        let pending = e(
            "GET",
            format!("{r}/commits/{head}/status"),
            None,
            200,
            "/repos/{owner}/{repo}/commits/{ref}/status",
        )
        .await;
        assert_eq!(pending["state"], "pending");
        e(
            "GET",
            format!("{r}/commits/{head}/statuses"),
            None,
            200,
            "/repos/{owner}/{repo}/commits/{ref}/statuses",
        )
        .await;
        sb.github
            .set_check_run(REPO, &Target::Pr(n), "ci", "completed", Some("success"));
        sb.github
            .set_check_run(REPO, &Target::Sha(head.clone()), "e2e", "in_progress", None);
        let runs = e(
            "GET",
            format!("{r}/commits/{head}/check-runs"),
            None,
            200,
            "/repos/{owner}/{repo}/commits/{ref}/check-runs",
        )
        .await;
        assert_eq!(runs["total_count"], 2);
        let unstable = e(
            "GET",
            p.clone(),
            None,
            200,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
        )
        .await;
        assert_eq!(unstable["mergeable_state"], "unstable");
        e(
            "GET",
            format!("{r}/collaborators/alice/permission"),
            None,
            200,
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
        )
        .await;
        e(
            "GET",
            format!("{r}/commits/{head}"),
            None,
            200,
            "/repos/{owner}/{repo}/commits/{ref}",
        )
        .await;
        let cp = "/repos/{owner}/{repo}/commits/{commit_sha}/pulls";
        let prs = e("GET", format!("{r}/commits/{head}/pulls"), None, 200, cp).await;
        assert_eq!(prs[0]["number"], n);
        let cf = "/repos/{owner}/{repo}/contents/{path}";
        let values = format!("{r}/contents/charts/app/values.yaml?ref=feature");
        let file = e("GET", values, None, 200, cf).await;
        assert_eq!(file["path"], "charts/app/values.yaml");

        let mp = "/repos/{owner}/{repo}/pulls/{pull_number}/merge";
        let moved = e(
            "PUT",
            format!("{p}/merge"),
            Some(json!({"sha": main})),
            409,
            mp,
        )
        .await;
        assert_eq!(
            moved["message"],
            "Head branch was modified. Review and try the merge again."
        );
        sb.github.set_merge_methods(
            REPO,
            sandbox::github::MergeMethods {
                merge: false,
                squash: true,
                rebase: true,
            },
        );
        let refused = e(
            "PUT",
            format!("{p}/merge"),
            Some(json!({"merge_method": "merge"})),
            405,
            mp,
        )
        .await;
        assert_eq!(
            refused["message"],
            "Merge commits are not allowed on this repository."
        );
        let merged = e(
            "PUT",
            format!("{p}/merge"),
            Some(json!({"merge_method": "squash", "sha": head})),
            200,
            mp,
        )
        .await;
        assert_eq!(merged["merged"], true);
        e("GET", format!("{p}/merge"), None, 204, mp).await;
        e("PUT", format!("{p}/merge"), None, 405, mp).await;
        let done = e(
            "GET",
            p.clone(),
            None,
            200,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
        )
        .await;
        assert_eq!(
            (done["merged"].clone(), done["merge_commit_sha"].clone()),
            (json!(true), merged["sha"].clone())
        );
        e("GET", "/rate_limit".into(), None, 200, "/rate_limit").await;
        e(
            "GET",
            "/repos/acme/nope".into(),
            None,
            404,
            "/repos/{owner}/{repo}",
        )
        .await;
    });
}

#[test]
fn errors_etags_and_pagination_behave_as_on_github() {
    let sb = Sandbox::start(Options::default()).unwrap();
    run(async {
        let c = Client::new(&sb, &sb.world.token);
        let bad = Client::new(&sb, "ghs_wrong")
            .call("GET", "/repos/acme/deploy", None, &[])
            .await;
        assert_eq!(
            (bad.status, bad.body["message"].clone()),
            (401, json!("Bad credentials"))
        );
        assert!(bad.headers.contains_key("x-ratelimit-remaining"));
        let unknown = c
            .call("GET", "/repos/acme/deploy/no-such-thing", None, &[])
            .await;
        assert_eq!(unknown.status, 404);
        assert_eq!(
            unknown.body["sandbox"],
            "the GitHub emulator has no route GET /repos/acme/deploy/no-such-thing"
        );

        let first = c.call("GET", "/repos/acme/deploy", None, &[]).await;
        let etag = first.headers["etag"].to_str().unwrap().to_string();
        let remaining = |a: &Answer| {
            a.headers["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let again = c
            .call(
                "GET",
                "/repos/acme/deploy",
                None,
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(again.status, 304);
        assert_eq!(remaining(&again), remaining(&first), "a 304 costs no quota");

        let repo = sb.world.open(REPO).unwrap();
        let main = repo.refname_to_id("refs/heads/main").unwrap();
        repo.reference("refs/heads/f", main, false, "").unwrap();
        sb.world.commit(REPO, "f", &[("x", "1")], "x").unwrap();
        let pr = c
            .call(
                "POST",
                "/repos/acme/deploy/pulls",
                Some(json!({"title": "t", "head": "f", "base": "main"})),
                &[],
            )
            .await;
        assert_eq!(pr.status, 201);
        for i in 0..3 {
            assert!(sb.github.add_comment(REPO, 1, "alice", &format!("c{i}")));
        }
        let page = c
            .call(
                "GET",
                "/repos/acme/deploy/issues/1/comments?per_page=1&page=2",
                None,
                &[],
            )
            .await;
        assert_eq!(page.body[0]["body"], "c1");
        let link = page.headers["link"].to_str().unwrap();
        for rel in ["next", "last", "first", "prev"] {
            assert!(link.contains(&format!("rel=\"{rel}\"")), "{link}");
        }
        assert!(link.contains("page=3>; rel=\"next\""), "{link}");
    });
}

#[test]
fn mergeable_can_take_n_reads_and_conflicts_are_dirty() {
    let sb = Sandbox::start(Options::default()).unwrap();
    sb.github.set_mergeable_reads(3);
    run(async {
        let c = Client::new(&sb, &sb.world.token);
        let repo = sb.world.open(REPO).unwrap();
        let main = repo.refname_to_id("refs/heads/main").unwrap();
        repo.reference("refs/heads/f", main, false, "").unwrap();
        sb.world
            .commit(REPO, "f", &[("charts/app/values.yaml", "ours\n")], "ours")
            .unwrap();
        let pr = c
            .call(
                "POST",
                "/repos/acme/deploy/pulls",
                Some(json!({"title": "t", "head": "f", "base": "main"})),
                &[],
            )
            .await;
        assert_eq!(pr.status, 201);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(
                c.call("GET", "/repos/acme/deploy/pulls/1", None, &[])
                    .await
                    .body["mergeable_state"]
                    .clone(),
            );
        }
        assert_eq!(
            seen,
            [
                json!("unknown"),
                json!("unknown"),
                json!("unknown"),
                json!("clean")
            ]
        );
        sb.world
            .commit(
                REPO,
                "main",
                &[("charts/app/values.yaml", "theirs\n")],
                "theirs",
            )
            .unwrap();
        sb.github.set_mergeable_reads(0);
        let dirty = c.call("GET", "/repos/acme/deploy/pulls/1", None, &[]).await;
        assert_eq!(
            (
                dirty.body["mergeable"].clone(),
                dirty.body["mergeable_state"].clone()
            ),
            (json!(false), json!("dirty"))
        );
        let refused = c
            .call("PUT", "/repos/acme/deploy/pulls/1/merge", None, &[])
            .await;
        assert_eq!(
            (refused.status, refused.body["message"].clone()),
            (405, json!("Pull Request is not mergeable"))
        );
    });
}

/// `git rev-list --parents -n 1 <sha>` in a fresh clone: the parents a user would see.
fn cloned_parents(clone: &std::path::Path, sha: &str) -> Vec<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(clone)
        .args(["rev-list", "--parents", "-n", "1", sha])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn each_merge_method_leaves_the_parents_a_fresh_clone_sees() {
    let sb = Sandbox::start(Options::default()).unwrap();
    run(async {
        let c = Client::new(&sb, &sb.world.token);
        let repo = sb.world.open(REPO).unwrap();
        let mut expected = Vec::new();
        for (i, method) in ["merge", "squash", "rebase"].iter().enumerate() {
            let base = repo.refname_to_id("refs/heads/main").unwrap().to_string();
            let branch = format!("f{i}");
            repo.reference(
                &format!("refs/heads/{branch}"),
                git2::Oid::from_str(&base).unwrap(),
                false,
                "",
            )
            .unwrap();
            let c1 = sb
                .world
                .commit(REPO, &branch, &[(&format!("a{i}"), "1")], "one")
                .unwrap()
                .to_string();
            let c2 = sb
                .world
                .commit(REPO, &branch, &[(&format!("b{i}"), "2")], "two")
                .unwrap()
                .to_string();
            let pr = c
                .call(
                    "POST",
                    "/repos/acme/deploy/pulls",
                    Some(json!({"title": method, "head": branch, "base": "main"})),
                    &[],
                )
                .await;
            let n = pr.body["number"].as_u64().unwrap();
            let m = c
                .call(
                    "PUT",
                    &format!("/repos/acme/deploy/pulls/{n}/merge"),
                    Some(json!({"merge_method": method, "sha": c2})),
                    &[],
                )
                .await;
            assert_eq!(m.status, 200, "{method}: {}", m.body);
            let sha = m.body["sha"].as_str().unwrap().to_string();
            let got = c
                .call("GET", &format!("/repos/acme/deploy/pulls/{n}"), None, &[])
                .await;
            assert_eq!(got.body["merge_commit_sha"], sha.as_str(), "{method}");
            expected.push((method.to_string(), sha, base, c1, c2));
        }
        let dir = tempfile::tempdir().unwrap();
        let url =
            sb.git_url()
                .replacen("://", &format!("://x-access-token:{}@", sb.world.token), 1);
        let st = Command::new("git")
            .args(["clone", "--quiet", &format!("{url}/acme/deploy.git")])
            .arg(dir.path().join("c"))
            .status()
            .unwrap();
        assert!(st.success());
        let clone = dir.path().join("c");
        for (method, sha, base, c1, c2) in expected {
            let parents = cloned_parents(&clone, &sha);
            match method.as_str() {
                "merge" => assert_eq!(parents, [base, c2], "merge commit: base head, then PR head"),
                "squash" => assert_eq!(parents, [base], "squash: one parent"),
                _ => {
                    assert_eq!(parents.len(), 1);
                    let first = &parents[0];
                    assert_ne!(first, &c1, "rebase replays commits: new SHAs");
                    assert_eq!(
                        cloned_parents(&clone, first),
                        [base],
                        "rebase: replayed onto the base"
                    );
                }
            }
        }
    });
}

fn read<T: serde::de::DeserializeOwned>(path: PathBuf) -> T {
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn githubs_recorded_bodies_fit_the_octocrab_models_the_product_reads() {
    use octocrab::models::{self, pulls};
    let Some(dir) = crate::contracts(
        "github",
        "githubs_recorded_bodies_fit_the_octocrab_models_the_product_reads",
    ) else {
        return;
    };
    let ex = dir.join("examples");
    let _: pulls::PullRequest = read(ex.join("pull-request.json"));
    let _: Vec<pulls::PullRequest> = read(ex.join("pull-request-simple-items.json"));
    let _: pulls::PullRequest = read(ex.join("pull-request-review-request.json"));
    let _: Vec<pulls::Review> = read(ex.join("pull-request-review-items.json"));
    let _: models::CombinedStatus = read(ex.join("combined-commit-status.json"));
    let _: models::checks::ListCheckRuns = read(ex.join("check-run-paginated.json"));
    let _: models::Repository = read(ex.join("full-repository-default-response.json"));
    let _: Vec<models::Label> = read(ex.join("label-items.json"));
    let _: models::repos::Ref = read(ex.join("git-ref.json"));
    let oc = dir.join("octocrab-test-resources");
    let _: pulls::Review = read(oc.join("get_pull_request_review.json"));
    let _: models::checks::ListCheckRuns = read(oc.join("commit_check_runs.json"));
    let _: Vec<pulls::PullRequest> = read(oc.join("pull_requests_list.json"));
    // octokit fixtures: recorded exchanges with api.github.com; read each 2xx body we model.
    let fx = dir.join("octokit-fixtures");
    let calls = |f: &str| -> Vec<Value> { read(fx.join(f)) };
    let repo = &calls("get-repository.normalized-fixture.json")[0]["response"];
    let _: models::Repository = serde_json::from_value(repo.clone()).unwrap();
    let labels = &calls("add-labels-to-issue.normalized-fixture.json")[1]["response"];
    let _: Vec<models::Label> = serde_json::from_value(labels.clone()).unwrap();
    for call in calls("create-status.normalized-fixture.json") {
        if call["path"].as_str().unwrap().ends_with("/status") {
            let _: models::CombinedStatus =
                serde_json::from_value(call["response"].clone()).unwrap();
        } else if call["method"] == "post" {
            let _: models::Status = serde_json::from_value(call["response"].clone()).unwrap();
        }
    }
    for call in calls("git-refs.normalized-fixture.json") {
        match call["method"].as_str().unwrap() {
            "post" | "patch" => {
                let _: models::repos::Ref =
                    serde_json::from_value(call["response"].clone()).unwrap();
            }
            "get" => {
                let _: Vec<models::repos::Ref> =
                    serde_json::from_value(call["response"].clone()).unwrap();
            }
            _ => {}
        }
    }
    let err = &calls("errors.normalized-fixture.json")[0];
    assert_eq!(err["status"], 422);
    assert_eq!(err["response"]["message"], "Validation Failed");
}

#[test]
fn control_api_answers_unknown_routes_loudly() {
    let sb = Sandbox::start(Options::default()).unwrap();
    run(async {
        let c = Client::new(&sb, &sb.world.token);
        let a = c
            .call("POST", "/_sandbox/github/nope", Some(json!({})), &[])
            .await;
        assert_eq!(a.status, 404);
        assert_eq!(
            a.body["sandbox"],
            "the sandbox has no control route POST /_sandbox/github/nope"
        );
        let p = c
            .call(
                "PUT",
                "/_sandbox/github/repos/acme/deploy/permissions/eve",
                Some(json!({"permission": "read"})),
                &[],
            )
            .await;
        assert_eq!(p.status, 204);
        let got = c
            .call(
                "GET",
                "/repos/acme/deploy/collaborators/eve/permission",
                None,
                &[],
            )
            .await;
        assert_eq!(got.body["permission"], "read");
    });
}

#[test]
fn mergeable_state_follows_draft_protection_and_a_moving_base() {
    let sb = Sandbox::start(Options::default()).unwrap();
    sb.github.set_mergeable_reads(0);
    run(async {
        let c = Client::new(&sb, &sb.world.token);
        let state = |n: u64| {
            let c = &c;
            async move {
                let a = c
                    .call("GET", &format!("/repos/acme/deploy/pulls/{n}"), None, &[])
                    .await;
                a.body["mergeable_state"].as_str().unwrap().to_string()
            }
        };
        let repo = sb.world.open(REPO).unwrap();
        let main = repo.refname_to_id("refs/heads/main").unwrap();
        for b in ["d", "f"] {
            repo.reference(&format!("refs/heads/{b}"), main, false, "")
                .unwrap();
            sb.world.commit(REPO, b, &[(b, "1")], b).unwrap();
        }
        let open = |head: &str, draft: bool| json!({"title": "t", "head": head, "base": "main", "draft": draft});
        c.call(
            "POST",
            "/repos/acme/deploy/pulls",
            Some(open("d", true)),
            &[],
        )
        .await;
        c.call(
            "POST",
            "/repos/acme/deploy/pulls",
            Some(open("f", false)),
            &[],
        )
        .await;
        assert_eq!(state(1).await, "draft");
        let protection = Protection {
            required_approving_review_count: 1,
            required_status_checks: vec!["ci".into()],
            strict: true,
            ..Default::default()
        };
        sb.github.set_protection(REPO, "main", Some(protection));
        assert_eq!(state(2).await, "blocked");
        let merge = || {
            let c = &c;
            async move {
                let a = c
                    .call("PUT", "/repos/acme/deploy/pulls/2/merge", None, &[])
                    .await;
                (
                    a.status,
                    a.body["message"].as_str().unwrap_or("").to_string(),
                )
            }
        };
        let approvals = "At least 1 approving review is required by reviewers with write access.";
        assert_eq!(merge().await, (405, approvals.to_string()));
        sb.github
            .add_review(REPO, 2, "alice", "APPROVED", None)
            .unwrap();
        assert_eq!(
            state(2).await,
            "blocked",
            "the required check has not reported"
        );
        let ci = "Required status check \"ci\" is expected.";
        assert_eq!(merge().await, (405, ci.to_string()));
        sb.github.set_status(REPO, &Target::Pr(2), "ci", "success");
        assert_eq!(state(2).await, "clean");
        sb.world
            .commit(REPO, "main", &[("other", "x")], "someone else")
            .unwrap();
        assert_eq!(
            state(2).await,
            "behind",
            "strict protection and the base moved"
        );
    });
}

/// A strict rule and a base that moved: the merge is a 409 "out of date"; update-branch merges
/// the base into the head with git (202, GitHub's body), refuses a stale `expected_head_sha`
/// (422), and GitHub's PR shows the new head only after the head delay. A push by someone else
/// is a 409 "was modified"; without `checks`/`statuses` permissions those routes answer 403.
#[test]
fn a_strict_rule_update_branch_and_the_two_409s_answer_as_github_does() {
    let Some(dir) = crate::contracts(
        "github",
        "a_strict_rule_update_branch_and_the_two_409s_answer_as_github_does",
    ) else {
        return;
    };
    let spec = Spec::load(&dir);
    let sb = Sandbox::start(Options::default()).unwrap();
    sb.github.set_mergeable_reads(0);
    run(async {
        let c = Client::new(&sb, &sb.world.token);
        let repo = sb.world.open(REPO).unwrap();
        let main = repo.refname_to_id("refs/heads/main").unwrap();
        repo.reference("refs/heads/f", main, false, "").unwrap();
        let head = sb.world.commit(REPO, "f", &[("f", "1")], "f").unwrap();
        let head = head.to_string();
        let r = "/repos/acme/deploy";
        let opened = expect(
            &c,
            &spec,
            "POST",
            &format!("{r}/pulls"),
            Some(json!({"title": "t", "head": "f", "base": "main"})),
            201,
            "/repos/{owner}/{repo}/pulls",
        )
        .await;
        let n = opened["number"].as_u64().unwrap();
        sb.github.set_ruleset(
            REPO,
            "main",
            Some(Protection {
                strict: true,
                ..Default::default()
            }),
        );
        sb.world
            .commit(REPO, "main", &[("other", "x")], "someone else")
            .unwrap();
        let p = format!("{r}/pulls/{n}");
        let pt = "/repos/{owner}/{repo}/pulls/{pull_number}";
        let mp = "/repos/{owner}/{repo}/pulls/{pull_number}/merge";
        let behind = expect(&c, &spec, "GET", &p, None, 200, pt).await;
        assert_eq!(behind["mergeable_state"], "behind");
        let merge = json!({"sha": head});
        let late = expect(
            &c,
            &spec,
            "PUT",
            &format!("{p}/merge"),
            Some(merge.clone()),
            409,
            mp,
        )
        .await;
        assert_eq!(
            late["message"],
            "Head branch is out of date. Review and try the merge again."
        );
        let ut = "/repos/{owner}/{repo}/pulls/{pull_number}/update-branch";
        let stale = json!({"expected_head_sha": main.to_string()});
        let refused = expect(
            &c,
            &spec,
            "PUT",
            &format!("{p}/update-branch"),
            Some(stale),
            422,
            ut,
        )
        .await;
        assert_eq!(
            refused["message"],
            "expected head sha didn’t match current head ref."
        );
        sb.github
            .set_head_delay(std::time::Duration::from_secs(3600));
        let fresh = json!({"expected_head_sha": head});
        let accepted = expect(
            &c,
            &spec,
            "PUT",
            &format!("{p}/update-branch"),
            Some(fresh),
            202,
            ut,
        )
        .await;
        assert_eq!(accepted["message"], "Updating pull request branch.");
        let updated = repo.refname_to_id("refs/heads/f").unwrap();
        let merged = repo.find_commit(updated).unwrap();
        let parents: Vec<String> = merged.parent_ids().map(|p| p.to_string()).collect();
        let base = repo.refname_to_id("refs/heads/main").unwrap().to_string();
        assert_eq!(
            parents,
            [head.clone(), base],
            "the base merged into the head"
        );
        // GitHub has not caught up: the PR still shows the old head, and a merge of the new
        // one is out of date, while a merge of the old one was modified.
        let lagging = expect(&c, &spec, "GET", &p, None, 200, pt).await;
        assert_eq!(lagging["head"]["sha"], head.as_str());
        let new = json!({"sha": updated.to_string()});
        let early = expect(
            &c,
            &spec,
            "PUT",
            &format!("{p}/merge"),
            Some(new.clone()),
            409,
            mp,
        )
        .await;
        assert_eq!(early["message"], late["message"]);
        let modified = expect(
            &c,
            &spec,
            "PUT",
            &format!("{p}/merge"),
            Some(merge),
            409,
            mp,
        )
        .await;
        assert_eq!(
            modified["message"],
            "Head branch was modified. Review and try the merge again."
        );
        sb.github.set_head_delay(std::time::Duration::ZERO);
        let caught_up = expect(&c, &spec, "GET", &p, None, 200, pt).await;
        assert_eq!(caught_up["head"]["sha"], updated.to_string().as_str());
        let done = expect(&c, &spec, "PUT", &format!("{p}/merge"), Some(new), 200, mp).await;
        assert_eq!(done["merged"], true);

        // A ruleset's merge methods and required signatures, enforced at the merge.
        repo.reference(
            "refs/heads/g",
            repo.refname_to_id("refs/heads/main").unwrap(),
            false,
            "",
        )
        .unwrap();
        let g = sb
            .world
            .commit(REPO, "g", &[("g", "1")], "g")
            .unwrap()
            .to_string();
        let second = expect(
            &c,
            &spec,
            "POST",
            &format!("{r}/pulls"),
            Some(json!({"title": "g", "head": "g", "base": "main"})),
            201,
            "/repos/{owner}/{repo}/pulls",
        )
        .await;
        let p2 = format!("{r}/pulls/{}/merge", second["number"]);
        sb.github.set_ruleset(
            REPO,
            "main",
            Some(Protection {
                allowed_merge_methods: Some(vec!["merge".into(), "rebase".into()]),
                required_signatures: true,
                ..Default::default()
            }),
        );
        let listed = expect(
            &c,
            &spec,
            "GET",
            &format!("{r}/rules/branches/main"),
            None,
            200,
            "/repos/{owner}/{repo}/rules/branches/{branch}",
        )
        .await;
        assert_eq!(
            listed[0]["parameters"]["allowed_merge_methods"],
            json!(["merge", "rebase"])
        );
        assert_eq!(listed[1]["type"], "required_signatures");
        let squash = json!({"merge_method": "squash", "sha": g});
        let no_squash = expect(&c, &spec, "PUT", &p2, Some(squash), 405, mp).await;
        assert_eq!(
            no_squash["message"],
            "Squash merges are not allowed on this repository."
        );
        let merge = json!({"merge_method": "merge", "sha": g});
        let unsigned = expect(&c, &spec, "PUT", &p2, Some(merge), 405, mp).await;
        assert_eq!(
            unsigned["message"],
            "Repository rule violations found\n\nCommits must have verified signatures.\n\n"
        );

        sb.github.set_token_permission("checks", false);
        sb.github.set_token_permission("statuses", false);
        for route in ["check-runs", "status", "statuses"] {
            let a = c
                .call("GET", &format!("{r}/commits/{head}/{route}"), None, &[])
                .await;
            assert_eq!(a.status, 403, "{route}");
            assert_eq!(a.body["message"], "Resource not accessible by integration");
        }
        sb.github.set_token_permission("checks", true);
        let a = c
            .call("GET", &format!("{r}/commits/{head}/check-runs"), None, &[])
            .await;
        assert_eq!(a.status, 200);
    });
}
