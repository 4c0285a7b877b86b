//! The promote flow (DESIGN.md §2). Placeholder until the flow lands: fails as not implemented.

use crate::config::Config;
use crate::runtime::Runtime;
use crate::strategy::{ErrorKind, StepError};

/// Runs the promote flow.
///
/// # Errors
/// Always, for now: not implemented.
pub async fn run(config: &Config, runtime: &mut Runtime) -> Result<(), StepError> {
    let _ = (config, runtime);
    Err(StepError::msg(
        "promote",
        ErrorKind::Config,
        "not implemented",
    ))
}
