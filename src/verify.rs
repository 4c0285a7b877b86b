//! The metrics gate (DESIGN.md §7). Placeholder until the gate lands: fails as not implemented.

use crate::config::Config;
use crate::runtime::Runtime;
use crate::strategy::{ErrorKind, StepError};

/// Runs the metrics gate.
///
/// # Errors
/// Always, for now: not implemented.
pub async fn run(config: &Config, runtime: &mut Runtime) -> Result<(), StepError> {
    let _ = (config, runtime);
    Err(StepError::msg(
        "verify",
        ErrorKind::Config,
        "not implemented",
    ))
}
