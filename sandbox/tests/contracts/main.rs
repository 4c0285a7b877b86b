//! Fidelity tests: the emulators' answers (and the product's requests) checked against the published
//! contracts in ../shared/contracts, and the git host driven by the real git CLI.

mod argocd;
mod git_host;
mod github;
mod metrics;
mod serve;

use std::path::PathBuf;

/// `../shared/contracts/<part>` beside the workspace, or `None` with a SKIPPED note naming `test`.
pub fn contracts(part: &str, test: &str) -> Option<PathBuf> {
    sandbox::contract::contracts_dir(part, test)
}
