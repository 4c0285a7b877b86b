//! The REST routes. Handlers lock the state, read or move the bare repo with git2, ask
//! [`super::rules`] what GitHub decides, and answer with bodies from [`super::json`] and GitHub's
//! status codes and messages.

// Handlers answer `Result<Response, Response>` so `?` can return GitHub errors; the size is fine.
#![allow(clippy::result_large_err)]

use super::git::{self, Method};
use super::json::{self, Urls};
use super::rules;
use super::{error, now, CheckRun, Comment, CommitStatus, GitHub, Pull, State, TOKEN_USER};
use axum::extract::{Path, Query, State as S};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use git2::Repository;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type G = S<Arc<GitHub>>;
type Q = Query<HashMap<String, String>>;
type Res = Result<Response, Response>;

/// Every REST route the emulator serves; [`super::router`] adds the 404 that names any other.
pub(super) fn routes(gh: Arc<GitHub>) -> axum::Router {
    axum::Router::new()
        .route("/rate_limit", get(rate_limit))
        .route("/repos/{o}/{r}", get(repo_get))
        .route("/repos/{o}/{r}/branches/{b}", get(branch_get))
        .route(
            "/repos/{o}/{r}/branches/{b}/protection",
            get(protection_get),
        )
        .route("/repos/{o}/{r}/rules/branches/{b}", get(rules_get))
        .route("/repos/{o}/{r}/git/ref/{*name}", get(ref_get))
        .route(
            "/repos/{o}/{r}/git/matching-refs/{*name}",
            get(refs_matching),
        )
        .route("/repos/{o}/{r}/git/refs", post(ref_create))
        .route(
            "/repos/{o}/{r}/git/refs/{*name}",
            axum::routing::patch(ref_update).delete(ref_delete),
        )
        .route("/repos/{o}/{r}/pulls", get(pulls_list).post(pull_create))
        .route("/repos/{o}/{r}/pulls/{n}", get(pull_get).patch(pull_update))
        .route(
            "/repos/{o}/{r}/pulls/{n}/merge",
            get(pull_merged).put(pull_merge),
        )
        .route(
            "/repos/{o}/{r}/pulls/{n}/update-branch",
            axum::routing::put(pull_update_branch),
        )
        .route("/repos/{o}/{r}/pulls/{n}/commits", get(pull_commits))
        .route("/repos/{o}/{r}/pulls/{n}/reviews", get(reviews_list))
        .route(
            "/repos/{o}/{r}/pulls/{n}/requested_reviewers",
            get(reviewers_get).post(reviewers_add),
        )
        .route("/repos/{o}/{r}/issues/{n}/labels", post(labels_add))
        .route("/repos/{o}/{r}/issues/{n}/assignees", post(assignees_add))
        .route(
            "/repos/{o}/{r}/issues/{n}/comments",
            get(comments_list).post(comment_create),
        )
        .route("/repos/{o}/{r}/statuses/{sha}", post(status_create))
        .route("/repos/{o}/{r}/commits/{rf}", get(commit_get))
        .route("/repos/{o}/{r}/commits/{rf}/status", get(combined_status))
        .route("/repos/{o}/{r}/commits/{rf}/statuses", get(statuses_list))
        .route("/repos/{o}/{r}/commits/{rf}/check-runs", get(check_runs))
        .route("/repos/{o}/{r}/commits/{rf}/pulls", get(commit_pulls))
        .route("/repos/{o}/{r}/contents/{*path}", get(contents_get))
        .route(
            "/repos/{o}/{r}/collaborators/{u}/permission",
            get(permission_get),
        )
        .with_state(gh)
}

fn not_found() -> Response {
    error(404, "Not Found")
}

