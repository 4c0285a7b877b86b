//! Reading the base's history: trailers, ancestry, the first-parent log and the search for a
//! revert.

use super::checkout::{recorded_parents, Checkout, UNSHALLOW};
use super::error::GitError;
use super::revert::changed_paths;
use super::validate::parse_sha;
use git2::Oid;
use std::collections::HashSet;

/// The value of trailer `key` among `trailers`, case-insensitively, as git compares keys.
pub fn trailer<'a>(trailers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    trailers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Parses git trailers (`Key: value` lines of the message's last paragraph), in order. A message
/// without trailers gives an empty list.
pub fn trailers(message: &str) -> Vec<(String, String)> {
    match git2::message_trailers_strs(message) {
        Ok(t) => t
            .iter()
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The PR of `repo` that a commit on the base reverts through GitHub's Revert button, which opens
/// branch `revert-<n>-<head>`, titled `Revert "..."`, with the body `Reverts owner/repo#<n>`: that
/// body line (a squash or merge whose message is the PR's description), or the branch in a merge
/// commit's title (`Merge pull request #m from owner/revert-<n>-...`). GitHub's
/// `app/controllers/.../reverts` is closed source: the names are those its PRs show.
pub fn reverted_pr(message: &str, repo: &str) -> Option<u64> {
    let number = |s: &str| -> Option<u64> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let by_body = message.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Reverts ")?;
        let (r, n) = rest.split_once('#')?;
        if !r.eq_ignore_ascii_case(repo) || n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        number(n)
    });
    let owner = repo.split('/').next().unwrap_or_default();
    let by_branch = || {
        let title = message.lines().next()?;
        let (_, from) = title
            .strip_prefix("Merge pull request #")?
            .split_once(" from ")?;
        let branch = from.strip_prefix(owner)?.strip_prefix('/')?;
        let n = branch.strip_prefix("revert-")?;
        n.split_once('-')
            .and_then(|(n, _)| number(n).filter(|_| n.chars().all(|c| c.is_ascii_digit())))
    };
    by_body.or_else(by_branch)
}

/// The PR whose merge landed a commit on the base, by GitHub's default titles: a merge commit's
/// `Merge pull request #<n> from ...`, a squash's `<title> (#<n>)`.
pub fn landed_pr(message: &str) -> Option<u64> {
    let title = message.lines().next()?.trim_end();
    if let Some(rest) = title.strip_prefix("Merge pull request #") {
        return rest.split(' ').next()?.parse().ok();
    }
    let (_, n) = title.strip_suffix(')')?.rsplit_once("(#")?;
    n.parse().ok()
}

/// Appends `new` trailers (key, value) to `message` as git does: in the last paragraph when that is
/// already a trailer block, else in a new one after a blank line.
pub fn append_trailers(message: &str, new: &[(&str, &str)]) -> String {
    let mut out = message.trim_end().to_string();
    if new.is_empty() {
        return out + "\n";
    }
    let last_paragraph = out.rsplit("\n\n").next().unwrap_or("");
    let ends_in_trailers = out.contains("\n\n")
        && !last_paragraph.is_empty()
        && trailers(&out).len() == last_paragraph.lines().count();
    out.push_str(if ends_in_trailers { "\n" } else { "\n\n" });
    for (key, value) in new {
        out.push_str(&format!("{key}: {value}\n"));
    }
    out
}

impl Checkout {
    /// Whether `descendant` is `ancestor` or has it in its history. Both are looked up in the base
    /// branch's history, fetching and deepening as needed (an unknown `descendant` refreshes the base
    /// head first, see [`Checkout::base_sha`]); a commit not on the base gives `false`.
    ///
    /// # Errors
    /// `Invalid` for a malformed SHA; fetch errors as [`clone_base`](super::clone_base).
    pub fn contains(&mut self, descendant: &str, ancestor: &str) -> Result<bool, GitError> {
        let desc = parse_sha(descendant)?;
        let anc = parse_sha(ancestor)?;
        if desc == anc {
            return Ok(true);
        }
        // The descendant may be newer than our fetch (Argo CD synced a later commit).
        if self.repo.find_commit(desc).is_err() {
            self.fetch_base()?;
        }
        loop {
            if let Some(answer) = self.reaches(desc, anc)? {
                return Ok(answer);
            }
            if !self.deepen()? {
                return Ok(false);
            }
        }
    }

