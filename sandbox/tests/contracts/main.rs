//! Fidelity tests: the emulators' answers (and the product's requests) checked against the published
//! contracts in ../shared/contracts, and the git host driven by the real git CLI.

mod argocd;
mod git_host;
mod github;
mod metrics;
mod serve;

use std::path::PathBuf;

/// `../shared/contracts/<part>` beside the workspace, or `None` with a SKIPPED note naming `test`
/// (CI has the folder; a checkout without it skips, never passes silently).
pub fn contracts(part: &str, test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/contracts")
        .join(part);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED {test}: no contracts at {} (CI has them beside the clone)",
            dir.display()
        );
        None
    }
}
