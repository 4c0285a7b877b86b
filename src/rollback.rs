//! The rollback flow (DESIGN.md §3). Placeholder until the flow lands: fails as not implemented.

use crate::config::Config;
use crate::runtime::Runtime;
use crate::strategy::{ErrorKind, StepError};

/// Runs the rollback flow; `from_post` means the state of the main step drives it.
///
/// # Errors
/// Always, for now: not implemented.
pub async fn run(config: &Config, runtime: &mut Runtime, from_post: bool) -> Result<(), StepError> {
    let _ = (config, runtime, from_post);
    Err(StepError::msg(
        "rollback",
        ErrorKind::Config,
        "not implemented",
    ))
}
