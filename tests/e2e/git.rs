//! `gitops_promote::clients::git` against the sandbox's real git host (lighttpd + `git http-backend`): shallow
//! clones, pushes checked with the git CLI, and reverts of each merge shape GitHub produces.

use crate::harness::{checked, commit_on_main, file_at, sandbox, values_with_tag};
use git2::{Oid, Repository};
use gitops_promote::base::{Classify, ErrorKind};
use gitops_promote::clients::git::{self, Checkout, GitError, Identity, Remote, Revert};
use sandbox::world::{SEED_BRANCH, SEED_CHART, SEED_REPO, SEED_VALUES, SEED_VALUES_PATH};
use sandbox::Sandbox;
use std::path::Path;
use std::process::Command;

const CHART_PATH: &str = "charts/app/Chart.yaml";

fn remote(sb: &Sandbox) -> Remote {
    Remote {
        url: format!("{}/{SEED_REPO}.git", sb.git_url()),
        token: sb.world.token.clone(),
        retry_budget: git::RETRY_BUDGET,
        trust: Default::default(),
    }
}

fn clone(sb: &Sandbox, depth: u32) -> Checkout {
    git::clone_base(&remote(sb), SEED_BRANCH, depth).expect("clone")
}

/// The clone URL with credentials, for the git CLI only (the product never builds one).
fn cli_url(sb: &Sandbox) -> String {
    let url = format!("{}/{SEED_REPO}.git", sb.git_url());
    url.replacen(
        "http://",
        &format!("http://x-access-token:{}@", sb.world.token),
        1,
    )
}

fn git_cli(dir: &Path, args: &[&str]) -> String {
    checked(
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_TERMINAL_PROMPT", "0"),
    )
}

/// Writes a commit with `parents` (tree: the first parent's plus `files`) in the bare repo, and moves
/// `branch` to it when given.
fn commit_in(
    repo: &Repository,
    branch: Option<&str>,
    parents: &[Oid],
    files: &[(&str, &str)],
    message: &str,
) -> Oid {
    let sig = sandbox::world::seed_signature().unwrap();
    let parents: Vec<git2::Commit> = parents
        .iter()
        .map(|p| repo.find_commit(*p).unwrap())
        .collect();
    let base = parents[0].tree().unwrap();
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, content) in files {
        update.upsert(
            *path,
            repo.blob(content.as_bytes()).unwrap(),
            git2::FileMode::Blob,
        );
    }
    let tree = repo
        .find_tree(update.create_updated(repo, &base).unwrap())
        .unwrap();
    let refs: Vec<&git2::Commit> = parents.iter().collect();
    let id = repo
        .commit(None, &sig, &sig, message, &tree, &refs)
        .unwrap();
    if let Some(branch) = branch {
        repo.reference(&format!("refs/heads/{branch}"), id, true, message)
            .unwrap();
    }
    id
}

fn head(repo: &Repository) -> Oid {
    repo.refname_to_id(&format!("refs/heads/{SEED_BRANCH}"))
        .unwrap()
}

/// A merge commit as GitHub's "Create a merge commit" makes it: main moved on with an unrelated
/// commit while the PR branch bumped the tag. Returns the merge commit.
fn merge_commit_shape(repo: &Repository) -> Oid {
    let seed = head(repo);
    let feature = commit_in(
        repo,
        None,
        &[seed],
        &[(SEED_VALUES_PATH, &values_with_tag("2.0.0"))],
        "Promote 2.0.0",
    );
    let other = commit_in(
        repo,
        Some(SEED_BRANCH),
        &[seed],
        &[("charts/db/values.yaml", "size: 1\n")],
        "Add db",
    );
    commit_in(
        repo,
        Some(SEED_BRANCH),
        &[other, feature],
        &[(SEED_VALUES_PATH, &values_with_tag("2.0.0"))],
        "Merge pull request #1 from acme/gitops-promote/main/1-1",
    )
}

/// Someone else's commit on main after ours, touching another file.
fn unrelated_later_commit(repo: &Repository) -> Oid {
    let parent = head(repo);
    commit_in(
        repo,
        Some(SEED_BRANCH),
        &[parent],
        &[("charts/api/values.yaml", "replicas: 3\n")],
        "Scale api",
    )
}

fn sha(id: Oid) -> String {
    id.to_string()
}