fn validation(message: &str) -> Response {
    let body = json!({
        "message": "Validation Failed",
        "errors": [{"resource": "PullRequest", "code": "custom", "message": message}],
        "documentation_url": "https://docs.github.com/rest", "status": "422"
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn ok(v: Value) -> Res {
    Ok(Json(v).into_response())
}

fn created(v: Value) -> Res {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

fn open_repo(gh: &GitHub, o: &str, r: &str) -> Result<(String, Repository), Response> {
    let full = format!("{o}/{r}");
    if !gh.world.has_repo(&full) {
        return Err(not_found());
    }
    let repo = gh.world.open(&full).map_err(|_| not_found())?;
    Ok((full, repo))
}

fn default_branch(repo: &Repository) -> String {
    repo.find_reference("HEAD")
        .ok()
        .and_then(|h| {
            h.symbolic_target()
                .ok()
                .flatten()
                .map(|t| t.trim_start_matches("refs/heads/").to_string())
        })
        .unwrap_or_else(|| "main".into())
}

fn resolve(repo: &Repository, rf: &str) -> Option<String> {
    repo.revparse_single(rf)
        .ok()
        .and_then(|o| o.peel_to_commit().ok())
        .map(|c| c.id().to_string())
}

/// Answers one page of `items` with GitHub's `Link` header (`per_page` default 30, at most 100).
fn paginate(gh: &GitHub, path: &str, q: &HashMap<String, String>, items: Vec<Value>) -> Res {
    let per = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let last = items.len().div_ceil(per).max(1);
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per).take(per).collect();
    let mut resp = Json(Value::Array(slice)).into_response();
    let others: String = q
        .iter()
        .filter(|(k, _)| *k != "page" && *k != "per_page")
        .map(|(k, v)| format!("&{k}={v}"))
        .collect();
    let link = |p: usize, rel: &str| {
        format!(
            "<{}{path}?per_page={per}&page={p}{others}>; rel=\"{rel}\"",
            gh.api()
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    if !links.is_empty() {
        resp.headers_mut()
            .insert("link", HeaderValue::from_str(&links.join(", ")).unwrap());
    }
    Ok(resp)
}

async fn rate_limit(S(gh): G) -> Res {
    let rem = gh.remaining();
    let reset = chrono::Utc::now().timestamp() + 3600;
    let core = json!({"limit": 5000, "remaining": rem, "reset": reset, "used": 5000 - rem, "resource": "core"});
    ok(json!({"resources": {"core": core, "search": core}, "rate": core}))
}

async fn repo_get(S(gh): G, Path((o, r)): Path<(String, String)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let api = gh.api();
    ok(json::repository(
        &Urls {
            api: &api,
            git: &gh.git(),
        },
        &full,
        &default_branch(&repo),
    ))
}

async fn branch_get(S(gh): G, Path((o, r, b)): Path<(String, String, String)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let sha = git::branch_sha(&repo, &b).ok_or_else(|| error(404, "Branch not found"))?;
    let api = gh.api();
    let web = super::web_of(&api);
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let c = repo
        .find_commit(git2::Oid::from_str(&sha).unwrap())
        .map_err(|_| not_found())?;
    let st = gh.state.lock().unwrap();
    let prot = st.protection.get(&(full.clone(), b.clone())).cloned();
    let purl = format!("{api}/repos/{full}/branches/{b}/protection");
    ok(json!({
        "name": b, "commit": json::commit(&u, &full, &c),
        "_links": {"html": format!("{web}/{full}/tree/{b}"), "self": format!("{api}/repos/{full}/branches/{b}")},
        "protected": prot.is_some(),
        "protection": protection_json(&api, &full, &b, prot.as_ref()),
        "protection_url": purl,
    }))
}

fn protection_json(api: &str, full: &str, b: &str, p: Option<&super::Protection>) -> Value {
    let url = format!("{api}/repos/{full}/branches/{b}/protection");
    let Some(p) = p else {
        return json!({"enabled": false, "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []}});
    };
    json!({
        "url": url, "enabled": true,
        "required_status_checks": {
            "url": format!("{url}/required_status_checks"), "enforcement_level": "non_admins",
            "strict": p.strict, "contexts": p.required_status_checks,
            "contexts_url": format!("{url}/required_status_checks/contexts"),
            "checks": p.required_status_checks.iter().map(|c| json!({"context": c, "app_id": null})).collect::<Vec<_>>()
        },
        "required_pull_request_reviews": {
            "url": format!("{url}/required_pull_request_reviews"),
            "dismiss_stale_reviews": p.dismiss_stale_reviews, "require_code_owner_reviews": p.require_code_owner_review,
            "required_approving_review_count": p.required_approving_review_count,
            "require_last_push_approval": false
        },
        "enforce_admins": {"url": format!("{url}/enforce_admins"), "enabled": true},
        "required_linear_history": {"enabled": false}, "allow_force_pushes": {"enabled": false},
        "allow_deletions": {"enabled": false}, "required_conversation_resolution": {"enabled": false},
        "block_creations": {"enabled": false}, "lock_branch": {"enabled": false},
        "allow_fork_syncing": {"enabled": false}
    })
}

async fn protection_get(S(gh): G, Path((o, r, b)): Path<(String, String, String)>) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let st = gh.state.lock().unwrap();
    // Reading classic protection needs administration: read, which GITHUB_TOKEN cannot have
    // (docs.github.com REST "Get branch protection": fine-grained "Administration" repository
    // permission (read)); GitHub answers an integration token without it like this.
    if !st.admin_token {
        return Err(error(403, "Resource not accessible by integration"));
    }
    let p = st
        .protection
        .get(&(full.clone(), b.clone()))
        .ok_or_else(|| error(404, "Branch not protected"))?;
    ok(protection_json(&gh.api(), &full, &b, Some(p)))
}

async fn rules_get(S(gh): G, Path((o, r, b)): Path<(String, String, String)>, q: Q) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    // Readable with metadata: read (docs.github.com REST "Get rules for a branch"): the rules of
    // every active ruleset that targets the branch, each with its source.
    let rules = gh
        .state
        .lock()
        .unwrap()
        .rulesets
        .get(&(full.clone(), b.clone()))
        .map(|p| ruleset_rules(&full, p))
        .unwrap_or_default();
    paginate(
        &gh,
        &format!("/repos/{o}/{r}/rules/branches/{b}"),
        &q,
        rules,
    )
}

/// A ruleset's requirements as `/rules/branches/{b}` lists them (`repository-rule-detailed`).
fn ruleset_rules(full: &str, p: &super::Protection) -> Vec<Value> {
    let source =
        json!({"ruleset_source_type": "Repository", "ruleset_source": full, "ruleset_id": 1});
    let with = |mut rule: Value| {
        for (k, v) in source.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rule
    };
    let mut pull_request = json!({
        "type": "pull_request",
        "parameters": {
            "required_approving_review_count": p.required_approving_review_count,
            "dismiss_stale_reviews_on_push": p.dismiss_stale_reviews,
            "require_code_owner_review": p.require_code_owner_review, "require_last_push_approval": false,
            "required_review_thread_resolution": false
        }
    });
    if let Some(methods) = &p.allowed_merge_methods {
        pull_request["parameters"]["allowed_merge_methods"] = json!(methods);
    }
    let mut rules = vec![with(pull_request)];
    if p.required_signatures {
        rules.push(with(json!({"type": "required_signatures"})));
    }
    if !p.required_status_checks.is_empty() {
        rules.push(with(json!({
            "type": "required_status_checks",
            "parameters": {
                "strict_required_status_checks_policy": p.strict,
                "required_status_checks": p.required_status_checks.iter().map(|c| json!({"context": c})).collect::<Vec<_>>()
            }
        })));
    }
    rules
}

async fn ref_get(S(gh): G, Path((o, r, name)): Path<(String, String, String)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let full_name = format!("refs/{name}");
    let id = repo.refname_to_id(&full_name).map_err(|_| not_found())?;
    ok(ref_json(&gh, &full, &full_name, id))
}

async fn refs_matching(S(gh): G, Path((o, r, name)): Path<(String, String, String)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let prefix = format!("refs/{name}");
    let api = gh.api();
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let mut out = Vec::new();
    for rf in repo.references().map_err(|_| not_found())?.flatten() {
        if let (Ok(n), Some(t)) = (rf.name(), rf.target()) {
            if n.starts_with(&prefix) {
                out.push(json::git_ref(&u, &full, n, &t.to_string()));
            }
        }
    }
    ok(Value::Array(out))
}

fn ref_error(message: &str) -> Response {
    error(422, message)
}

async fn ref_create(S(gh): G, Path((o, r)): Path<(String, String)>, Json(b): Json<Value>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let name = b["ref"].as_str().unwrap_or("");
    let sha = b["sha"].as_str().unwrap_or("");
    if !name.starts_with("refs/") || name.matches('/').count() < 2 {
        return Err(ref_error(
            "Reference name must start with 'refs/' and have at least two slashes.",
        ));
    }
    let oid = git2::Oid::from_str(sha).map_err(|_| ref_error("Object does not exist"))?;
    if repo.find_commit(oid).is_err() {
        return Err(ref_error("Object does not exist"));
    }
    if repo.find_reference(name).is_ok() {
        return Err(ref_error("Reference already exists"));
    }
    repo.reference(name, oid, false, "create ref")
        .map_err(|e| ref_error(e.message()))?;
    let api = gh.api();
    created(json::git_ref(
        &Urls {
            api: &api,
            git: &gh.git(),
        },
        &full,
        name,
        sha,
    ))
}

async fn ref_update(
    S(gh): G,
    Path((o, r, name)): Path<(String, String, String)>,
    Json(b): Json<Value>,
) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let full_name = format!("refs/{name}");
    let cur = repo
        .refname_to_id(&full_name)
        .map_err(|_| ref_error("Reference does not exist"))?;
    let oid = git2::Oid::from_str(b["sha"].as_str().unwrap_or(""))
        .map_err(|_| ref_error("Object does not exist"))?;
    if repo.find_commit(oid).is_err() {
        return Err(ref_error("Object does not exist"));
    }
    let force = b["force"].as_bool().unwrap_or(false);
    if !force && !git::contains(&repo, &oid.to_string(), &cur.to_string()) {
        return Err(ref_error("Update is not a fast forward"));
    }
    repo.reference(&full_name, oid, true, "update ref")
        .map_err(|e| ref_error(e.message()))?;
    ok(ref_json(&gh, &full, &full_name, oid))
}

async fn ref_delete(S(gh): G, Path((o, r, name)): Path<(String, String, String)>) -> Res {
    let (_full, repo) = open_repo(&gh, &o, &r)?;
    let mut rf = repo
        .find_reference(&format!("refs/{name}"))
        .map_err(|_| ref_error("Reference does not exist"))?;
    rf.delete().map_err(|e| ref_error(e.message()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn find_pull(st: &State, full: &str, n: u64) -> Result<usize, Response> {
    st.pulls
        .iter()
        .position(|p| p.repo == full && p.number == n)
        .ok_or_else(not_found)
}

/// The PR body: `pull-request` when `merge` carries the mergeability, else `pull-request-simple`.
fn pull_json(
    gh: &GitHub,
    st: &State,
    repo: &Repository,
    p: &Pull,
    merge: Option<(Option<bool>, &str)>,
) -> Value {
    let api = gh.api();
    let web = super::web_of(&api);
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let full = &p.repo;
    let (owner, _) = full.split_once('/').unwrap_or((full, full));
    let r = format!("{api}/repos/{full}");
    let n = p.number;
    let db = default_branch(repo);
    let label_list: Vec<Value> = p.labels.iter().map(|l| json::label(&u, full, l)).collect();
    let users = |v: &[String]| v.iter().map(|l| json::user(&u, l)).collect::<Vec<_>>();
    let side = |rf: &str, sha: &str| {
        json!({"label": format!("{owner}:{rf}"), "ref": rf, "sha": sha,
               "user": json::user(&u, owner), "repo": json::repository(&u, full, &db)})
    };
    let mut v = json!({
        "url": format!("{r}/pulls/{n}"), "id": p.id, "node_id": json::node_id("PR", p.id),
        "html_url": format!("{web}/{full}/pull/{n}"),
        "diff_url": format!("{web}/{full}/pull/{n}.diff"),
        "patch_url": format!("{web}/{full}/pull/{n}.patch"),
        "issue_url": format!("{r}/issues/{n}"),
        "commits_url": format!("{r}/pulls/{n}/commits"),
        "review_comments_url": format!("{r}/pulls/{n}/comments"),
        "review_comment_url": format!("{r}/pulls/comments{{/number}}"),
        "comments_url": format!("{r}/issues/{n}/comments"),
        "statuses_url": format!("{r}/statuses/{}", p.head_sha),
        "number": n, "state": if p.open { "open" } else { "closed" }, "locked": false,
        "title": p.title, "user": json::user(&u, &p.user), "body": p.body,
        "labels": label_list, "milestone": null, "active_lock_reason": null,
        "created_at": p.created_at, "updated_at": p.updated_at, "closed_at": p.closed_at,
        "merged_at": p.merged_at, "merge_commit_sha": p.merge_commit_sha,
        "assignee": p.assignees.first().map(|a| json::user(&u, a)),
        "assignees": users(&p.assignees), "requested_reviewers": users(&p.requested_reviewers),
        "requested_teams": p.requested_teams.iter().map(|t| json::team(&u, &p.repo, t)).collect::<Vec<_>>(),
        "head": side(&p.head_ref, &p.head_sha), "base": side(&p.base_ref, &p.base_sha),
        "author_association": "CONTRIBUTOR", "auto_merge": null, "draft": p.draft,
    });
    v["_links"] = json!({
            "self": {"href": format!("{r}/pulls/{n}")},
            "html": {"href": format!("{web}/{full}/pull/{n}")},
            "issue": {"href": format!("{r}/issues/{n}")},
            "comments": {"href": format!("{r}/issues/{n}/comments")},
            "review_comments": {"href": format!("{r}/pulls/{n}/comments")},
            "review_comment": {"href": format!("{r}/pulls/comments{{/number}}")},
            "commits": {"href": format!("{r}/pulls/{n}/commits")},
            "statuses": {"href": format!("{r}/statuses/{}", p.head_sha)}
    });
    if let Some((mergeable, state)) = merge {
        let commits = git::pr_commits(repo, &p.base_sha, &p.head_sha)
            .map(|c| c.len())
            .unwrap_or(0);
        let (add, del, files) =
            git::diff_stats(repo, &p.base_sha, &p.head_sha).unwrap_or((0, 0, 0));
        let comments = st
            .comments
            .iter()
            .filter(|c| c.repo == *full && c.number == n)
            .count();
        let extra = json!({
            "merged": p.merged, "mergeable": mergeable, "rebaseable": mergeable,
            "mergeable_state": state,
            "merged_by": if p.merged { json::user(&u, TOKEN_USER) } else { Value::Null },
            "comments": comments, "review_comments": 0, "maintainer_can_modify": false,
            "commits": commits, "additions": add, "deletions": del, "changed_files": files
        });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
    }
    v
}

async fn pulls_list(S(gh): G, Path((o, r)): Path<(String, String)>, q: Q) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let state = q.get("state").map(String::as_str).unwrap_or("open");
    let mut items = Vec::new();
    for i in (0..st.pulls.len()).rev() {
        rules::refresh(&repo, &mut st, i);
        let p = &st.pulls[i];
        let head_ok = q.get("head").is_none_or(|h| {
            let (ho, hb) = h.split_once(':').unwrap_or((&o, h));
            ho == o && hb == p.head_ref
        });
        let state_ok = match state {
            "all" => true,
            "closed" => !p.open,
            _ => p.open,
        };
        if p.repo == full && head_ok && state_ok && q.get("base").is_none_or(|b| *b == p.base_ref) {
            items.push(pull_json(&gh, &st, &repo, p, None));
        }
    }
    drop(st);
    paginate(&gh, &format!("/repos/{o}/{r}/pulls"), &q, items)
}

async fn pull_create(S(gh): G, Path((o, r)): Path<(String, String)>, Json(b): Json<Value>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let head = b["head"].as_str().unwrap_or("");
    let head_ref = head
        .split_once(':')
        .map(|(_, h)| h)
        .unwrap_or(head)
        .to_string();
    let base_ref = b["base"].as_str().unwrap_or("").to_string();
    let title = b["title"].as_str().unwrap_or("").to_string();
    let Some(head_sha) = git::branch_sha(&repo, &head_ref) else {
        let body = json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
                          "documentation_url": "https://docs.github.com/rest", "status": "422"});
        return Err((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    };
    let Some(base_sha) = git::branch_sha(&repo, &base_ref) else {
        let body = json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "base", "code": "invalid"}],
                          "documentation_url": "https://docs.github.com/rest", "status": "422"});
        return Err((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    };
    if title.is_empty() {
        return Err(validation("title wasn't supplied."));
    }
    let mut st = gh.state.lock().unwrap();
    // peter-evans/create-pull-request#1175, #3979: the answer GITHUB_TOKEN gets with the
    // repository's (or organization's) "Allow GitHub Actions to create and approve pull
    // requests" off, the default of new repositories.
    if !st.actions_may_open_prs {
        let body = json!({"message": "GitHub Actions is not permitted to create or approve pull requests.",
                          "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "403"});
        return Err((StatusCode::FORBIDDEN, Json(body)).into_response());
    }
    if st
        .pulls
        .iter()
        .any(|p| p.repo == full && p.open && p.head_ref == head_ref && p.base_ref == base_ref)
    {
        return Err(validation(&format!(
            "A pull request already exists for {o}:{head_ref}."
        )));
    }
    if git::pr_commits(&repo, &base_sha, &head_sha)
        .map(|c| c.is_empty())
        .unwrap_or(true)
    {
        return Err(validation(&format!(
            "No commits between {base_ref} and {head_ref}"
        )));
    }
    let number = {
        let n = st.numbers.entry(full.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let id = st.id();
    let t = now();
    let p = Pull {
        repo: full,
        number,
        id,
        title,
        body: b["body"].as_str().map(str::to_string),
        user: TOKEN_USER.into(),
        head_ref,
        base_ref,
        head_sha,
        base_sha,
        open: true,
        draft: b["draft"].as_bool().unwrap_or(false),
        merged: false,
        merged_at: None,
        merge_commit_sha: None,
        closed_at: None,
        created_at: t.clone(),
        updated_at: t,
        labels: vec![],
        assignees: vec![],
        requested_reviewers: vec![],
        requested_teams: vec![],
        computed_for: None,
        pending_reads: 0,
        pushed: None,
    };
    st.pulls.push(p.clone());
    let v = pull_json(&gh, &st, &repo, &p, Some((None, "unknown")));
    created(v)
}

async fn pull_get(S(gh): G, Path((o, r, n)): Path<(String, String, u64)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    rules::refresh(&repo, &mut st, i);
    let m = rules::mergeability(&mut st, &repo, i);
    ok(pull_json(&gh, &st, &repo, &st.pulls[i], Some(m)))
}

async fn pull_update(
    S(gh): G,
    Path((o, r, n)): Path<(String, String, u64)>,
    Json(b): Json<Value>,
) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    rules::refresh(&repo, &mut st, i);
    let p = &mut st.pulls[i];
    if let Some(t) = b["title"].as_str() {
        p.title = t.into();
    }
    if let Some(t) = b["body"].as_str() {
        p.body = Some(t.into());
    }
    match b["state"].as_str() {
        Some("closed") if p.open => {
            p.open = false;
            p.closed_at = Some(now());
        }
        Some("open") if !p.open && !p.merged => {
            p.open = true;
            p.closed_at = None;
        }
        _ => {}
    }
    p.updated_at = now();
    let m = rules::mergeability(&mut st, &repo, i);
    ok(pull_json(&gh, &st, &repo, &st.pulls[i], Some(m)))
}

async fn pull_merged(S(gh): G, Path((o, r, n)): Path<(String, String, u64)>) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    if st.pulls[i].merged {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found())
    }
}

async fn pull_merge(
    S(gh): G,
    caller: Option<axum::Extension<super::bypass::Caller>>,
    Path((o, r, n)): Path<(String, String, u64)>,
    body: Option<Json<Value>>,
) -> Res {
    let caller = caller.map(|axum::Extension(c)| c);
    let b = body.map(|Json(v)| v).unwrap_or(Value::Null);
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    rules::refresh(&repo, &mut st, i);
    let method = match b["merge_method"].as_str().unwrap_or("merge") {
        "merge" => Some(Method::Merge),
        "squash" => Some(Method::Squash),
        "rebase" => Some(Method::Rebase),
        _ => None,
    };
    let base = st.pulls[i].base_ref.clone();
    if super::graphql::required(&st, &full, &base) {
        return Err(error(405, super::THROUGH_THE_QUEUE));
    }
    let method = super::bypass::as_caller(&mut st, &full, &base, caller.as_ref(), |st| {
        rules::may_merge(st, &repo, i, method, b["sha"].as_str())
    })
    .map_err(|(status, why)| error(status, &why))?;
    let p = st.pulls[i].clone();
    let (title, message) = match method {
        Method::Merge => (
            format!("Merge pull request #{n} from {o}/{}", p.head_ref),
            p.title.clone(),
        ),
        _ => {
            let msgs: Vec<String> = git::pr_commits(&repo, &p.base_sha, &p.head_sha)
                .unwrap_or_default()
                .iter()
                .filter_map(|id| repo.find_commit(*id).ok())
                .map(|c| format!("* {}", c.summary().ok().flatten().unwrap_or("")))
                .collect();
            (format!("{} (#{n})", p.title), msgs.join("\n\n"))
        }
    };
    let title = b["commit_title"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(title);
    let message = b["commit_message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(message);
    let merged = git::merge(
        &repo,
        method,
        &p.base_ref,
        &p.base_sha,
        &p.head_sha,
        &title,
        &message,
    )
    .map_err(|e| error(500, &e.to_string()))?;
    let (sha, _replayed) = match merged {
        Ok(x) => x,
        Err(msg) => return Err(error(405, &msg)),
    };
    st.pulls[i].mark_merged(&sha);
    ok(json!({"sha": sha, "merged": true, "message": "Pull Request successfully merged"}))
}

/// `PUT /pulls/{n}/update-branch` (docs.github.com REST "Update a pull request branch"): merges
/// the base head into the head branch with a merge commit, as GitHub's "Update branch" button
/// does, and answers 202; 422 when `expected_head_sha` is not the PR's head or the merge
/// conflicts, with the messages GitHub sends (quoted in API clients handling them, e.g.
/// "expected head sha didn’t match current head ref.").
async fn pull_update_branch(
    S(gh): G,
    Path((o, r, n)): Path<(String, String, u64)>,
    body: Option<Json<Value>>,
) -> Res {
    let b = body.map(|Json(v)| v).unwrap_or(Value::Null);
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    rules::refresh(&repo, &mut st, i);
    let p = st.pulls[i].clone();
    let unprocessable = |m: &str| {
        let body = json!({"message": m, "documentation_url": "https://docs.github.com/rest/pulls/pulls#update-a-pull-request-branch", "status": "422"});
        (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
    };
    if !p.open {
        return Err(unprocessable("Pull request is closed."));
    }
    if b["expected_head_sha"]
        .as_str()
        .is_some_and(|e| e != p.head_sha)
    {
        return Err(unprocessable(
            "expected head sha didn’t match current head ref.",
        ));
    }
    let message = format!("Merge branch '{}' into {}", p.base_ref, p.head_ref);
    match git::update_branch(&repo, &p.head_ref, &p.head_sha, &p.base_sha, &message)
        .map_err(|e| error(500, &e.to_string()))?
    {
        Ok(_) => {}
        Err(why) => return Err(unprocessable(why)),
    }
    drop(st);
    let web = super::web_of(&gh.api());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "Updating pull request branch.", "url": format!("{web}/repos/{full}/pulls/{n}")})),
    )
        .into_response())
}

async fn pull_commits(S(gh): G, Path((o, r, n)): Path<(String, String, u64)>, q: Q) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    rules::refresh(&repo, &mut st, i);
    let p = st.pulls[i].clone();
    drop(st);
    let api = gh.api();
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let items: Vec<Value> = git::pr_commits(&repo, &p.base_sha, &p.head_sha)
        .unwrap_or_default()
        .iter()
        .filter_map(|id| repo.find_commit(*id).ok())
        .map(|c| json::commit(&u, &full, &c))
        .collect();
    paginate(&gh, &format!("/repos/{o}/{r}/pulls/{n}/commits"), &q, items)
}

fn review_json(gh: &GitHub, r: &super::Review) -> Value {
    let api = gh.api();
    let web = super::web_of(&api);
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let pr = format!("{api}/repos/{}/pulls/{}", r.repo, r.number);
    let html = format!(
        "{web}/{}/pull/{}#pullrequestreview-{}",
        r.repo, r.number, r.id
    );
    json!({
        "id": r.id, "node_id": json::node_id("PRR", r.id), "user": json::user(&u, &r.user),
        "body": r.body, "state": r.state, "html_url": html, "pull_request_url": pr,
        "_links": {"html": {"href": html}, "pull_request": {"href": pr}},
        "submitted_at": r.submitted_at, "commit_id": r.commit_id, "author_association": "COLLABORATOR"
    })
}

async fn reviews_list(S(gh): G, Path((o, r, n)): Path<(String, String, u64)>, q: Q) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let st = gh.state.lock().unwrap();
    find_pull(&st, &full, n)?;
    let items: Vec<Value> = st
        .reviews
        .iter()
        .filter(|rv| rv.repo == full && rv.number == n)
        .map(|rv| review_json(&gh, rv))
        .collect();
    drop(st);
    paginate(&gh, &format!("/repos/{o}/{r}/pulls/{n}/reviews"), &q, items)
}

async fn reviewers_get(S(gh): G, Path((o, r, n)): Path<(String, String, u64)>) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    let api = gh.api();
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let users: Vec<Value> = st.pulls[i]
        .requested_reviewers
        .iter()
        .map(|l| json::user(&u, l))
        .collect();
    let teams: Vec<Value> = st.pulls[i]
        .requested_teams
        .iter()
        .map(|t| json::team(&u, &full, t))
        .collect();
    ok(json!({"users": users, "teams": teams}))
}

