//! Response bodies shaped as GitHub's (every field the published schema requires), built from the
//! emulator's state. Kept apart from the handlers so the routes read as behaviour, not as JSON.

use serde_json::{json, Value};

/// Where the emulator is reached, for the `url` fields of every body.
pub struct Urls<'a> {
    /// REST base, e.g. `http://127.0.0.1:4000`.
    pub api: &'a str,
    /// Git host base, for `clone_url`.
    pub git: &'a str,
}

/// Node ids look like GitHub's opaque base64 ids; any stable string satisfies the schema.
pub fn node_id(kind: &str, id: u64) -> String {
    format!("{kind}_kwDO{id:08}")
}

/// Stable numeric id for a user login, so the same login has the same id across bodies.
pub fn user_id(login: &str) -> u64 {
    login
        .bytes()
        .fold(1000u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 100_000_000
}

/// A `team` of the repo's organization, by slug (as `requested_teams` lists them).
pub fn team(u: &Urls, repo: &str, slug: &str) -> Value {
    let org = repo.split('/').next().unwrap_or(repo);
    let id = user_id(&format!("team:{org}/{slug}"));
    let api = u.api;
    json!({
        "id": id, "node_id": node_id("T", id), "name": slug, "slug": slug, "description": null,
        "privacy": "closed", "notification_setting": "notifications_enabled", "permission": "pull",
        "url": format!("{api}/organizations/1/team/{id}"),
        "html_url": format!("https://github.com/orgs/{org}/teams/{slug}"),
        "members_url": format!("{api}/organizations/1/team/{id}/members{{/member}}"),
        "repositories_url": format!("{api}/organizations/1/team/{id}/repos"),
        "type": "organization", "parent": null,
    })
}

/// A `simple-user`.
pub fn user(u: &Urls, login: &str) -> Value {
    let id = user_id(login);
    let api = u.api;
    let bot = login.strip_suffix("[bot]");
    let kind = if bot.is_some() { "Bot" } else { "User" };
    // GitHub percent-encodes the brackets of bot logins in URLs, and links bots to their app page.
    let html = match bot {
        Some(app) => format!("https://github.com/apps/{app}"),
        None => format!("https://github.com/{login}"),
    };
    let login_raw = login;
    let login = &login.replace('[', "%5B").replace(']', "%5D");
    json!({
        "login": login_raw, "id": id, "node_id": node_id("U", id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": format!("{api}/users/{login}"),
        "html_url": html,
        "followers_url": format!("{api}/users/{login}/followers"),
        "following_url": format!("{api}/users/{login}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{login}/subscriptions"),
        "organizations_url": format!("{api}/users/{login}/orgs"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "events_url": format!("{api}/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{login}/received_events"),
        "type": kind, "user_view_type": "public", "site_admin": false
    })
}

/// A `full-repository` (also a valid `repository`).
pub fn repository(u: &Urls, full_name: &str, default_branch: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    let id = user_id(full_name);
    let r = format!("{}/repos/{full_name}", u.api);
    let mut v = json!({
        "id": id, "node_id": node_id("R", id), "name": name, "full_name": full_name,
        "owner": user(u, owner), "private": true,
        "html_url": format!("{}/{full_name}", super::web_of(u.api)),
        "description": null, "fork": false, "url": r,
        "archive_url": format!("{r}/{{archive_format}}{{/ref}}"),
        "assignees_url": format!("{r}/assignees{{/user}}"),
        "blobs_url": format!("{r}/git/blobs{{/sha}}"),
        "branches_url": format!("{r}/branches{{/branch}}"),
        "collaborators_url": format!("{r}/collaborators{{/collaborator}}"),
        "comments_url": format!("{r}/comments{{/number}}"),
        "commits_url": format!("{r}/commits{{/sha}}"),
        "compare_url": format!("{r}/compare/{{base}}...{{head}}"),
        "contents_url": format!("{r}/contents/{{+path}}"),
        "contributors_url": format!("{r}/contributors"),
        "deployments_url": format!("{r}/deployments"),
        "downloads_url": format!("{r}/downloads"),
        "events_url": format!("{r}/events"),
        "forks_url": format!("{r}/forks"),
        "git_commits_url": format!("{r}/git/commits{{/sha}}"),
        "git_refs_url": format!("{r}/git/refs{{/sha}}"),
        "git_tags_url": format!("{r}/git/tags{{/sha}}"),
    });
    let more = json!({
        "git_url": format!("git://github.com/{full_name}.git"),
        "issue_comment_url": format!("{r}/issues/comments{{/number}}"),
        "issue_events_url": format!("{r}/issues/events{{/number}}"),
        "issues_url": format!("{r}/issues{{/number}}"),
        "keys_url": format!("{r}/keys{{/key_id}}"),
        "labels_url": format!("{r}/labels{{/name}}"),
        "languages_url": format!("{r}/languages"),
        "merges_url": format!("{r}/merges"),
        "milestones_url": format!("{r}/milestones{{/number}}"),
        "notifications_url": format!("{r}/notifications{{?since,all,participating}}"),
        "pulls_url": format!("{r}/pulls{{/number}}"),
        "releases_url": format!("{r}/releases{{/id}}"),
        "ssh_url": format!("git@github.com:{full_name}.git"),
        "stargazers_url": format!("{r}/stargazers"),
        "statuses_url": format!("{r}/statuses/{{sha}}"),
        "subscribers_url": format!("{r}/subscribers"),
        "subscription_url": format!("{r}/subscription"),
        "tags_url": format!("{r}/tags"),
        "teams_url": format!("{r}/teams"),
        "trees_url": format!("{r}/git/trees{{/sha}}"),
        "clone_url": format!("{}/{full_name}.git", u.git),
    });
    let rest = json!({
        "mirror_url": null, "hooks_url": format!("{r}/hooks"),
        "svn_url": format!("https://github.com/{full_name}"),
        "homepage": null, "language": null,
        "forks_count": 0, "forks": 0, "stargazers_count": 0, "watchers_count": 0, "watchers": 0,
        "size": 1, "default_branch": default_branch,
        "open_issues_count": 0, "open_issues": 0, "is_template": false, "topics": [],
        "has_issues": true, "has_projects": false, "has_wiki": false, "has_pages": false,
        "has_downloads": true, "has_discussions": false, "archived": false, "disabled": false,
        "visibility": "private",
        "pushed_at": "2026-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true},
        "allow_rebase_merge": true, "allow_squash_merge": true, "allow_merge_commit": true,
        "allow_auto_merge": false, "delete_branch_on_merge": false, "allow_forking": false,
        "license": null, "network_count": 0, "subscribers_count": 0
    });
    for part in [more, rest] {
        if let (Some(a), Value::Object(b)) = (v.as_object_mut(), part) {
            a.extend(b);
        }
    }
    v
}

/// A `label` as GitHub creates it on first use.
pub fn label(u: &Urls, full_name: &str, name: &str) -> Value {
    let id = user_id(name);
    json!({
        "id": id, "node_id": node_id("LA", id),
        "url": format!("{}/repos/{full_name}/labels/{name}", u.api),
        "name": name, "description": "", "color": "ededed", "default": false
    })
}

/// A `git-ref`.
pub fn git_ref(u: &Urls, full_name: &str, name: &str, sha: &str) -> Value {
    json!({
        "ref": name, "node_id": node_id("REF", user_id(name)),
        "url": format!("{}/repos/{full_name}/git/{name}", u.api),
        "object": {"type": "commit", "sha": sha,
                   "url": format!("{}/repos/{full_name}/git/commits/{sha}", u.api)}
    })
}

/// A `commit` (REST commit with its git commit inside).
pub fn commit(u: &Urls, full_name: &str, c: &git2::Commit<'_>) -> Value {
    let sha = c.id().to_string();
    let r = format!("{}/repos/{full_name}", u.api);
    let sig = |s: git2::Signature<'_>| {
        let t = chrono::DateTime::from_timestamp(s.when().seconds(), 0).unwrap_or_default();
        json!({"name": s.name().unwrap_or(""), "email": s.email().unwrap_or(""),
               "date": t.format("%Y-%m-%dT%H:%M:%SZ").to_string()})
    };
    let parents: Vec<Value> = c
        .parent_ids()
        .map(|p| {
            json!({"sha": p.to_string(), "url": format!("{r}/commits/{p}"),
                        "html_url": format!("https://github.com/{full_name}/commit/{p}")})
        })
        .collect();
    json!({
        "url": format!("{r}/commits/{sha}"), "sha": sha, "node_id": node_id("C", user_id(&sha)),
        "html_url": format!("https://github.com/{full_name}/commit/{sha}"),
        "comments_url": format!("{r}/commits/{sha}/comments"),
        "commit": {
            "url": format!("{r}/git/commits/{sha}"),
            "author": sig(c.author()), "committer": sig(c.committer()),
            "message": c.message().unwrap_or(""), "comment_count": 0,
            "tree": {"sha": c.tree_id().to_string(), "url": format!("{r}/git/trees/{}", c.tree_id())},
            "verification": {"verified": false, "reason": "unsigned", "payload": null,
                             "signature": null, "verified_at": null}
        },
        "author": null, "committer": null, "parents": parents
    })
}

/// The GitHub error body: `{message, documentation_url, status}`.
pub fn error(status: u16, message: &str) -> Value {
    json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()})
}