/// Asserts each `(path, content)` on `branch`: the files a revert had to leave as they were.
fn assert_files(sb: &Sandbox, branch: &str, files: &[(&str, &str)]) {
    for (path, want) in files {
        assert_eq!(
            file_at(sb, branch, path).as_deref(),
            Some(*want),
            "{path} on {branch}"
        );
    }
}

/// Commits a revert tree, pushes it to a branch, and returns what the remote then holds.
fn push_revert(
    co: &mut Checkout,
    tree: Oid,
    branch: &str,
    path: &str,
    sb: &Sandbox,
) -> Option<String> {
    let id = co
        .commit_tree(
            co.base_sha(),
            tree,
            "Revert\n\nReverts: x",
            &Identity::default(),
        )
        .unwrap();
    co.push_branch(id, branch, false).unwrap();
    file_at(sb, branch, path)
}

#[test]
fn shallow_clone_fetches_only_the_base_head() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let first = head(&repo);
    let second = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[first],
        &[("README.md", "hi\n")],
        "Readme",
    );
    commit_in(
        &repo,
        Some("other"),
        &[first],
        &[("x", "y\n")],
        "Other branch",
    );

    let co = clone(&sb, 1);
    assert_eq!(co.base(), SEED_BRANCH);
    assert_eq!(co.base_sha(), second);
    let local = Repository::open_bare(co.path()).unwrap();
    assert!(local.is_shallow());
    assert!(
        local.find_commit(first).is_err(),
        "the parent was fetched too"
    );
    let refs: Vec<String> = local
        .references()
        .unwrap()
        .map(|r| r.unwrap().name().unwrap().to_string())
        .collect();
    assert_eq!(refs, vec![format!("refs/remotes/origin/{SEED_BRANCH}")]);
    assert_eq!(
        co.read_file(second, SEED_VALUES_PATH).unwrap().as_deref(),
        Some(SEED_VALUES.as_bytes())
    );
    assert_eq!(co.read_file(second, "charts/missing.yaml").unwrap(), None);
}

#[test]
fn pushed_branch_is_what_git_sees_with_only_the_edited_file_changed() {
    let sb = sandbox();
    let mut co = clone(&sb, 1);
    let new_values = values_with_tag("1.2.3");
    let id = co
        .commit_files(
            co.base_sha(),
            &[(
                SEED_VALUES_PATH.to_string(),
                new_values.clone().into_bytes(),
            )],
            "Promote app to 1.2.3\n\nPromoted-by: gitops-promote\n",
            &Identity::default(),
        )
        .unwrap();
    let branch = "gitops-promote/main/7-1";
    co.push_branch(id, branch, false).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let ls = git_cli(
        tmp.path(),
        &["ls-remote", &cli_url(&sb), &format!("refs/heads/{branch}")],
    );
    assert_eq!(ls.split_whitespace().next(), Some(sha(id).as_str()), "{ls}");

    git_cli(tmp.path(), &["clone", "-q", &cli_url(&sb), "fresh"]);
    let fresh = tmp.path().join("fresh");
    git_cli(&fresh, &["fetch", "-q", "origin", branch]);
    let changed = git_cli(
        &fresh,
        &["diff", "--name-only", "origin/main", "FETCH_HEAD"],
    );
    assert_eq!(changed.trim(), SEED_VALUES_PATH);
    let shown = git_cli(&fresh, &["show", &format!("FETCH_HEAD:{SEED_VALUES_PATH}")]);
    assert_eq!(shown, new_values);
    let who = git_cli(
        &fresh,
        &["log", "-1", "--format=%an <%ae>|%P", "FETCH_HEAD"],
    );
    assert_eq!(
        who.trim(),
        format!(
            "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>|{}",
            co.base_sha()
        )
    );

    co.delete_remote_branch(branch).unwrap();
    let ls = git_cli(
        tmp.path(),
        &["ls-remote", &cli_url(&sb), &format!("refs/heads/{branch}")],
    );
    assert!(ls.trim().is_empty(), "{ls}");
    co.delete_remote_branch(branch)
        .expect("deleting a deleted branch succeeds");
}