async fn reviewers_add(
    S(gh): G,
    Path((o, r, n)): Path<(String, String, u64)>,
    Json(b): Json<Value>,
) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    let wanted: Vec<String> = strings(&b["reviewers"]);
    let teams: Vec<String> = strings(&b["team_reviewers"]);
    let not_collaborator = || {
        validation(&format!(
            "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {full} repository."
        ))
    };
    if teams.iter().any(|t| !st.teams.contains(t)) {
        return Err(not_collaborator());
    }
    for w in &wanted {
        if *w == st.pulls[i].user {
            return Err(validation(
                "Review cannot be requested from pull request author.",
            ));
        }
        if rules::permission(&st, &full, w) == "none" {
            return Err(not_collaborator());
        }
    }
    for w in wanted {
        if !st.pulls[i].requested_reviewers.contains(&w) {
            st.pulls[i].requested_reviewers.push(w);
        }
    }
    for t in teams {
        if !st.pulls[i].requested_teams.contains(&t) {
            st.pulls[i].requested_teams.push(t);
        }
    }
    rules::refresh(&repo, &mut st, i);
    created(pull_json(&gh, &st, &repo, &st.pulls[i], None))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn labels_add(
    S(gh): G,
    Path((o, r, n)): Path<(String, String, u64)>,
    Json(b): Json<Value>,
) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    let wanted = if b.is_array() {
        strings(&b)
    } else {
        strings(&b["labels"])
    };
    for l in wanted {
        if !st.pulls[i].labels.contains(&l) {
            st.pulls[i].labels.push(l);
        }
    }
    let api = gh.api();
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    ok(Value::Array(
        st.pulls[i]
            .labels
            .iter()
            .map(|l| json::label(&u, &full, l))
            .collect(),
    ))
}

