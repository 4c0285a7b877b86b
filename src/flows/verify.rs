//! The `verify` command: the metrics gate alone, for a workflow that deploys by other means.

use crate::base::StepError;
use crate::clients::runtime::Runtime;
use crate::config::Config;
use crate::steps::verify::gate;

/// The `verify` command: the gate alone.
///
/// # Errors
/// As [`gate`].
pub async fn command(config: &Config, rt: &mut Runtime) -> Result<(), StepError> {
    gate(config.verify.as_ref(), rt).await.map(|_| ())
}