#[test]
fn bad_token_is_an_authentication_error_naming_the_url() {
    let sb = sandbox();
    let bad = Remote {
        token: "ghs_wrong".to_string(),
        ..remote(&sb)
    };
    let err = git::clone_base(&bad, SEED_BRANCH, 1).unwrap_err();
    // Not retried: with_retries' unit test shows an authentication error returns at once.
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert!(err.to_string().contains(&bad.url), "{err}");
    assert!(!format!("{err} {err:?}").contains("ghs_wrong"));
}

#[test]
fn missing_base_branch_is_a_config_error_naming_it() {
    let sb = sandbox();
    let err = git::clone_base(&remote(&sb), "release", 1).unwrap_err();
    assert!(matches!(err, GitError::MissingBranch { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("release"), "{err}");

    // The base deleted on the server after the clone: a refresh says so instead of keeping the old head.
    let mut co = clone(&sb, 1);
    let repo = sb.world.open(SEED_REPO).unwrap();
    let feature = commit_in(
        &repo,
        Some("feature"),
        &[co.base_sha()],
        &[("x", "1\n")],
        "Elsewhere",
    );
    let err = co.ensure_commit(&sha(feature), None).unwrap_err();
    assert!(matches!(err, GitError::CommitNotFound { .. }), "{err}");
    assert!(err.to_string().contains(&sha(feature)), "{err}");
    repo.find_reference("refs/heads/main")
        .unwrap()
        .delete()
        .unwrap();
    let err = co.fetch_base().unwrap_err();
    assert!(matches!(err, GitError::MissingBranch { .. }), "{err}");
}

#[test]
fn non_fast_forward_push_is_a_conflict_and_force_on_our_branch_wins() {
    let sb = sandbox();
    let mut co = clone(&sb, 1);
    let branch = "gitops-promote/main/8-1";
    let ours = co
        .commit_files(
            co.base_sha(),
            &[(SEED_VALUES_PATH.into(), values_with_tag("1.1.0").into())],
            "ours",
            &Identity::default(),
        )
        .unwrap();
    co.push_branch(ours, branch, false).unwrap();
    // Someone else moves the branch on the server.
    sb.world
        .commit(SEED_REPO, branch, &[("README.md", "theirs\n")], "theirs")
        .unwrap();

    let again = co
        .commit_files(
            co.base_sha(),
            &[(SEED_VALUES_PATH.into(), values_with_tag("1.2.0").into())],
            "again",
            &Identity::default(),
        )
        .unwrap();
    let err = co.push_branch(again, branch, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains(branch), "{err}");

    co.push_branch(again, branch, true).unwrap();
    assert_eq!(sb.world.resolve(SEED_REPO, branch).unwrap(), again);
}

#[test]
fn force_push_to_the_base_is_refused_before_any_network_call() {
    let sb = sandbox();
    // No retries: the last push meets a host that is gone for good.
    let no_retries = Remote {
        retry_budget: std::time::Duration::ZERO,
        ..remote(&sb)
    };
    let mut co = git::clone_base(&no_retries, SEED_BRANCH, 1).expect("clone");
    let id = co
        .commit_files(
            co.base_sha(),
            &[(SEED_VALUES_PATH.into(), b"gone".to_vec())],
            "x",
            &Identity::default(),
        )
        .unwrap();
    // With the git host gone, anything that reached the network would fail as connectivity.
    drop(sb);
    let err = co.push_branch(id, SEED_BRANCH, true).unwrap_err();
    assert!(matches!(err, GitError::ProtectBase { .. }), "{err}");
    let err = co.delete_remote_branch(SEED_BRANCH).unwrap_err();
    assert!(matches!(err, GitError::ProtectBase { .. }), "{err}");
    let err = co
        .push_branch(id, "gitops-promote/main/9-1", false)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connectivity, "{err}");
}

#[test]
fn revert_of_a_merge_commit_keeps_later_unrelated_commits() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let merge = merge_commit_shape(&repo);
    unrelated_later_commit(&repo);
    // Deeper than the first deepening step, so the clone has to fetch twice to reach the merge.
    for i in 0..12 {
        let parent = head(&repo);
        commit_in(
            &repo,
            Some(SEED_BRANCH),
            &[parent],
            &[("log.txt", &format!("{i}\n"))],
            "Later",
        );
    }

    let mut co = clone(&sb, 1);
    co.ensure_commit(&sha(merge), Some(2)).unwrap();
    let onto = co.base_sha();
    let Revert::Tree { commit_tree, files } = co.revert(onto, &[sha(merge)], 1).unwrap() else {
        panic!("conflict")
    };
    assert_eq!(files, vec![SEED_VALUES_PATH.to_string()]);
    let branch = "gitops-promote/revert-1";
    assert_eq!(
        push_revert(&mut co, commit_tree, branch, SEED_VALUES_PATH, &sb).as_deref(),
        Some(SEED_VALUES)
    );
    assert_files(
        &sb,
        branch,
        &[
            ("charts/api/values.yaml", "replicas: 3\n"),
            ("charts/db/values.yaml", "size: 1\n"),
            (CHART_PATH, SEED_CHART),
        ],
    );
}

