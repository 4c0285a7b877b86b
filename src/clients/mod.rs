//! The clients layer: one client per outside system, each with its own typed error, importing only
//! the leaf layer ([`crate::base`]) and, for the values editor, nothing else.

pub mod argocd;
pub mod git;
pub mod github;
pub mod net;
pub mod runtime;
pub mod values;
pub mod verify;
