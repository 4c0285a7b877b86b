//! The metrics gate against Debian's real Prometheus scraping the sandbox exporter: a good version
//! passes, a `-bad` one fails after `failure-limit` failed measurements, no data counts as `no-data`
//! says, bad PromQL is a config error and an unreachable Prometheus a connectivity error.

use crate::harness::{error_ratio, free_port, sandbox_with, sandbox_with_metrics, Ctx};
use gitops_promote::base::{Classify, ErrorKind};
use gitops_promote::clients::verify::{self, NoData, Phase, Verdict, VerifyConfig};
use sandbox::{Options, Sandbox};
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The error ratio every gate here judges by.
fn ratio(app: &str) -> String {
    error_ratio(app, "10s")
}

fn gate(prometheus_url: &str, query: &str) -> VerifyConfig {
    VerifyConfig {
        prometheus_url: prometheus_url.to_string(),
        queries: verify::parse_queries(query).unwrap(),
        success_condition: Some("result < 0.05".into()),
        interval: Duration::from_secs(1),
        ..VerifyConfig::default()
    }
}

/// Runs the gate on the sandbox's runtime, collecting what the progress callback saw.
fn run(
    sb: &Sandbox,
    cfg: &VerifyConfig,
) -> (Result<verify::Report, verify::VerifyError>, Vec<Phase>) {
    let seen = Mutex::new(Vec::new());
    let progress = |m: &verify::Measurement| seen.lock().unwrap().push(m.phase);
    let r = sb.block_on(verify::run(cfg, &progress));
    (r, seen.into_inner().unwrap())
}

/// Pins the tag the exporter considers deployed for `app` (until the Argo CD emulator reports it).
fn pin_tag(sb: &Sandbox, app: &str, tag: &str) {
    let addr = sb.exporter_url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT /_sandbox/metrics/tags/{app} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{tag}",
        tag.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.starts_with("HTTP/1.0 204") || out.starts_with("HTTP/1.1 204"),
        "{out}"
    );
}

#[test]
fn good_version_passes_and_no_data_follows_the_input() {
    let sb = sandbox_with_metrics("app");
    let url = sb.prometheus.as_ref().unwrap().url.clone();
    let cfg = VerifyConfig {
        count: 3,
        ..gate(&url, &ratio("app"))
    };
    let (report, seen) = run(&sb, &cfg);
    let report = report.unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Successful,
        "{}",
        verify::summary_table(&report)
    );
    assert_eq!(
        seen,
        [Phase::Successful; 3],
        "progress sees every measurement"
    );
    let table = verify::summary_table(&report);
    assert!(
        table.starts_with("**Verification: successful** (3 measurements"),
        "{table}"
    );

    // Several named queries, each a variable of the condition; a vector by code is a list.
    let queries = format!(
        "errors: {}\nrps: sum(rate(http_requests_total{{app=\"app\"}}[10s]))\nby_code: sum by (code) (rate(http_requests_total{{app=\"app\"}}[10s]))",
        ratio("app")
    );
    let cfg = VerifyConfig {
        success_condition: Some("errors < 0.05 and rps > 0 and len(by_code) == 2".into()),
        ..gate(&url, &queries)
    };
    let report = run(&sb, &cfg).0.unwrap();
    let table = verify::summary_table(&report);
    assert_eq!(report.verdict, Verdict::Successful, "{table}");
    let names: Vec<_> = report.measurements[0]
        .results
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["errors", "rps", "by_code"]);

    let nothing = r#"sum(rate(http_requests_total{app="no-such-app"}[10s]))"#;
    for (no_data, verdict) in [
        (NoData::Fail, Verdict::Failed),
        (NoData::Pass, Verdict::Successful),
        (NoData::Inconclusive, Verdict::Inconclusive),
    ] {
        let cfg = VerifyConfig {
            no_data,
            ..gate(&url, nothing)
        };
        let report = run(&sb, &cfg).0.unwrap();
        assert_eq!(report.verdict, verdict, "no-data {no_data:?}");
        assert_eq!(
            report.measurements[0].message.as_deref(),
            Some("no data for `result`")
        );
    }
}