#[test]
fn revert_of_a_squash_merge_keeps_later_unrelated_commits() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let seed = head(&repo);
    let squash = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[seed],
        &[(SEED_VALUES_PATH, &values_with_tag("2.0.0"))],
        "Promote 2.0.0 (#2)",
    );
    unrelated_later_commit(&repo);

    let mut co = clone(&sb, 1);
    let onto = co.base_sha();
    let Revert::Tree { commit_tree, files } = co.revert(onto, &[sha(squash)], 0).unwrap() else {
        panic!("conflict")
    };
    assert_eq!(files, vec![SEED_VALUES_PATH.to_string()]);
    let branch = "gitops-promote/revert-2";
    assert_eq!(
        push_revert(&mut co, commit_tree, branch, SEED_VALUES_PATH, &sb).as_deref(),
        Some(SEED_VALUES)
    );
    assert_files(&sb, branch, &[("charts/api/values.yaml", "replicas: 3\n")]);

    // A single-parent commit has one mainline: asking for 1 (as for a merge commit) gives the same
    // revert, so a rollback need not know how the PR was merged.
    let again = co.revert(onto, &[sha(squash)], 1).unwrap();
    assert!(
        matches!(again, Revert::Tree { commit_tree: t, .. } if t == commit_tree),
        "{again:?}"
    );
}

#[test]
fn revert_of_a_rebase_merge_reverts_every_commit_newest_first() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let seed = head(&repo);
    let first = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[seed],
        &[(SEED_VALUES_PATH, &values_with_tag("2.0.0"))],
        "Promote 2.0.0",
    );
    let chart = SEED_CHART.replace("appVersion: \"1.0.0\"", "appVersion: \"2.0.0\"");
    let second = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[first],
        &[
            (CHART_PATH, &chart),
            (SEED_VALUES_PATH, &values_with_tag("2.0.1")),
        ],
        "Bump chart",
    );
    unrelated_later_commit(&repo);

    let mut co = clone(&sb, 1);
    let onto = co.base_sha();
    let Revert::Tree { commit_tree, files } =
        co.revert(onto, &[sha(second), sha(first)], 0).unwrap()
    else {
        panic!("conflict")
    };
    assert_eq!(
        files,
        vec![CHART_PATH.to_string(), SEED_VALUES_PATH.to_string()]
    );
    let branch = "gitops-promote/revert-3";
    assert_eq!(
        push_revert(&mut co, commit_tree, branch, SEED_VALUES_PATH, &sb).as_deref(),
        Some(SEED_VALUES)
    );
    assert_files(
        &sb,
        branch,
        &[
            (CHART_PATH, SEED_CHART),
            ("charts/api/values.yaml", "replicas: 3\n"),
        ],
    );
}