    /// Walks back from `from` looking for `target`. `None` when the answer needs more history:
    /// `from` is missing, or the walk hit the shallow boundary without finding `target`.
    fn reaches(&self, from: Oid, target: Oid) -> Result<Option<bool>, GitError> {
        if self.repo.find_commit(from).is_err() {
            return Ok(None);
        }
        let mut truncated = false;
        let found = self.walk(from, usize::MAX, &mut truncated, |c| c.id() == target)?;
        Ok(match (found, truncated) {
            (Some(_), _) => Some(true),
            (None, true) => None,
            (None, false) => Some(false),
        })
    }

    /// Visits up to `limit` commits reachable from `from`, newest first, until `stop` says so, and
    /// returns that commit. Follows the parents recorded in each commit and never crosses the
    /// shallow boundary (libgit2's own revwalk fails or stops early there); `truncated` is set when
    /// the walk reached it.
    fn walk(
        &self,
        from: Oid,
        limit: usize,
        truncated: &mut bool,
        mut stop: impl FnMut(&git2::Commit<'_>) -> bool,
    ) -> Result<Option<Oid>, GitError> {
        let roots = self.shallow_roots();
        let mut queue = std::collections::BinaryHeap::new();
        let mut seen = HashSet::new();
        let mut visited = 0;
        // Queues `id` by commit time; `false` when the commit is not in the clone.
        let mut push = |queue: &mut std::collections::BinaryHeap<(i64, Oid)>, id: Oid| {
            if !seen.insert(id) {
                return true;
            }
            match self.repo.find_commit(id) {
                Ok(c) => {
                    queue.push((c.time().seconds(), id));
                    true
                }
                Err(_) => false,
            }
        };
        *truncated |= !push(&mut queue, from);
        while let Some((_, id)) = queue.pop() {
            if visited == limit {
                break;
            }
            visited += 1;
            let commit = self.read_commit(id)?;
            if stop(&commit) {
                return Ok(Some(id));
            }
            if roots.contains(&id) {
                *truncated = true;
                continue;
            }
            for parent in recorded_parents(&commit) {
                *truncated |= !push(&mut queue, parent);
            }
        }
        Ok(None)
    }

    /// Looks through the last `max_commits` commits of the base (fetching them as needed) for one
    /// whose message has the trailer `Reverts: <merge_sha>`, or the line `This reverts commit
    /// <merge_sha>.` that `git revert` and GitHub's Revert button write, or (with `pr`, the repo
    /// and number of the merged PR) says it reverts that PR ([`reverted_pr`]), newest first.
    ///
    /// # Errors
    /// `Invalid` for a malformed SHA; fetch errors as [`clone_base`](super::clone_base).
    pub fn find_revert_of(
        &mut self,
        merge_sha: &str,
        pr: Option<(&str, u64)>,
        max_commits: usize,
    ) -> Result<Option<Oid>, GitError> {
        let merge = parse_sha(merge_sha)?;
        let wanted = u32::try_from(max_commits).unwrap_or(u32::MAX);
        if self.depth.is_some_and(|d| d < wanted) {
            let depth = i32::try_from(wanted).unwrap_or(UNSHALLOW);
            self.base_sha = self.fetch_depth(depth)?;
            self.depth = if depth == UNSHALLOW {
                None
            } else {
                Some(wanted)
            };
        }
        let mut truncated = false;
        self.walk(self.base_sha, max_commits, &mut truncated, |commit| {
            let message = String::from_utf8_lossy(commit.message_bytes());
            let by_trailer = trailers(&message).iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("Reverts") && parse_sha(v).is_ok_and(|v| v == merge)
            });
            // A squash merge of a Revert-button PR keeps its commit's message in the body, so
            // the line may stand anywhere, indented as GitHub lists the squashed commits.
            let by_button = pr.is_some_and(|(repo, n)| reverted_pr(&message, repo) == Some(n));
            by_trailer
                || by_button
                || message.lines().any(|l| {
                    l.trim()
                        .strip_prefix("This reverts commit ")
                        .map(|r| r.trim_end_matches('.'))
                        .is_some_and(|r| parse_sha(r).is_ok_and(|r| r == merge))
                })
        })
    }
}

/// One commit of the base's first-parent history, as [`Checkout::find_first_parent`] visits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCommit {
    /// The commit.
    pub id: Oid,
    /// Committer time, seconds since the epoch (when it landed on the base, for merges).
    pub time: i64,
    /// The full message, trailers included.
    pub message: String,
    /// The files it changed against its first parent (its whole tree for a root commit).
    pub paths: Vec<String>,
}