async fn assignees_add(
    S(gh): G,
    Path((o, r, n)): Path<(String, String, u64)>,
    Json(b): Json<Value>,
) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let mut st = gh.state.lock().unwrap();
    let i = find_pull(&st, &full, n)?;
    for a in strings(&b["assignees"]) {
        // GitHub silently ignores users who cannot be assigned.
        if rules::permission(&st, &full, &a) != "none" && !st.pulls[i].assignees.contains(&a) {
            st.pulls[i].assignees.push(a);
        }
    }
    rules::refresh(&repo, &mut st, i);
    created(pull_json(&gh, &st, &repo, &st.pulls[i], None))
}

fn comment_json(gh: &GitHub, c: &Comment) -> Value {
    let api = gh.api();
    let web = super::web_of(&api);
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    json!({
        "id": c.id, "node_id": json::node_id("IC", c.id),
        "url": format!("{api}/repos/{}/issues/comments/{}", c.repo, c.id),
        "html_url": format!("{web}/{}/pull/{}#issuecomment-{}", c.repo, c.number, c.id),
        "issue_url": format!("{api}/repos/{}/issues/{}", c.repo, c.number),
        "body": c.body, "user": json::user(&u, &c.user),
        "created_at": c.created_at, "updated_at": c.created_at, "author_association": "COLLABORATOR"
    })
}

