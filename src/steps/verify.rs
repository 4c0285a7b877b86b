//! The gate as a step of a flow: builds a [`VerifyConfig`] from the checked inputs, logs each
//! measurement in a group, writes the summary table and the `verification` output, and turns a
//! Failed or Inconclusive verdict into a `verification` error the failure strategy acts on.

use crate::base::{ErrorKind, StepError};
use crate::clients::runtime::Runtime;
use crate::clients::verify::{
    run, summary_table, Measurement, Phase, Report, Verdict, VerifyConfig,
};
use crate::config::VerifySettings;

/// The step name errors and annotations carry.
const STEP: &str = "verify";

impl VerifyConfig {
    /// The gate's settings from the checked inputs; `None` when no `prometheus-url` is set.
    pub fn from_settings(s: &VerifySettings) -> Option<VerifyConfig> {
        Some(VerifyConfig {
            prometheus_url: s.prometheus_url.as_ref()?.to_string(),
            queries: s.queries.clone(),
            success_condition: s.success_condition.clone(),
            failure_condition: s.failure_condition.clone(),
            initial_delay: s.initial_delay,
            interval: s.interval,
            count: s.count,
            failure_limit: s.failure_limit,
            inconclusive_limit: s.inconclusive_limit,
            no_data: s.no_data,
            bearer_token: s.prometheus_token.as_ref().map(|t| t.expose().to_string()),
            timeout: s.request_timeout,
            ..VerifyConfig::default()
        })
    }
}

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
pub async fn gate(settings: &VerifySettings, rt: &mut Runtime) -> Result<Report, StepError> {
    let Some(cfg) = VerifyConfig::from_settings(settings) else {
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
        run(&cfg, &progress)
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
    use crate::clients::verify::NoData;
    use crate::config::{self, Query, Secret};
    use std::time::Duration;

    fn settings() -> VerifySettings {
        VerifySettings {
            prometheus_url: Some("http://prom:9090/".parse().unwrap()),
            prometheus_token: Some(Secret::new("tok")),
            queries: vec![Query {
                name: "errors".into(),
                promql: "sum(rate(e[1m]))".into(),
            }],
            success_condition: Some("errors < 0.05".into()),
            failure_condition: None,
            initial_delay: Duration::from_secs(5),
            interval: Duration::from_secs(30),
            count: 3,
            failure_limit: 1,
            inconclusive_limit: 2,
            no_data: config::NoData::Inconclusive,
            request_timeout: Duration::from_secs(7),
        }
    }

    #[test]
    fn settings_map_onto_the_gate() {
        let c = VerifyConfig::from_settings(&settings()).unwrap();
        assert_eq!(c.prometheus_url, "http://prom:9090/");
        assert_eq!(c.queries[0].name, "errors");
        assert_eq!(c.bearer_token.as_deref(), Some("tok"));
        assert_eq!((c.count, c.failure_limit, c.inconclusive_limit), (3, 1, 2));
        assert_eq!(c.no_data, NoData::Inconclusive);
        assert_eq!(c.initial_delay, Duration::from_secs(5));
        assert_eq!(c.timeout, Duration::from_secs(7));
        c.check().unwrap();
        let none = VerifySettings {
            prometheus_url: None,
            ..settings()
        };
        assert!(VerifyConfig::from_settings(&none).is_none());
    }

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
