//! The metrics exporter and the real Prometheus it feeds: the exposition format, the error ratio that
//! follows the tag, and Prometheus answers shaped like the recorded ones in
//! ../shared/contracts/prometheus.

use sandbox::{Options, Sandbox};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A blocking HTTP/1.0 call: (status, body). Plain std so these tests need no client crate.
fn call(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of `http_requests_total{app,code}` in an exposition body.
fn counter(body: &str, app: &str, code: &str) -> f64 {
    let prefix = format!("http_requests_total{{app=\"{app}\",code=\"{code}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{body}"))
        .parse()
        .unwrap()
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn query(prom: &str, promql: &str) -> (u16, serde_json::Value) {
    let body: String = form(promql);
    let (status, text) = call(prom, "POST", "/api/v1/query", &body);
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn form(promql: &str) -> String {
    let mut s = String::from("query=");
    for b in promql.bytes() {
        if b.is_ascii_alphanumeric() {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[test]
fn exporter_counts_grow_and_a_pinned_bad_tag_raises_the_error_ratio() {
    let sb = Sandbox::start(Options::default()).unwrap();
    let ex = &sb.exporter_url;
    let (status, first) = call(ex, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(
        first.contains("# TYPE http_requests_total counter"),
        "{first}"
    );
    let ok0 = counter(&first, "app", "200");

    assert_eq!(
        call(ex, "PUT", "/_sandbox/metrics/tags/app", "1.2.0-bad").0,
        204
    );
    let (_, pinned) = call(ex, "GET", "/metrics", "");
    let (ok1, err1) = (
        counter(&pinned, "app", "200"),
        counter(&pinned, "app", "500"),
    );
    // Wait on the counters themselves rather than sleeping a fixed time.
    let (ok2, err2, auto_err, auto_ok) =
        wait_until("50 more requests", Duration::from_secs(10), || {
            let (_, b) = call(ex, "GET", "/metrics", "");
            let (ok, err) = (counter(&b, "app", "200"), counter(&b, "app", "500"));
            (ok + err - ok1 - err1 >= 50.0).then(|| {
                (
                    ok,
                    err,
                    counter(&b, "app-auto", "500"),
                    counter(&b, "app-auto", "200"),
                )
            })
        });
    assert!(ok1 >= ok0, "counters never go down");
    let ratio = (err2 - err1) / (ok2 - ok1 + err2 - err1);
    assert!((ratio - 0.30).abs() < 0.01, "bad tag ratio {ratio}");
    let auto_ratio = auto_err / (auto_ok + auto_err);
    assert!(
        auto_ratio < 0.01,
        "unpinned app stays healthy: {auto_ratio}"
    );

    assert_eq!(call(ex, "DELETE", "/_sandbox/metrics/tags/app", "").0, 204);
    assert_eq!(call(ex, "GET", "/nope", "").0, 404);
}

#[test]
fn prometheus_scrapes_the_exporter_and_answers_like_the_recorded_contracts() {
    let sb = Sandbox::start(Options { prometheus: true }).unwrap();
    let prom = &sb.prometheus.as_ref().expect("started").url;
    assert_eq!(call(prom, "GET", "/-/ready", "").0, 200);

    let ratio = r#"sum(rate(http_requests_total{app="app",code="500"}[10s])) / sum(rate(http_requests_total{app="app"}[10s]))"#;
    let answer = wait_until("two scrapes", Duration::from_secs(60), || {
        let (status, v) = query(prom, ratio);
        assert_eq!(status, 200, "{v}");
        (!v["data"]["result"].as_array()?.is_empty()).then_some(v)
    });
    let value: f64 = answer["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value < 0.05, "good version error ratio {value}");

    let (status, bad) = query(prom, "sum(http_requests_total{");
    assert_eq!(status, 400);
    let (_, empty) = query(prom, r#"http_requests_total{app="nope"}"#);

    let Some(dir) = crate::contracts(
        "prometheus",
        "prometheus_scrapes_the_exporter_and_answers_like_the_recorded_contracts",
    ) else {
        return;
    };
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let recorded = read("query-vector-scalarish.json");
    assert_eq!(answer["status"], recorded["status"]);
    assert_eq!(answer["data"]["resultType"], recorded["data"]["resultType"]);
    assert_eq!(
        answer["data"]["result"][0]["metric"],
        recorded["data"]["result"][0]["metric"]
    );
    assert!(answer["data"]["result"][0]["value"][0].is_f64());
    assert_eq!(read("query-empty.json"), empty);
    let recorded_bad = read("query-error-bad_data-400.json");
    assert_eq!(bad["errorType"], recorded_bad["errorType"]);
    assert_eq!(bad["status"], recorded_bad["status"]);
    assert!(
        bad["error"].as_str().unwrap().contains("parse error"),
        "{bad}"
    );
}

#[test]
fn exporter_follows_the_tag_argo_cd_deployed() {
    use sandbox::world::{SEED_REPO, SEED_VALUES_PATH};
    let sb = Sandbox::start(Options::default()).unwrap();
    sb.argocd.set_poll_interval(100);
    let values = sb
        .world
        .read_file(SEED_REPO, "main", SEED_VALUES_PATH)
        .unwrap()
        .expect("seeded values");
    assert!(values.contains("\"1.0.0\""), "{values}");
    let bumped = values.replace("\"1.0.0\"", "\"1.3.0-errors\"");
    sb.world
        .commit(SEED_REPO, "main", &[(SEED_VALUES_PATH, &bumped)], "errors")
        .unwrap();
    // app-auto syncs the new commit by itself; app (manual sync) keeps 1.0.0.
    wait_until(
        "app-auto to deploy 1.3.0-errors",
        Duration::from_secs(30),
        || (sb.argocd.deployed_tag("app-auto").as_deref() == Some("1.3.0-errors")).then_some(()),
    );
    let ex = &sb.exporter_url;
    let (_, before) = call(ex, "GET", "/metrics", "");
    let base = |b: &str, app| (counter(b, app, "200"), counter(b, app, "500"));
    let ((auto_ok0, auto_err0), (ok0, err0)) = (base(&before, "app-auto"), base(&before, "app"));
    let after = wait_until("50 more requests", Duration::from_secs(10), || {
        let (_, b) = call(ex, "GET", "/metrics", "");
        (counter(&b, "app-auto", "200") - auto_ok0 >= 35.0).then_some(b)
    });
    let ratio = |b: &str, app, ok0: f64, err0: f64| {
        let (ok, err) = base(b, app);
        (err - err0) / (ok - ok0 + err - err0)
    };
    let auto = ratio(&after, "app-auto", auto_ok0, auto_err0);
    assert!((auto - 0.30).abs() < 0.01, "app-auto runs -errors: {auto}");
    let manual = ratio(&after, "app", ok0, err0);
    assert!(manual < 0.01, "app still runs 1.0.0: {manual}");
}