/// Adds a comment as `user` (the token's bot through REST, anyone through the control API).
pub(super) fn add_comment(
    gh: &GitHub,
    full: &str,
    n: u64,
    user: &str,
    body: &str,
) -> Result<Value, Response> {
    let mut st = gh.state.lock().unwrap();
    find_pull(&st, full, n)?;
    let id = st.id();
    let c = Comment {
        id,
        repo: full.into(),
        number: n,
        user: user.into(),
        body: body.into(),
        created_at: now(),
    };
    st.comments.push(c.clone());
    Ok(comment_json(gh, &c))
}

async fn comment_create(
    S(gh): G,
    Path((o, r, n)): Path<(String, String, u64)>,
    Json(b): Json<Value>,
) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let body = b["body"]
        .as_str()
        .ok_or_else(|| error(422, "body wasn't supplied."))?;
    created(add_comment(&gh, &full, n, TOKEN_USER, body)?)
}

async fn comments_list(S(gh): G, Path((o, r, n)): Path<(String, String, u64)>, q: Q) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let st = gh.state.lock().unwrap();
    find_pull(&st, &full, n)?;
    let since = q.get("since").cloned().unwrap_or_default();
    let items: Vec<Value> = st
        .comments
        .iter()
        .filter(|c| c.repo == full && c.number == n && c.created_at >= since)
        .map(|c| comment_json(&gh, c))
        .collect();
    drop(st);
    paginate(
        &gh,
        &format!("/repos/{o}/{r}/issues/{n}/comments"),
        &q,
        items,
    )
}

