//! The gate as a step of a flow: builds a [`VerifyConfig`] from the checked inputs, logs each
//! measurement in a group, writes the summary table and the `verification` output, and turns a
//! Failed or Inconclusive verdict into a `verification` error the failure strategy acts on.

use crate::base::{ErrorKind, StepError};
use crate::clients::runtime::Runtime;
use crate::clients::verify::{
    run, summary_table, Measurement, Phase, Report, Verdict, VerifyConfig,
};

/// The step name errors and annotations carry.
const STEP: &str = "verify";

/// One log line per measurement: `measurement 2: result = 0.0012 → Successful`.
pub fn progress_line(m: &Measurement) -> String {
    let results = m
        .results
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let note = m
        .message
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!("measurement {}: {results} → {:?}{note}", m.index, m.phase)
}

/// Runs the gate for a flow (promote, guard) or the `verify` command.
///
/// # Errors
/// `verification` for a Failed or Inconclusive verdict (after the summary and output are written);
/// the gate's own errors (`config`, `connectivity`, ...) as they are classified.
pub async fn gate(cfg: Option<&VerifyConfig>, rt: &mut Runtime) -> Result<Report, StepError> {
    let Some(cfg) = cfg else {
        return Err(StepError::msg(
            STEP,
            ErrorKind::Config,
            "the metrics gate needs `prometheus-url`",
        ));
    };
    cfg.check().map_err(|e| StepError::new(STEP, &e))?;
    let report = {
        let _group = rt.group("Metrics gate");
        let rt = &*rt;
        let progress = |m: &Measurement| rt.info(&progress_line(m));
        run(cfg, &progress)
            .await
            .map_err(|e| StepError::new(STEP, &e))?
    };
    rt.summary(&summary_table(&report));
    rt.output("verification", report.verdict.as_str())?;
    match report.verdict {
        Verdict::Successful => Ok(report),
        verdict => {
            let n = |p| report.measurements.iter().filter(|m| m.phase == p).count();
            let (count, limit) = match verdict {
                Verdict::Inconclusive => (n(Phase::Inconclusive), cfg.inconclusive_limit),
                _ => (n(Phase::Failed), cfg.failure_limit),
            };
            let mut e = StepError::msg(
                STEP,
                ErrorKind::Verification,
                format!(
                    "the metrics gate ended {}: {count} {} measurement(s) of {}, more than the limit of {limit}",
                    verdict.as_str(),
                    verdict.as_str(),
                    report.measurements.len(),
                ),
            );
            e.hint = Some("the job summary lists every measurement and its result".into());
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_name_results_phase_and_note() {
        let m = Measurement {
            index: 2,
            at: chrono::Utc::now(),
            results: vec![("errors".into(), crate::clients::verify::QueryResult::Empty)],
            phase: Phase::Inconclusive,
            message: Some("no data for `errors`".into()),
        };
        assert_eq!(
            progress_line(&m),
            "measurement 2: errors = (no data) → Inconclusive (no data for `errors`)"
        );
    }
}