impl Checkout {
    /// Walks the base's first-parent history from its head, newest first, handing each commit to
    /// `stop` until it says so; visits at most `max_commits`, deepening the shallow clone as it goes.
    /// `None` when the history ends or the bound is reached first.
    ///
    /// # Errors
    /// Fetch errors as [`clone_base`](super::clone_base).
    pub fn find_first_parent(
        &mut self,
        max_commits: usize,
        mut stop: impl FnMut(&LogCommit) -> bool,
    ) -> Result<Option<LogCommit>, GitError> {
        let mut id = self.base_sha;
        for _ in 0..max_commits {
            let first_parent = recorded_parents(&self.read_commit(id)?).first().copied();
            // The shallow boundary hides the parent: fetch deeper until it is there, as the
            // commit's changed files are read against it.
            let mut parent_present = true;
            if let Some(parent) = first_parent {
                while self.repo.find_commit(parent).is_err() {
                    if !self.deepen()? {
                        parent_present = false;
                        break;
                    }
                }
            }
            let entry = {
                let commit = self.read_commit(id)?;
                let new = self.tree_at(id)?;
                let old = match first_parent.filter(|_| parent_present) {
                    Some(p) => Some(self.tree_at(p)?),
                    None => None,
                };
                let paths = changed_paths(&self.repo, old.as_ref(), &new)?;
                let time = commit.committer().when().seconds();
                LogCommit {
                    id,
                    time,
                    message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
                    paths: paths.into_iter().collect(),
                }
            };
            if stop(&entry) {
                return Ok(Some(entry));
            }
            match first_parent {
                Some(parent) if parent_present => id = parent,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revert_button_pr_names_the_pr_it_reverts() {
        let repo = "acme/deploy";
        let squash = "Revert \"Promote tag (#7)\" (#8)\n\nReverts acme/deploy#7\n";
        assert_eq!(reverted_pr(squash, repo), Some(7));
        assert_eq!(reverted_pr(squash, "acme/other"), None, "another repo's PR");
        let merge = "Merge pull request #8 from acme/revert-7-gitops-promote/main/1-x\n\nRevert \"Promote tag\"\n";
        assert_eq!(reverted_pr(merge, repo), Some(7));
        assert_eq!(
            reverted_pr("Merge pull request #8 from acme/revert-x\n", repo),
            None
        );
        assert_eq!(
            reverted_pr("Reverts acme/deploy#7 partly, see #9\n", repo),
            None
        );
        assert_eq!(reverted_pr("Promote tag (#7)\n", repo), None);
        assert_eq!(landed_pr("Promote tag (#7)\n\nbody"), Some(7));
        assert_eq!(
            landed_pr("Merge pull request #7 from acme/gitops-promote/main/1\n"),
            Some(7)
        );
        assert_eq!(landed_pr("Promote tag\n"), None);
    }

    #[test]
    fn trailers_are_read_from_the_last_paragraph() {
        let msg = "Promote app to 1.2.3\n\nBody text: not a trailer here\n\nPromoted-by: gitops-promote\nPromotion-run: https://github.com/acme/app/actions/runs/1\n";
        assert_eq!(
            trailers(msg),
            vec![
                ("Promoted-by".to_string(), "gitops-promote".to_string()),
                (
                    "Promotion-run".to_string(),
                    "https://github.com/acme/app/actions/runs/1".to_string()
                ),
            ]
        );
        assert!(trailers("Just a subject").is_empty());
    }

    #[test]
    fn trailers_are_appended_in_one_block() {
        let msg = append_trailers(
            "Promote app to 1.2.3\n",
            &[
                ("Promoted-by", "gitops-promote"),
                ("Promotion-run", "https://x/runs/1"),
            ],
        );
        assert_eq!(
            msg,
            "Promote app to 1.2.3\n\nPromoted-by: gitops-promote\nPromotion-run: https://x/runs/1\n"
        );
        let more = append_trailers(&msg, &[("Reverts", "abc")]);
        assert!(more.ends_with("runs/1\nReverts: abc\n"), "{more}");
        assert_eq!(trailers(&more).len(), 3);
        // A body paragraph that is not a trailer block gets a blank line after it.
        let body = append_trailers("Subject\n\nSome body text.", &[("Reverts", "abc")]);
        assert_eq!(body, "Subject\n\nSome body text.\n\nReverts: abc\n");
    }
}
