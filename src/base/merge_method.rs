//! How a PR is merged: a leaf type the inputs, the GitHub client and the summary share.

/// How a PR is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMethod {
    /// A merge commit with two parents.
    Merge,
    /// One commit with the PR's combined change.
    Squash,
    /// The PR's commits replayed onto the base.
    Rebase,
}

impl MergeMethod {
    /// The name GitHub's API and the `merge-method` input use.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}
