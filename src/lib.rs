//! gitops-promote: promote a version through a GitOps release repo and Argo CD, verify it, and roll
//! it back through git when the job fails. `main.rs` is the CLI. The layers, from the top, each
//! importing only those below it:
//!
//! - [`flows`]: promote, rollback, guard, status and the `edit` command, as lists of steps;
//! - [`steps`]: the steps the flows share (connect, edit, commit and push, PR, merge, deploy,
//!   metrics gate, summary);
//! - [`config`]: the inputs, checked into one typed [`config::Config`] before anything is touched;
//! - [`clients`]: one client per outside system (git, GitHub, Argo CD, Prometheus, the Actions
//!   runner) and the values editor;
//! - [`base`]: errors and the small types everything shares.

pub mod base;
pub mod clients;
pub mod config;
pub mod flows;
pub mod steps;