#[test]
fn bad_version_fails_after_failure_limit_measurements() {
    let sb = sandbox_with_metrics("app");
    let url = sb.prometheus.as_ref().unwrap().url.clone();
    pin_tag(&sb, "app", "2.0.0-bad");
    let cfg = VerifyConfig {
        count: 30,
        failure_limit: 2,
        ..gate(&url, &ratio("app"))
    };
    let (report, seen) = run(&sb, &cfg);
    let report = report.unwrap();
    let table = verify::summary_table(&report);
    assert_eq!(report.verdict, Verdict::Failed, "{table}");
    let failed = seen.iter().filter(|p| **p == Phase::Failed).count();
    assert_eq!(
        failed, 3,
        "stops at the failure after failure-limit: {table}"
    );
    assert_eq!(seen.last(), Some(&Phase::Failed));
    assert!(report.measurements.len() < 30, "{table}");
    assert!(table.contains("❌ Failed"), "{table}");
}

#[test]
fn bad_promql_is_a_config_error_with_prometheus_message() {
    let sb = sandbox_with(Options { prometheus: true });
    let url = sb.prometheus.as_ref().unwrap().url.clone();
    let (r, seen) = run(&sb, &gate(&url, "sum(http_requests_total{"));
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("parse error"), "{e}");
    assert!(seen.is_empty(), "a rejected query is not a measurement");
}

#[test]
fn unreachable_prometheus_is_a_connectivity_error() {
    // Bind then drop a port so nothing listens on it.
    let port = free_port();
    let cfg = VerifyConfig {
        interval: Duration::from_millis(50),
        ..gate(&format!("http://127.0.0.1:{port}"), "up")
    };
    let seen = Mutex::new(Vec::new());
    let progress = |m: &verify::Measurement| seen.lock().unwrap().push(m.phase);
    let e = crate::harness::run(verify::run(&cfg, &progress)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connectivity, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_eq!(
        seen.into_inner().unwrap(),
        [Phase::Error; verify::CONSECUTIVE_ERROR_LIMIT as usize + 1]
    );
}

#[test]
fn bad_condition_fails_before_any_call() {
    let cfg = VerifyConfig {
        success_condition: Some("result <> 0.05".into()),
        ..gate("http://127.0.0.1:1", "up")
    };
    let e = cfg.check().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        e.to_string(),
        "invalid `success-condition` at column 9: expected a number, `result` or `(`, found `>`"
    );
}

#[test]
fn prometheus_faults_are_error_measurements_until_it_recovers() {
    use sandbox::{Fault, FaultRule};
    let sb = sandbox_with_metrics("app");
    let url = sb.prometheus.as_ref().unwrap().url.clone();
    let rule = |times, fault| FaultRule {
        service: "prometheus".into(),
        method: None,
        path: "/api/v1/query".into(),
        times,
        fault,
    };
    sb.faults.inject(rule(
        2,
        Fault::Status {
            status: 503,
            body: None,
        },
    ));
    sb.faults.inject(rule(1, Fault::Delay { ms: 2_000 }));
    let cfg = VerifyConfig {
        count: 2,
        timeout: Duration::from_millis(500),
        ..gate(&url, &ratio("app"))
    };
    let (report, seen) = run(&sb, &cfg);
    let report = report.unwrap();
    use Phase::{Error as E, Successful as S};
    assert_eq!(seen, [E, E, E, S, S], "{}", verify::summary_table(&report));
    assert_eq!(report.verdict, Verdict::Successful);
    let notes: Vec<_> = report
        .measurements
        .iter()
        .map(|m| m.message.clone().unwrap_or_default())
        .collect();
    assert!(notes[0].contains("answered 503"), "{notes:?}");
    assert!(
        notes[2].contains("did not answer within 500ms"),
        "{notes:?}"
    );
    // The delayed call is not in the log: the client hung up before the emulator answered.
    let calls = sb.faults.calls(Some("prometheus"));
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.injected && c.status == 503)
            .count(),
        2
    );

    // 401 will not get better by asking again: it ends the run at once.
    sb.faults.inject(rule(
        1,
        Fault::Status {
            status: 401,
            body: None,
        },
    ));
    let (r, seen) = run(&sb, &cfg);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Authentication);
    assert!(seen.is_empty());
}

/// A Prometheus answer to a scalar query that passes `result < 0.05`.
const SCALAR_OK: &str =
    r#"{"status":"success","data":{"resultType":"scalar","result":[1795297704.369,"0.01"]}}"#;

/// Serves one recorded answer to the first request on a fresh port and hands back that request.
fn capture_one_request(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 8192];
        let mut req = Vec::new();
        // Read the head, then as much body as its content-length says.
        let complete = |req: &[u8]| -> bool {
            let text = String::from_utf8_lossy(req).to_ascii_lowercase();
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                return false;
            };
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            len.is_some_and(|n| body.len() >= n)
        };
        while !complete(&req) {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early");
            req.extend_from_slice(&buf[..n]);
        }
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        String::from_utf8(req).unwrap()
    });
    (url, handle)
}