#[test]
fn merge_commit_on_the_shallow_boundary_reverts_to_the_right_tree() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let merge = merge_commit_shape(&repo);

    let mut co = clone(&sb, 1);
    assert_eq!(co.base_sha(), merge);
    // The danger: at depth 1 the merge's parents are not in the clone (libgit2 shows it with none).
    let local = Repository::open_bare(co.path()).unwrap();
    let parents: Vec<Oid> = repo.find_commit(merge).unwrap().parent_ids().collect();
    assert_eq!(parents.len(), 2);
    assert!(parents.iter().all(|p| local.find_commit(*p).is_err()));
    drop(local);

    let Revert::Tree { commit_tree, files } = co.revert(merge, &[sha(merge)], 1).unwrap() else {
        panic!("conflict")
    };
    assert_eq!(files, vec![SEED_VALUES_PATH.to_string()]);
    let branch = "gitops-promote/revert-4";
    assert_eq!(
        push_revert(&mut co, commit_tree, branch, SEED_VALUES_PATH, &sb).as_deref(),
        Some(SEED_VALUES)
    );
    assert_files(
        &sb,
        branch,
        &[
            ("charts/db/values.yaml", "size: 1\n"),
            (CHART_PATH, SEED_CHART),
        ],
    );

    // And an empty tree, what reverting it "as a root commit" gave, is never committed.
    let empty = Repository::open_bare(co.path())
        .unwrap()
        .treebuilder(None)
        .unwrap()
        .write()
        .unwrap();
    let err = co
        .commit_tree(co.base_sha(), empty, "Revert", &Identity::default())
        .unwrap_err();
    assert!(err.to_string().contains("delete every file"), "{err}");

    // GitHub says a merge commit has two parents; a count that disagrees is refused.
    let err = co.ensure_commit(&sha(merge), Some(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
}

#[test]
fn revert_conflict_names_the_file_and_writes_nothing() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let seed = head(&repo);
    let ours = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[seed],
        &[(SEED_VALUES_PATH, &values_with_tag("2.0.0"))],
        "Promote 2.0.0 (#5)",
    );
    let later = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[ours],
        &[(SEED_VALUES_PATH, &values_with_tag("2.1.0"))],
        "Promote 2.1.0 (#6)",
    );

    let mut co = clone(&sb, 1);
    let revert = co.revert(co.base_sha(), &[sha(ours)], 0).unwrap();
    assert_eq!(
        revert,
        Revert::Conflict {
            files: vec![SEED_VALUES_PATH.to_string()]
        }
    );
    let refs = git_cli(Path::new("."), &["ls-remote", &cli_url(&sb)]);
    assert_eq!(refs.lines().count(), 2, "{refs}"); // HEAD and main, nothing pushed
    assert_eq!(sb.world.resolve(SEED_REPO, SEED_BRANCH).unwrap(), later);
}

#[test]
fn contains_accepts_descendants_only() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let seed = head(&repo);
    let unrelated = commit_in(
        &repo,
        Some("feature"),
        &[seed],
        &[("x", "1\n")],
        "Elsewhere",
    );
    let ours = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[seed],
        &[(SEED_VALUES_PATH, &values_with_tag("2.0.0"))],
        "Promote",
    );
    let mut tip = ours;
    for i in 0..15 {
        tip = commit_in(
            &repo,
            Some(SEED_BRANCH),
            &[tip],
            &[("log.txt", &format!("{i}\n"))],
            "Later",
        );
    }

    let mut co = clone(&sb, 1);
    // Argo CD may report a commit pushed after our clone.
    let newer = commit_on_main(&sb, &[("log.txt", "new\n")], "Newer");
    assert!(
        co.contains(&newer, &sha(ours)).unwrap(),
        "descendant 16 commits later"
    );
    assert!(
        co.contains(&sha(ours), &sha(ours)).unwrap(),
        "the commit itself"
    );
    assert!(
        !co.contains(&sha(seed), &sha(ours)).unwrap(),
        "an ancestor does not contain it"
    );
    assert!(
        !co.contains(&sha(unrelated), &sha(ours)).unwrap(),
        "a commit on another branch"
    );
    assert_eq!(sha(co.base_sha()), newer);
}

