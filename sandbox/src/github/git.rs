//! The git side of pull requests, done with git2 on the bare repo as GitHub does server-side:
//! mergeability, the PR's commits and diff stats, and the three merge methods.

use anyhow::Result;
use git2::{Oid, Repository, Signature};

/// The SHA `refs/heads/{branch}` points to, if the branch exists.
pub fn branch_sha(repo: &Repository, branch: &str) -> Option<String> {
    repo.refname_to_id(&format!("refs/heads/{branch}"))
        .ok()
        .map(|o| o.to_string())
}

/// Whether merging `head` into `base` conflicts.
pub fn conflicts(repo: &Repository, base: &str, head: &str) -> Result<bool> {
    let b = repo.find_commit(Oid::from_str(base)?)?;
    let h = repo.find_commit(Oid::from_str(head)?)?;
    Ok(repo.merge_commits(&b, &h, None)?.has_conflicts())
}

/// Whether `ancestor` is `of` or one of its ancestors.
pub fn contains(repo: &Repository, of: &str, ancestor: &str) -> bool {
    let (Ok(a), Ok(b)) = (Oid::from_str(ancestor), Oid::from_str(of)) else {
        return false;
    };
    a == b || repo.graph_descendant_of(b, a).unwrap_or(false)
}

/// The PR's commits, oldest first: reachable from `head`, not from `base`.
pub fn pr_commits(repo: &Repository, base: &str, head: &str) -> Result<Vec<Oid>> {
    let mut walk = repo.revwalk()?;
    walk.push(Oid::from_str(head)?)?;
    walk.hide(Oid::from_str(base)?)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    Ok(walk.collect::<Result<Vec<_>, _>>()?)
}

/// (additions, deletions, changed files) of `head` against its merge base with `base`.
pub fn diff_stats(repo: &Repository, base: &str, head: &str) -> Result<(usize, usize, usize)> {
    let (b, h) = (Oid::from_str(base)?, Oid::from_str(head)?);
    let mb = repo.merge_base(b, h)?;
    let old = repo.find_commit(mb)?.tree()?;
    let new = repo.find_commit(h)?.tree()?;
    let stats = repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)?
        .stats()?;
    Ok((stats.insertions(), stats.deletions(), stats.files_changed()))
}

/// Merges `base` into branch `head_ref` (at `head`) with a merge commit by GitHub, as "Update
/// branch" does, and moves the branch if it still points at `head`. `Ok(Err(msg))` when it
/// conflicts or the branch moved; a head that already contains `base` is left as it is.
pub fn update_branch(
    repo: &Repository,
    head_ref: &str,
    head: &str,
    base: &str,
    message: &str,
) -> Result<Result<String, &'static str>> {
    if contains(repo, head, base) {
        return Ok(Ok(head.to_string()));
    }
    let committer = Signature::now("GitHub", "noreply@github.com")?;
    let h = repo.find_commit(Oid::from_str(head)?)?;
    let b = repo.find_commit(Oid::from_str(base)?)?;
    let mut index = repo.merge_commits(&h, &b, None)?;
    if index.has_conflicts() {
        return Ok(Err("merge conflict between base and head"));
    }
    let tree = repo.find_tree(index.write_tree_to(repo)?)?;
    let oid = repo.commit(None, &committer, &committer, message, &tree, &[&h, &b])?;
    let name = format!("refs/heads/{head_ref}");
    if repo
        .reference_matching(&name, oid, true, h.id(), "update branch")
        .is_err()
    {
        return Ok(Err("expected head sha didn’t match current head ref."));
    }
    Ok(Ok(oid.to_string()))
}

/// GitHub's 409 message when a strict required-checks rule finds the head behind its base
/// (issue #13; reported by API users as `409 Conflict: "Head branch is out of date. Review and
/// try the merge again."`).
pub const OUT_OF_DATE: &str = "Head branch is out of date. Review and try the merge again.";

/// The paths `head` changes against its merge base with `base`.
pub fn changed_files(repo: &Repository, base: &str, head: &str) -> Result<Vec<String>> {
    let (b, h) = (Oid::from_str(base)?, Oid::from_str(head)?);
    let mb = repo.merge_base(b, h)?;
    let old = repo.find_commit(mb)?.tree()?;
    let new = repo.find_commit(h)?.tree()?;
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
    Ok(diff
        .deltas()
        .filter_map(|d| d.new_file().path().or(d.old_file().path()))
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// GitHub's 405 message when the base moved under a merge.
pub const BASE_MODIFIED: &str = "Base branch was modified. Review and try the merge again.";

/// The merge methods GitHub offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A merge commit with parents (base head, PR head).
    Merge,
    /// One commit on the base with the PR's combined change.
    Squash,
    /// The PR's commits replayed onto the base.
    Rebase,
}

/// Merges `head` into branch `base_ref` (at `base`) and moves the branch. `Ok(Err(msg))` when it
/// conflicts. Returns the new base head and, for rebase, every replayed commit oldest first.
pub fn merge(
    repo: &Repository,
    method: Method,
    base_ref: &str,
    base: &str,
    head: &str,
    title: &str,
    message: &str,
) -> Result<Result<(String, Vec<String>), String>> {
    let committer = Signature::now("GitHub", "noreply@github.com")?;
    let b = repo.find_commit(Oid::from_str(base)?)?;
    let h = repo.find_commit(Oid::from_str(head)?)?;
    let full = if message.is_empty() {
        title.to_string()
    } else {
        format!("{title}\n\n{message}")
    };
    let (tip, replayed) = match method {
        Method::Merge | Method::Squash => {
            let mut index = repo.merge_commits(&b, &h, None)?;
            if index.has_conflicts() {
                return Ok(Err("Pull Request is not mergeable".into()));
            }
            let tree = repo.find_tree(index.write_tree_to(repo)?)?;
            let (author, parents): (Signature, Vec<&git2::Commit>) = if method == Method::Merge {
                (committer.clone(), vec![&b, &h])
            } else {
                (h.author().to_owned(), vec![&b])
            };
            let oid = repo.commit(None, &author, &committer, &full, &tree, &parents)?;
            (oid, vec![oid.to_string()])
        }
        Method::Rebase => {
            let mut onto = b.clone();
            let mut replayed = Vec::new();
            for id in pr_commits(repo, base, head)? {
                let c = repo.find_commit(id)?;
                if c.parent_count() > 1 {
                    // GitHub refuses to rebase-merge a PR containing merge commits.
                    return Ok(Err("This branch can't be rebased".into()));
                }
                let mut index = repo.cherrypick_commit(&c, &onto, 0, None)?;
                if index.has_conflicts() {
                    return Ok(Err("This branch can't be rebased".into()));
                }
                let tree = repo.find_tree(index.write_tree_to(repo)?)?;
                let msg = c.message().unwrap_or("");
                let oid = repo.commit(None, &c.author(), &committer, msg, &tree, &[&onto])?;
                onto = repo.find_commit(oid)?;
                replayed.push(oid.to_string());
            }
            (onto.id(), replayed)
        }
    };
    // Compare-and-swap: a push to the base since we read it means GitHub's "Base branch was modified".
    let name = format!("refs/heads/{base_ref}");
    if repo
        .reference_matching(&name, tip, true, b.id(), "merge pull request")
        .is_err()
    {
        return Ok(Err(BASE_MODIFIED.into()));
    }
    Ok(Ok((tip.to_string(), replayed)))
}
