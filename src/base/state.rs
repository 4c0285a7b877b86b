//! What the main step hands the post step (DESIGN.md §4): written to `$GITHUB_STATE` right after each
//! step that changes the outside world, read back from `STATE_*` by rollback. Flat strings, because
//! that is all the runner carries; lists and maps are JSON.

use std::collections::BTreeMap;

/// How far a promotion got; rollback decides what to undo from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Nothing remote changed yet.
    None,
    /// Our branch exists on the remote.
    Pushed,
    /// Our PR is open.
    PrOpen,
    /// Our PR is merged into the base.
    Merged,
    /// Every app is Synced and Healthy at a revision containing the merge.
    Synced,
    /// The metrics gate passed.
    Verified,
    /// The promotion was reverted.
    RolledBack,
    /// The promotion finished; nothing for the post step to do unless a later step failed.
    Done,
}

impl Phase {
    /// The name written to state.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::None => "",
            Phase::Pushed => "pushed",
            Phase::PrOpen => "pr-open",
            Phase::Merged => "merged",
            Phase::Synced => "synced",
            Phase::Verified => "verified",
            Phase::RolledBack => "rolled-back",
            Phase::Done => "done",
        }
    }

    /// Parses a state value; unknown or empty is `None`, so a foreign state does nothing.
    pub fn parse(s: &str) -> Phase {
        match s {
            "pushed" => Phase::Pushed,
            "pr-open" => Phase::PrOpen,
            "merged" => Phase::Merged,
            "synced" => Phase::Synced,
            "verified" => Phase::Verified,
            "rolled-back" => Phase::RolledBack,
            "done" => Phase::Done,
            _ => Phase::None,
        }
    }

    /// Whether our PR was merged in this phase, so undoing means a revert.
    pub fn is_merged(self) -> bool {
        matches!(
            self,
            Phase::Merged | Phase::Synced | Phase::Verified | Phase::Done
        )
    }
}

/// Everything rollback needs to undo a promotion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// How far it got.
    pub phase: Option<Phase>,
    /// `owner/name` of the release repo.
    pub repo: String,
    /// The base branch.
    pub base: String,
    /// The base head the promotion started from.
    pub base_sha: String,
    /// Our head branch.
    pub branch: String,
    /// Our PR.
    pub pr_number: Option<u64>,
    /// The merge commit (for rebase merges, the last replayed commit).
    pub merge_sha: String,
    /// Every commit the merge put on the base, oldest first.
    pub merged_commits: Vec<String>,
    /// The apps synced.
    pub apps: Vec<String>,
    /// Each app's revision before the sync.
    pub previous_revisions: BTreeMap<String, String>,
    /// `skip` when the main step ended by ignore or abort, so the post step must do nothing.
    pub on_failure: String,
}

impl Record {
    /// The state entries for this record (names as in DESIGN.md §4).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "phase",
                self.phase.unwrap_or(Phase::None).as_str().to_string(),
            ),
            ("repo", self.repo.clone()),
            ("base", self.base.clone()),
            ("base-sha", self.base_sha.clone()),
            ("branch", self.branch.clone()),
            (
                "pr-number",
                self.pr_number.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("merge-sha", self.merge_sha.clone()),
            (
                "merged-commits",
                serde_json::to_string(&self.merged_commits).unwrap(),
            ),
            ("apps", serde_json::to_string(&self.apps).unwrap()),
            (
                "previous-revisions",
                serde_json::to_string(&self.previous_revisions).unwrap(),
            ),
            ("on-failure", self.on_failure.clone()),
        ]
    }

    /// Reads a record back from state entries; missing or malformed entries are empty.
    pub fn from_pairs(get: impl Fn(&str) -> Option<String>) -> Record {
        let s = |k: &str| get(k).unwrap_or_default();
        Record {
            phase: Some(Phase::parse(&s("phase"))),
            repo: s("repo"),
            base: s("base"),
            base_sha: s("base-sha"),
            branch: s("branch"),
            pr_number: s("pr-number").parse().ok(),
            merge_sha: s("merge-sha"),
            merged_commits: serde_json::from_str(&s("merged-commits")).unwrap_or_default(),
            apps: serde_json::from_str(&s("apps")).unwrap_or_default(),
            previous_revisions: serde_json::from_str(&s("previous-revisions")).unwrap_or_default(),
            on_failure: s("on-failure"),
        }
    }

    /// The phase, `None` when nothing was recorded.
    pub fn phase(&self) -> Phase {
        self.phase.unwrap_or(Phase::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_trip_through_state() {
        let rec = Record {
            phase: Some(Phase::Merged),
            repo: "acme/deploy".into(),
            base: "main".into(),
            base_sha: "a".repeat(40),
            branch: "gitops-promote/main/1-1".into(),
            pr_number: Some(7),
            merge_sha: "b".repeat(40),
            merged_commits: vec!["c".repeat(40), "b".repeat(40)],
            apps: vec!["app".into()],
            previous_revisions: [("app".to_string(), "d".repeat(40))].into(),
            on_failure: String::new(),
        };
        let pairs: BTreeMap<_, _> = rec.to_pairs().into_iter().collect();
        let back = Record::from_pairs(|k| pairs.get(k).cloned());
        assert_eq!(back, rec);
    }

    #[test]
    fn empty_state_means_nothing_happened() {
        let rec = Record::from_pairs(|_| None);
        assert_eq!(rec.phase(), Phase::None);
        assert!(!rec.phase().is_merged());
        assert_eq!(rec.pr_number, None);
    }
}