#[test]
fn find_revert_of_reads_the_reverts_trailer() {
    let sb = sandbox();
    let repo = sb.world.open(SEED_REPO).unwrap();
    let seed = head(&repo);
    let merge = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[seed],
        &[(SEED_VALUES_PATH, &values_with_tag("2.0.0"))],
        "Promote",
    );
    let msg = format!("Revert #1: Promote\n\nReverts: {merge}\nPromoted-by: gitops-promote\n");
    let revert = commit_in(
        &repo,
        Some(SEED_BRANCH),
        &[merge],
        &[(SEED_VALUES_PATH, SEED_VALUES)],
        &msg,
    );
    let mut tip = revert;
    for i in 0..5 {
        tip = commit_in(
            &repo,
            Some(SEED_BRANCH),
            &[tip],
            &[("log.txt", &format!("{i}\n"))],
            "Later",
        );
    }

    let mut co = clone(&sb, 1);
    assert_eq!(
        co.find_revert_of(&sha(merge), None, 20).unwrap(),
        Some(revert)
    );
    assert_eq!(co.find_revert_of(&sha(seed), None, 20).unwrap(), None);
    assert_eq!(
        co.find_revert_of(&sha(merge), None, 3).unwrap(),
        None,
        "beyond the window"
    );

    // A revert made with GitHub's Revert button (or `git revert`) counts too, squashed or not.
    for message in [
        format!("Revert \"Promote (#1)\"\n\nThis reverts commit {merge}.\n"),
        format!("Revert \"Promote (#1)\" (#2)\n\n* Revert \"Promote (#1)\"\n\n  This reverts commit {merge}.\n"),
    ] {
        let by_button = commit_in(
            &repo,
            Some(SEED_BRANCH),
            &[tip],
            &[(SEED_VALUES_PATH, SEED_VALUES)],
            &message,
        );
        let mut co = clone(&sb, 1);
        assert_eq!(co.find_revert_of(&sha(merge), None, 20).unwrap(), Some(by_button), "{message}");
        // Another commit's revert is not ours.
        assert_eq!(co.find_revert_of(&sha(seed), None, 20).unwrap(), None);
    }
    assert_eq!(
        git::trailers(&msg),
        vec![
            ("Reverts".to_string(), merge.to_string()),
            ("Promoted-by".to_string(), "gitops-promote".to_string())
        ]
    );
}

#[test]
fn no_token_anywhere_on_disk() {
    let sb = sandbox();
    let mut co = clone(&sb, 1);
    let id = co
        .commit_files(
            co.base_sha(),
            &[(SEED_VALUES_PATH.into(), values_with_tag("3.0.0").into())],
            "x",
            &Identity::default(),
        )
        .unwrap();
    co.push_branch(id, "gitops-promote/main/10-1", false)
        .unwrap();
    commit_on_main(&sb, &[("README.md", "x\n")], "x");
    co.fetch_base().unwrap();
    co.ensure_commit(&sha(co.base_sha()), Some(1)).unwrap();

    let dir = co.path().to_path_buf();
    let config = std::fs::read_to_string(dir.join("config")).unwrap();
    assert!(!config.contains("url"), "{config}");
    let mut files = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).unwrap();
                let token = sb.world.token.as_bytes();
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token),
                    "token in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 5, "only {files} files under {}", dir.display());
    drop(co);
    assert!(!dir.exists(), "the clone outlived its Checkout");
}

#[test]
fn server_side_rejection_is_a_conflict_naming_the_branch() {
    use std::os::unix::fs::PermissionsExt;
    let sb = sandbox();
    let mut co = clone(&sb, 1);
    // As a protected branch does on GitHub: the server answers `ng <ref> <reason>` for the ref.
    let hook = sb.world.repo_path(SEED_REPO).join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'protected branch hook declined' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let id = co
        .commit_files(
            co.base_sha(),
            &[(SEED_VALUES_PATH.into(), values_with_tag("4.0.0").into())],
            "x",
            &Identity::default(),
        )
        .unwrap();
    let branch = "gitops-promote/main/11-1";
    let err = co.push_branch(id, branch, false).unwrap_err();
    assert!(matches!(err, GitError::PushRejected { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains(branch), "{err}");
    assert!(
        sb.world.resolve(SEED_REPO, branch).is_err(),
        "the branch was created anyway"
    );
}

/// Issue #8 (found by the git bench): libgit2's push walks past the shallow boundary of a depth-1
/// clone whose base has history ("object not found"); every real release repo has history.
#[test]
fn r8_push_from_a_depth_1_clone_of_a_base_with_history() {
    let sb = sandbox();
    for i in 0..12 {
        commit_on_main(
            &sb,
            &[(CHART_PATH, &format!("{SEED_CHART}# {i}\n"))],
            &format!("chart {i}"),
        );
    }
    let mut co = clone(&sb, 1);
    let id = co
        .commit_files(
            co.base_sha(),
            &[(
                SEED_VALUES_PATH.to_string(),
                values_with_tag("8.0.0").into_bytes(),
            )],
            "Promote app to 8.0.0",
            &Identity::default(),
        )
        .unwrap();
    let branch = "gitops-promote/main/8-1";
    co.push_branch(id, branch, false).unwrap();
    assert_eq!(
        file_at(&sb, branch, SEED_VALUES_PATH),
        Some(values_with_tag("8.0.0"))
    );
}
