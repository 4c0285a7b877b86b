//! The in-memory revert: merge trees as `git revert` would, and refuse a result that reaches past
//! the files the reverted commits changed.

use super::checkout::Checkout;
use super::error::{local, GitError};
use super::validate::parse_sha;
use git2::{Oid, Repository};
use std::collections::BTreeSet;

/// The result of [`Checkout::revert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revert {
    /// The reverted tree, not yet committed, and the paths it changes relative to `onto`.
    Tree {
        /// The tree to commit with [`Checkout::commit_tree`].
        commit_tree: Oid,
        /// Paths that differ between `onto` and `commit_tree`, sorted; empty when already reverted.
        files: Vec<String>,
    },
    /// A later commit changed the same lines; nothing was written.
    Conflict {
        /// The conflicting paths, sorted.
        files: Vec<String>,
    },
}

impl Checkout {
    /// Reverts `commits` (newest first) onto `onto` in memory and returns the resulting tree, or the
    /// conflicting files. `mainline` picks the parent of merge commits (1: the base side);
    /// single-parent commits (squash and rebase merges) have only one. Nothing is committed or pushed.
    ///
    /// Each commit is made complete first (see [`Checkout::ensure_commit`]), and the result is checked:
    /// a revert that would change any path the reverted commits did not change is refused, which is
    /// what stops a shallow-boundary merge from being reverted into an empty tree.
    ///
    /// # Errors
    /// `Mainline` when the mainline does not fit a commit; `UnsafeRevert`; the errors of
    /// [`Checkout::ensure_commit`].
    pub fn revert(
        &mut self,
        onto: Oid,
        commits: &[String],
        mainline: u32,
    ) -> Result<Revert, GitError> {
        if commits.is_empty() {
            return Err(GitError::Invalid {
                what: "commit list",
                value: String::new(),
                reason: "nothing to revert",
            });
        }
        let mut ids = Vec::with_capacity(commits.len());
        for sha in commits {
            self.ensure_commit(sha, None)?;
            ids.push(parse_sha(sha)?);
        }
        let mut steps = Vec::with_capacity(ids.len());
        for &id in &ids {
            let commit = self.read_commit(id)?;
            let parents = commit.parent_count();
            let parent_index = match (parents, mainline) {
                // A single-parent commit has one mainline whatever was asked, so one call can
                // revert a mix (e.g. a merge found by PR number whose shape is not recorded).
                (1, _) => 0,
                (n, m) if n > 1 && m >= 1 && (m as usize) <= n => m as usize - 1,
                _ => {
                    return Err(GitError::Mainline {
                        sha: id.to_string(),
                        mainline,
                        parents,
                    })
                }
            };
            let commit_tree = commit
                .tree()
                .map_err(local(format!("read the tree of {id}")))?;
            let parent_tree = commit
                .parent(parent_index)
                .and_then(|p| p.tree())
                .map_err(local(format!("read the parent of {id}")))?;
            steps.push((id, commit_tree, parent_tree));
        }
        let onto_tree = self.tree_at(onto)?;
        revert_trees(&self.repo, &onto_tree, &steps)
    }
}

