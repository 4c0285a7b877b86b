//! The record handed from the main step to the post step (DESIGN.md §4).

use crate::base::state::Record;
use crate::base::StepError;
use crate::clients::runtime::Runtime;

/// Writes `record` to `$GITHUB_STATE`.
pub fn save(rt: &mut Runtime, record: &Record) -> Result<(), StepError> {
    for (k, v) in record.to_pairs() {
        rt.state(k, &v)?;
    }
    Ok(())
}