fn status_json(gh: &GitHub, full: &str, sha: &str, s: &CommitStatus, creator: bool) -> Value {
    let api = gh.api();
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let mut v = json!({
        "url": format!("{api}/repos/{full}/statuses/{sha}"), "avatar_url": null, "id": s.id,
        "node_id": json::node_id("SC", s.id), "state": s.state, "description": s.description,
        "target_url": s.target_url, "context": s.context, "created_at": s.created_at,
        "updated_at": s.created_at,
    });
    if creator {
        v["creator"] = json::user(&u, TOKEN_USER);
    }
    v
}

/// Records a commit status on `sha`, replacing the one with the same context.
pub(super) fn set_status(gh: &GitHub, full: &str, sha: &str, mut s: CommitStatus) -> CommitStatus {
    let mut st = gh.state.lock().unwrap();
    s.id = st.id();
    s.created_at = now();
    let list = st.statuses.entry((full.into(), sha.into())).or_default();
    list.retain(|x| x.context != s.context);
    list.push(s.clone());
    s
}

async fn status_create(
    S(gh): G,
    Path((o, r, sha)): Path<(String, String, String)>,
    Json(b): Json<Value>,
) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let sha = resolve(&repo, &sha).ok_or_else(|| error(422, "No commit found for SHA"))?;
    let state = b["state"].as_str().unwrap_or("");
    if !matches!(state, "error" | "failure" | "pending" | "success") {
        return Err(error(422, "Validation Failed"));
    }
    let s = CommitStatus {
        id: 0,
        context: b["context"].as_str().unwrap_or("default").into(),
        state: state.into(),
        description: b["description"].as_str().map(str::to_string),
        target_url: b["target_url"].as_str().map(str::to_string),
        created_at: String::new(),
    };
    let s = set_status(&gh, &full, &sha, s);
    created(status_json(&gh, &full, &sha, &s, true))
}