/// Reverts each `(commit, its tree, its mainline parent's tree)` in order onto `onto`, then refuses
/// a result that changes any path outside the paths those commits changed.
fn revert_trees(
    repo: &Repository,
    onto: &git2::Tree<'_>,
    steps: &[(Oid, git2::Tree<'_>, git2::Tree<'_>)],
) -> Result<Revert, GitError> {
    let mut tree = onto.clone();
    let mut allowed = BTreeSet::new();
    for (id, commit_tree, parent_tree) in steps {
        // A promotion never creates the repository: an empty parent tree means the parent is
        // missing (a shallow boundary) and the revert would delete every file.
        if parent_tree.is_empty() && !commit_tree.is_empty() {
            return Err(GitError::UnsafeRevert {
                commits: id.to_string(),
                paths: "every file (its parent tree is empty)".to_string(),
            });
        }
        allowed.extend(changed_paths(repo, Some(parent_tree), commit_tree)?);
        // What `revert_commit` does, on trees: merge the parent's tree into ours with the commit as
        // the merge base. Trees chain without writing intermediate commits.
        let mut index = repo
            .merge_trees(commit_tree, &tree, parent_tree, None)
            .map_err(local(format!("revert {id}")))?;
        if index.has_conflicts() {
            let mut files = BTreeSet::new();
            for conflict in index.conflicts().map_err(local(format!("revert {id}")))? {
                let conflict = conflict.map_err(local(format!("revert {id}")))?;
                for entry in [conflict.our, conflict.their, conflict.ancestor]
                    .into_iter()
                    .flatten()
                {
                    files.insert(String::from_utf8_lossy(&entry.path).into_owned());
                }
            }
            return Ok(Revert::Conflict {
                files: files.into_iter().collect(),
            });
        }
        let new_tree = index
            .write_tree_to(repo)
            .map_err(local(format!("write the tree reverting {id}")))?;
        tree = repo
            .find_tree(new_tree)
            .map_err(local(format!("read the tree reverting {id}")))?;
    }
    let files = changed_paths(repo, Some(onto), &tree)?;
    let outside: Vec<&str> = files
        .iter()
        .filter(|f| !allowed.contains(*f))
        .map(String::as_str)
        .collect();
    if !outside.is_empty() || (tree.is_empty() && !onto.is_empty()) {
        let commits: Vec<String> = steps.iter().map(|(id, ..)| id.to_string()).collect();
        return Err(GitError::UnsafeRevert {
            commits: commits.join(", "),
            paths: if outside.is_empty() {
                "every file".to_string()
            } else {
                outside.join(", ")
            },
        });
    }
    Ok(Revert::Tree {
        commit_tree: tree.id(),
        files: files.into_iter().collect(),
    })
}

/// The paths (old and new sides) that differ between two trees, sorted.
pub(super) fn changed_paths(
    repo: &Repository,
    old: Option<&git2::Tree<'_>>,
    new: &git2::Tree<'_>,
) -> Result<BTreeSet<String>, GitError> {
    // No old tree (a root commit) diffs against the empty tree.
    let diff = repo
        .diff_tree_to_tree(old, Some(new), None)
        .map_err(local(format!(
            "diff {:?} against {}",
            old.map(|t| t.id()),
            new.id()
        )))?;
    let mut paths = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path() {
                paths.insert(p.to_string_lossy().into_owned());
            }
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::{Classify, ErrorKind};

    #[test]
    fn revert_that_would_drop_files_outside_the_commit_is_refused() {
        // A merge on the shallow boundary shows no parents; reverting it against the empty tree
        // ("as a root commit") would delete every file. That result must be refused.
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let tree_with = |files: &[(&str, &str)]| {
            let mut b = git2::build::TreeUpdateBuilder::new();
            for (p, c) in files {
                b.upsert(*p, repo.blob(c.as_bytes()).unwrap(), git2::FileMode::Blob);
            }
            let empty = repo
                .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
                .unwrap();
            repo.find_tree(b.create_updated(&repo, &empty).unwrap())
                .unwrap()
        };
        let merged = tree_with(&[("values.yaml", "tag: 2\n"), ("Chart.yaml", "name: app\n")]);
        let empty = tree_with(&[]);
        let before = tree_with(&[("values.yaml", "tag: 1\n"), ("Chart.yaml", "name: app\n")]);
        // The base moved on: a later commit added a file. Reverting "as a root" would leave only it.
        let onto = tree_with(&[
            ("values.yaml", "tag: 2\n"),
            ("Chart.yaml", "name: app\n"),
            ("api.yaml", "replicas: 3\n"),
        ]);

        let id = Oid::from_str(&"b".repeat(40)).unwrap();
        let err = revert_trees(&repo, &onto, &[(id, merged.clone(), empty.clone())]).unwrap_err();
        assert!(matches!(err, GitError::UnsafeRevert { .. }), "{err}");
        let err = revert_trees(&repo, &merged, &[(id, merged.clone(), empty)]).unwrap_err();
        assert!(matches!(err, GitError::UnsafeRevert { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::Conflict);

        // With the true parent the same revert touches only the edited file.
        match revert_trees(&repo, &onto, &[(id, merged.clone(), before)]).unwrap() {
            Revert::Tree { files, .. } => assert_eq!(files, vec!["values.yaml".to_string()]),
            other => panic!("{other:?}"),
        };
    }
}
