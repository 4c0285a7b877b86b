//! gitops-promote: promote a version through a GitOps release repo and Argo CD, verify it, and roll
//! it back through git when the job fails. `main.rs` is the CLI; each module here does one job.

pub mod base;
pub mod clients;
pub mod config;
pub mod guard;
pub mod promote;
pub mod rollback;
pub mod status;
