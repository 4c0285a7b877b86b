//! Unit tests of the gate's pure parts: query input, recorded Prometheus answers, the phase of one
//! measurement, the verdict of a run and the summary table.

use super::prom::parse_answer;
use super::*;
use Phase::{Error as E, Failed as F, Inconclusive as I, Successful as S};

fn cfg(success: Option<&str>, failure: Option<&str>) -> VerifyConfig {
    VerifyConfig {
        prometheus_url: "http://127.0.0.1:9090".into(),
        queries: parse_queries("up").unwrap(),
        success_condition: success.map(Into::into),
        failure_condition: failure.map(Into::into),
        ..VerifyConfig::default()
    }
}

fn judged(success: Option<&str>, failure: Option<&str>, r: QueryResult, no_data: NoData) -> Phase {
    let c = cfg(success, failure).conditions().unwrap();
    let results = vec![("result".to_string(), r)];
    judge(c.success.as_ref(), c.failure.as_ref(), &results, no_data)
        .unwrap()
        .0
}

#[test]
fn one_line_is_one_query_named_result() {
    let q = parse_queries(r#"  sum(rate(x{a="b"}[1m:10s])) / job:rate5m  "#).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].name, "result");
    assert_eq!(q[0].promql, r#"sum(rate(x{a="b"}[1m:10s])) / job:rate5m"#);
}

#[test]
fn yaml_lines_name_several_queries() {
    let q = parse_queries(
        "errors: sum(rate(e[1m]))\n\n# comment\nlatency: 'histogram_quantile(0.9, x)'\n",
    )
    .unwrap();
    let names: Vec<_> = q
        .iter()
        .map(|q| (q.name.as_str(), q.promql.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("errors", "sum(rate(e[1m]))"),
            ("latency", "histogram_quantile(0.9, x)")
        ]
    );
    let e = parse_queries("a: up\nsum(up)").unwrap_err().to_string();
    assert!(e.contains("`query`") && e.contains("line 2"), "{e}");
    let e = parse_queries("a: up\na: up").unwrap_err().to_string();
    assert!(e.contains("used twice"), "{e}");
    assert!(parse_queries(" \n").is_err());
}

#[test]
fn check_rejects_bad_conditions_naming_input_and_column() {
    let e = cfg(Some("result < 0.05"), Some("result >> 1"))
        .check()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let msg = e.to_string();
    assert!(msg.contains("`failure-condition` at column 9"), "{msg}");
    let mut c = cfg(Some("result < 1"), None);
    c.count = 0;
    assert!(c.check().unwrap_err().to_string().contains("`count`"));
    c.count = 1;
    c.prometheus_url = "localhost:9090".into();
    assert!(c
        .check()
        .unwrap_err()
        .to_string()
        .contains("`prometheus-url`"));
    c.prometheus_url = "http://127.0.0.1:9090".into();
    c.bearer_token = Some(crate::base::Secret::new("tok\n"));
    assert!(c
        .check()
        .unwrap_err()
        .to_string()
        .contains("`prometheus-token`"));
    assert!(cfg(Some("result < 0.05"), None).check().is_ok());
}

#[test]
fn measurement_phase_follows_argo_evaluate_result() {
    use QueryResult::Number as N;
    let nd = NoData::Fail;
    assert_eq!(judged(Some("result < 0.05"), None, N(0.01), nd), S);
    assert_eq!(judged(Some("result < 0.05"), None, N(0.3), nd), F);
    assert_eq!(judged(None, Some("result > 0.1"), N(0.3), nd), F);
    assert_eq!(judged(None, Some("result > 0.1"), N(0.01), nd), S);
    assert_eq!(
        judged(Some("result < 0.05"), Some("result > 0.1"), N(0.07), nd),
        I
    );
    // Failure wins when both hold.
    assert_eq!(
        judged(Some("result < 1"), Some("result > 0.1"), N(0.3), nd),
        F
    );
    assert_eq!(judged(None, None, N(0.3), nd), S);
}

#[test]
fn no_data_counts_as_the_input_says() {
    let s = Some("result < 0.05");
    assert_eq!(judged(s, None, QueryResult::Empty, NoData::Fail), F);
    assert_eq!(judged(s, None, QueryResult::Empty, NoData::Pass), S);
    assert_eq!(judged(s, None, QueryResult::Empty, NoData::Inconclusive), I);
    assert_eq!(NoData::parse(" Inconclusive"), Some(NoData::Inconclusive));
    assert_eq!(NoData::parse("skip"), None);
}

#[test]
fn conditions_that_do_not_fit_the_data_are_errors() {
    let c = cfg(Some("result < 0.05"), None).conditions().unwrap();
    let results = vec![("result".to_string(), QueryResult::List(vec![1.0, 2.0]))];
    let (input, msg) = judge(c.success.as_ref(), None, &results, NoData::Fail).unwrap_err();
    assert_eq!(input, "success-condition");
    assert!(msg.contains("result[i]"), "{msg}");
}

#[test]
fn run_verdict_follows_limits() {
    use Assessment::{Done, Running, TooManyErrors};
    // count 3, no tolerance.
    assert_eq!(assess(&[S, S], 3, 0, 0), Running);
    assert_eq!(assess(&[S, S, S], 3, 0, 0), Done(Verdict::Successful));
    assert_eq!(
        assess(&[S, F], 3, 0, 0),
        Done(Verdict::Failed),
        "fails at once"
    );
    // failure-limit 1: one failure tolerated, the second ends it.
    assert_eq!(assess(&[F, S, S], 3, 1, 0), Done(Verdict::Successful));
    assert_eq!(assess(&[F, F], 5, 1, 0), Done(Verdict::Failed));
    // inconclusive-limit.
    assert_eq!(assess(&[I], 3, 0, 0), Done(Verdict::Inconclusive));
    assert_eq!(assess(&[I, S, S], 3, 0, 1), Done(Verdict::Successful));
    assert_eq!(assess(&[I, I], 3, 0, 1), Done(Verdict::Inconclusive));
    // Errors measure nothing: they do not count towards `count`, only towards the error limit.
    assert_eq!(assess(&[S, E, S], 3, 0, 0), Running);
    assert_eq!(assess(&[E, E, E, E], 1, 0, 0), Running);
    assert_eq!(assess(&[E, E, E, E, E], 1, 0, 0), TooManyErrors);
    assert_eq!(assess(&[E, E, E, E, S], 1, 0, 0), Done(Verdict::Successful));
}

#[test]
fn summary_table_lists_each_measurement() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-21T23:40:01Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let report = Report {
        verdict: Verdict::Failed,
        measurements: vec![
            Measurement {
                index: 1,
                at,
                results: vec![("result".into(), QueryResult::Number(0.3))],
                phase: F,
                message: None,
            },
            Measurement {
                index: 2,
                at,
                results: vec![],
                phase: E,
                message: Some("a | b".into()),
            },
        ],
    };
    let t = summary_table(&report);
    assert!(
        t.starts_with("**Verification: failed** (2 measurements: 0 successful, 1 failed"),
        "{t}"
    );
    assert!(
        t.contains("| 1 | 23:40:01 | result = 0.3 | ❌ Failed |  |\n"),
        "{t}"
    );
    assert!(
        t.contains("| 2 | 23:40:01 |  | ⚠️ Error | a \\| b |\n"),
        "{t}"
    );
}

/// The recorded answers from Prometheus 2.42 in ../shared/contracts/prometheus.
#[test]
fn recorded_prometheus_answers_parse() {
    // Under CI a missing folder fails the test (sandbox::contract).
    let Some(dir) =
        sandbox::contract::contracts_dir("prometheus", "recorded_prometheus_answers_parse")
    else {
        return;
    };
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let parse = |f: &str, status| parse_answer("http://p", "result", status, &read(f));
    assert_eq!(
        parse("query-vector-scalarish.json", 200).unwrap(),
        QueryResult::Number(0.4444444444444444)
    );
    assert_eq!(
        parse("query-vector-by-code.json", 200).unwrap(),
        QueryResult::List(vec![8.75, 7.0])
    );
    assert_eq!(
        parse("query-scalar.json", 200).unwrap(),
        QueryResult::Number(13.483146067415731)
    );
    assert_eq!(parse("query-empty.json", 200).unwrap(), QueryResult::Empty);
    assert_eq!(
        parse("query-nan-or-empty.json", 200).unwrap(),
        QueryResult::Empty
    );
    let e = parse("query-error-bad_data-400.json", 400).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string()
            .contains("parse error: unexpected end of input inside braces (bad_data)"),
        "{e}"
    );
}

#[test]
fn unexpected_answers_are_classified() {
    let e = parse_answer("http://p", "q", 503, b"Service Unavailable").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connectivity);
    assert!(e.to_string().contains("503: Service Unavailable"), "{e}");
    assert_eq!(
        parse_answer("http://p", "q", 401, b"").unwrap_err().kind(),
        ErrorKind::Authentication
    );
    let e = parse_answer("http://p", "q", 404, b"404 page not found").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.hint().unwrap().contains("path prefix"));
    let e = parse_answer("http://p", "q", 200, b"<html>").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connectivity);
    let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    let e = parse_answer("http://p", "q", 200, matrix).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("matrix"), "{e}");
}

#[test]
fn debug_output_hides_secrets() {
    let c = VerifyConfig {
        bearer_token: Some(crate::base::Secret::new("tok-123")),
        ..cfg(None, None)
    };
    let shown = format!("{c:?}");
    assert!(!shown.contains("tok-123"), "{shown}");
    assert!(shown.contains("bearer_token: Some(\"***\")"), "{shown}");
}
