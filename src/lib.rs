//! gitops-promote: promote a version through a GitOps release repo and Argo CD, verify it, and roll
//! it back through git when the job fails. `main.rs` is the CLI; each module here does one job.

pub mod argocd;
pub mod base;
pub mod config;
pub mod git;
pub mod github;
pub mod guard;
pub mod promote;
pub mod rollback;
pub mod runtime;
pub mod status;
pub mod strategy;
pub mod values;
pub mod verify;
