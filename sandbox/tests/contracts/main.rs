//! Fidelity tests: the emulators' answers (and the product's requests) checked against the published
//! contracts in ../shared/contracts, and the git host driven by the real git CLI.

mod argocd;
mod git_host;
mod github;
mod metrics;