async fn commit_get(S(gh): G, Path((o, r, rf)): Path<(String, String, String)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let sha =
        resolve(&repo, &rf).ok_or_else(|| error(422, &format!("No commit found for SHA: {rf}")))?;
    let c = repo
        .find_commit(git2::Oid::from_str(&sha).unwrap())
        .map_err(|_| not_found())?;
    let api = gh.api();
    ok(json::commit(
        &Urls {
            api: &api,
            git: &gh.git(),
        },
        &full,
        &c,
    ))
}

/// 403 when the token lacks repository permission `name` (docs.github.com REST "Get the combined
/// status for a specific reference" and "List commit statuses": fine-grained "Commit statuses"
/// (read); "List check runs for a Git reference": "Checks" (read)), in GitHub's words for an
/// integration token.
fn needs(gh: &GitHub, name: &str) -> Result<(), Response> {
    if gh.state.lock().unwrap().denied.iter().any(|d| d == name) {
        return Err(error(403, "Resource not accessible by integration"));
    }
    Ok(())
}

async fn combined_status(S(gh): G, Path((o, r, rf)): Path<(String, String, String)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    needs(&gh, "statuses")?;
    let sha =
        resolve(&repo, &rf).ok_or_else(|| error(422, &format!("No commit found for SHA: {rf}")))?;
    let st = gh.state.lock().unwrap();
    let list = st
        .statuses
        .get(&(full.clone(), sha.clone()))
        .cloned()
        .unwrap_or_default();
    drop(st);
    let state = rules::combined_state(&list);
    let api = gh.api();
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let statuses: Vec<Value> = list
        .iter()
        .map(|s| status_json(&gh, &full, &sha, s, false))
        .collect();
    let db = default_branch(&repo);
    ok(json!({
        "state": state, "sha": sha, "total_count": statuses.len(), "statuses": statuses,
        "repository": json::repository(&u, &full, &db),
        "commit_url": format!("{api}/repos/{full}/commits/{sha}"),
        "url": format!("{api}/repos/{full}/commits/{sha}/status")
    }))
}

async fn statuses_list(S(gh): G, Path((o, r, rf)): Path<(String, String, String)>, q: Q) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    needs(&gh, "statuses")?;
    let sha =
        resolve(&repo, &rf).ok_or_else(|| error(422, &format!("No commit found for SHA: {rf}")))?;
    let st = gh.state.lock().unwrap();
    let list = st
        .statuses
        .get(&(full.clone(), sha.clone()))
        .cloned()
        .unwrap_or_default();
    drop(st);
    let items = list
        .iter()
        .rev()
        .map(|s| status_json(&gh, &full, &sha, s, true))
        .collect();
    paginate(
        &gh,
        &format!("/repos/{o}/{r}/commits/{rf}/statuses"),
        &q,
        items,
    )
}