#[test]
fn the_token_reaches_prometheus_as_a_bearer_header() {
    let (url, server) = capture_one_request(SCALAR_OK);
    let cfg = VerifyConfig {
        bearer_token: Some(gitops_promote::base::Secret::new("s3cret")),
        ..gate(&url, "scalar(up)")
    };
    let report = crate::harness::run(verify::run(&cfg, &|_| {})).unwrap();
    assert_eq!(report.verdict, Verdict::Successful);
    let req = server.join().unwrap().to_ascii_lowercase();
    assert!(req.starts_with("post /api/v1/query "), "{req}");
    assert!(req.contains("authorization: bearer s3cret"), "{req}");
    assert!(req.ends_with("query=scalar%28up%29"), "{req}");
}

#[test]
fn verify_command_reports_each_measurement_and_the_verdict() {
    let ctx = Ctx::with_metrics("app");
    let url = ctx.sb.prometheus.as_ref().unwrap().url.clone();
    let query = ratio("app");
    let inputs = [
        ("command", "verify"),
        ("prometheus-url", url.as_str()),
        ("query", query.as_str()),
        ("success-condition", "result < 0.05"),
        ("interval", "1s"),
        ("count", "2"),
    ];
    let good = ctx.main(&inputs);
    good.assert_ok();
    assert_eq!(good.output("verification"), "successful");
    assert!(
        good.stdout.contains("measurement 2: result = "),
        "{}",
        good.log()
    );
    assert!(
        good.summary
            .contains("**Verification: successful** (2 measurements"),
        "{}",
        good.summary
    );

    pin_tag(&ctx.sb, "app", "2.0.0-bad");
    let bad = ctx.main(
        &[
            inputs.as_slice(),
            &[("count", "20"), ("failure-limit", "1")],
        ]
        .concat(),
    );
    bad.assert_failed();
    assert_eq!(bad.output("verification"), "failed");
    let errors = bad.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("verification error in verify")
                && e.contains("2 failed measurement(s) of ")
                && e.contains("more than the limit of 1")),
        "{errors:?}"
    );
    assert!(bad.summary.contains("❌ Failed"), "{}", bad.summary);

    let typo = ctx.main(
        &[
            inputs.as_slice(),
            &[("success-condition", "result =< 0.05")],
        ]
        .concat(),
    );
    typo.assert_failed();
    assert!(typo.log().contains("column 8"), "{}", typo.log());
    assert!(
        typo.summary.is_empty(),
        "nothing measured: {}",
        typo.summary
    );
}

#[test]
fn initial_delay_is_waited_before_the_first_query() {
    let (url, server) = capture_one_request(SCALAR_OK);
    let cfg = VerifyConfig {
        initial_delay: Duration::from_millis(400),
        ..gate(&url, "scalar(up)")
    };
    let started = Instant::now();
    let first = Mutex::new(None);
    let report = crate::harness::run(verify::run(&cfg, &|_| {
        first.lock().unwrap().get_or_insert(started.elapsed());
    }))
    .unwrap();
    server.join().unwrap();
    assert_eq!(report.verdict, Verdict::Successful);
    let first = first.into_inner().unwrap().expect("one measurement");
    assert!(
        first >= Duration::from_millis(400),
        "first measurement after {first:?}"
    );
}

/// DESIGN §9: a `-errors` tag is Healthy to Argo CD, so only the gate can catch it.
#[test]
fn promote_of_an_errors_version_fails_the_gate_and_rolls_back() {
    let ctx = Ctx::with_metrics("app");
    let before = ctx.values_on_main();
    let url = ctx.sb.prometheus.as_ref().unwrap().url.clone();
    let query = ratio("app");
    let run = ctx.main(&[
        ("set", "image.tag=1.2.0-errors"),
        ("argocd-app", "app"),
        ("prometheus-url", url.as_str()),
        ("query", query.as_str()),
        ("success-condition", "result < 0.05"),
        ("interval", "1s"),
        ("count", "20"),
    ]);
    run.assert_failed();
    assert_eq!(run.output("health"), "Healthy", "Argo CD saw nothing wrong");
    assert_eq!(run.output("verification"), "failed");
    assert!(
        run.errors().iter().any(|e| e.contains("verification")),
        "{:?}",
        run.errors()
    );
    assert!(
        run.summary.contains("**Verification: failed**"),
        "{}",
        run.summary
    );
    assert_eq!(run.output("rolled-back"), "true", "{}", run.log());
    assert_eq!(
        ctx.values_on_main(),
        before,
        "the revert restored the values"
    );
}
