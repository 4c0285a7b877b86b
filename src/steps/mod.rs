//! The steps layer: the parts of DESIGN.md §2 and §3 that the flows share, each with typed input
//! and output and a [`StepError`](crate::base::StepError) naming the step. Steps use the clients
//! and the checked [`Config`](crate::config::Config); they never import a flow.

pub mod connect;
pub mod deploy;
pub mod edit;
pub mod git;
pub mod merge;
pub mod message;
pub mod pr;
pub mod record;
pub mod summary;
pub mod verify;

pub use connect::{connect_argocd, connect_github, find_apps, remote, resolve_base};
pub use deploy::{app_outputs, sync_apps, wait_apps};
pub use edit::{edit, Edit, FileEdit};
pub use merge::{merge_target, RULE_RETRY};
pub use pr::delete_merged_branch;
pub use record::save;