/// Records a check run on `sha`, replacing the one with the same name.
pub(super) fn set_check(gh: &GitHub, full: &str, sha: &str, mut c: CheckRun) {
    let mut st = gh.state.lock().unwrap();
    c.id = st.id();
    c.started_at = now();
    let list = st.checks.entry((full.into(), sha.into())).or_default();
    list.retain(|x| x.name != c.name);
    list.push(c);
}

async fn check_runs(S(gh): G, Path((o, r, rf)): Path<(String, String, String)>) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    needs(&gh, "checks")?;
    let sha =
        resolve(&repo, &rf).ok_or_else(|| error(422, &format!("No commit found for SHA: {rf}")))?;
    let st = gh.state.lock().unwrap();
    let list = st
        .checks
        .get(&(full.clone(), sha.clone()))
        .cloned()
        .unwrap_or_default();
    drop(st);
    let api = gh.api();
    let web = super::web_of(&api);
    let runs: Vec<Value> = list
        .iter()
        .map(|c| {
            let url = format!("{api}/repos/{full}/check-runs/{}", c.id);
            json!({
                "id": c.id, "node_id": json::node_id("CR", c.id), "head_sha": sha, "name": c.name,
                "external_id": "", "url": url,
                "html_url": format!("{web}/{full}/runs/{}", c.id),
                "details_url": format!("{web}/{full}/runs/{}", c.id),
                "status": c.status, "conclusion": c.conclusion,
                "started_at": c.started_at,
                "completed_at": if c.status == "completed" { Value::from(c.started_at.clone()) } else { Value::Null },
                "output": {"title": null, "summary": null, "text": null, "annotations_count": 0,
                           "annotations_url": format!("{url}/annotations")},
                "check_suite": {"id": c.id + 1},
                "app": null, "pull_requests": []
            })
        })
        .collect();
    ok(json!({"total_count": runs.len(), "check_runs": runs}))
}

async fn permission_get(S(gh): G, Path((o, r, user)): Path<(String, String, String)>) -> Res {
    let (full, _repo) = open_repo(&gh, &o, &r)?;
    let st = gh.state.lock().unwrap();
    let p = rules::permission(&st, &full, &user);
    drop(st);
    let api = gh.api();
    let u = Urls {
        api: &api,
        git: &gh.git(),
    };
    let mut user_v = json::user(&u, &user);
    user_v["permissions"] = json!({
        "admin": p == "admin", "maintain": p == "admin", "push": rules::can_write(&p),
        "triage": p != "none", "pull": p != "none"
    });
    user_v["role_name"] = json!(p);
    ok(json!({"permission": p, "role_name": p, "user": user_v}))
}

async fn commit_pulls(S(gh): G, Path((o, r, rf)): Path<(String, String, String)>, q: Q) -> Res {
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let sha =
        resolve(&repo, &rf).ok_or_else(|| error(422, &format!("No commit found for SHA: {rf}")))?;
    let mut st = gh.state.lock().unwrap();
    let mut items = Vec::new();
    for i in 0..st.pulls.len() {
        rules::refresh(&repo, &mut st, i);
        let p = &st.pulls[i];
        if p.repo == full && rules::lists_commit(&repo, p, &sha) {
            items.push(pull_json(&gh, &st, &repo, p, None));
        }
    }
    drop(st);
    paginate(
        &gh,
        &format!("/repos/{o}/{r}/commits/{rf}/pulls"),
        &q,
        items,
    )
}

async fn contents_get(S(gh): G, Path((o, r, path)): Path<(String, String, String)>, q: Q) -> Res {
    use base64::Engine;
    let (full, repo) = open_repo(&gh, &o, &r)?;
    let rf = q
        .get("ref")
        .cloned()
        .unwrap_or_else(|| default_branch(&repo));
    let commit = resolve(&repo, &rf)
        .ok_or_else(|| error(404, &format!("No commit found for the ref {rf}")))?;
    let tree = repo
        .find_commit(git2::Oid::from_str(&commit).unwrap())
        .and_then(|c| c.tree())
        .map_err(|_| not_found())?;
    let entry = tree
        .get_path(std::path::Path::new(&path))
        .map_err(|_| not_found())?;
    // Only files are modelled; a directory listing is not something the product reads.
    let blob = repo
        .find_blob(entry.id())
        .map_err(|_| error(404, "Not Found (the emulator serves files only)"))?;
    let api = gh.api();
    let web = super::web_of(&api);
    let sha = entry.id().to_string();
    let url = format!("{api}/repos/{full}/contents/{path}?ref={rf}");
    let git_url = format!("{api}/repos/{full}/git/blobs/{sha}");
    let html = format!("{web}/{full}/blob/{rf}/{path}");
    let name = path.rsplit('/').next().unwrap_or(&path);
    ok(json!({
        "type": "file", "encoding": "base64", "size": blob.content().len(), "name": name, "path": path,
        "content": base64::engine::general_purpose::STANDARD.encode(blob.content()), "sha": sha,
        "url": url, "git_url": git_url, "html_url": html,
        "download_url": format!("{}/{full}/raw/{rf}/{path}", gh.git()),
        "_links": {"git": git_url, "self": url, "html": html}
    }))
}

/// A ref as GitHub answers it (`git-ref` schema).
fn ref_json(gh: &GitHub, full: &str, full_name: &str, id: git2::Oid) -> Value {
    let api = gh.api();
    json::git_ref(
        &Urls {
            api: &api,
            git: &gh.git(),
        },
        full,
        full_name,
        &id.to_string(),
    )
}
