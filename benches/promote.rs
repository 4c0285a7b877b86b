//! Benches 2 to 4 of issue #8, end to end: the built binary run as the Actions runner runs it
//! (`tests/e2e/harness.rs`) against the sandbox's GitHub and Argo CD emulators.
//!
//! 2. Health detection: a thread samples the Argo CD emulator's app every millisecond and records the
//!    instant it turns Healthy after the sync; the latency is from that instant to the exit of
//!    promote. With the watch stream, and with the stream refused (the poll fallback).
//! 3. Fan-out: a whole promotion to 1 app against the same promotion to 50 apps (by selector).
//! 4. Calls per promotion, from the emulators' call log, grouped by route.
//!
//! Not a pass/fail test: it prints Markdown (medians and ratios measured in this run) for
//! docs/performance.md; `bench/run.sh` runs it. `BENCH_RUNS` sets the runs per case (default 5).

#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/runner.rs"]
mod runner;

use harness::Ctx;
use sandbox::argocd::NewApp;
use sandbox::{Fault, FaultRule};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Apps in the fan-out case.
const FAN: usize = 50;

static TAG: AtomicU32 = AtomicU32::new(1);

/// A tag no earlier run promoted, so every run changes the values file.
fn next_tag() -> String {
    format!("image.tag=1.1.{}", TAG.fetch_add(1, Ordering::SeqCst))
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let ctx = Ctx::new();
    // The auto-sync app would deploy every merge too: keep its background work out of the timings.
    ctx.sb.argocd.set_auto_sync("app-auto", false);
    let mut out = String::new();
    out.push_str(&calls(&ctx));
    out.push_str(&health(&ctx, runs));
    out.push_str(&fan_out(&ctx, runs));
    print!("{out}");
}

/// Runs one promotion of a new tag to the apps `inputs` name, and panics with its log on failure.
fn promote(ctx: &Ctx, inputs: &[(&str, &str)]) -> Duration {
    let tag = next_tag();
    let mut all = vec![("set", tag.as_str())];
    all.extend_from_slice(inputs);
    let t = Instant::now();
    let run = ctx.main(&all);
    let took = t.elapsed();
    run.assert_ok();
    took
}

/// Bench 4: every call one promotion to one manual-sync app makes, by route.
fn calls(ctx: &Ctx) -> String {
    // A warm-up promotion, so the one counted is a steady-state one.
    promote(ctx, &[]);
    ctx.sb.faults.clear_calls();
    promote(ctx, &[]);
    let mut by_route: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let log = ctx.sb.faults.calls(None);
    for c in &log {
        *by_route
            .entry((c.service.clone(), c.method.clone(), route(&c.path)))
            .or_default() += 1;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Bench 4: calls per promotion (one manual-sync app, no approvals, no checks)\n"
    );
    let _ = writeln!(s, "| service | method | route | calls |");
    let _ = writeln!(s, "|---|---|---|---|");
    for ((svc, m, r), n) in &by_route {
        let _ = writeln!(s, "| {svc} | {m} | `{r}` | {n} |");
    }
    for svc in ["github", "argocd"] {
        let n = log.iter().filter(|c| c.service == svc).count();
        let _ = writeln!(s, "\n{svc}: {n} calls in total");
    }
    s.push('\n');
    s
}

/// A call's path with numbers and SHAs replaced, so calls group by route.
fn route(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{n}".to_string()
            } else if seg.len() == 40 && seg.bytes().all(|b| b.is_ascii_hexdigit()) {
                "{sha}".to_string()
            } else if seg.starts_with("gitops-promote") {
                "{branch}".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Bench 2: from the instant the app turns Healthy to the exit of promote.
fn health(ctx: &Ctx, runs: usize) -> String {
    let watch = health_runs(ctx, runs);
    // The stream refused for the rest of this case: promote falls back to polling every 2 s.
    ctx.sb.faults.inject(FaultRule {
        service: "argocd".into(),
        method: Some("GET".into()),
        path: "/api/v1/stream/applications".into(),
        times: 1_000_000,
        fault: Fault::Status {
            status: 503,
            body: None,
        },
    });
    let poll = health_runs(ctx, runs);
    ctx.sb.faults.clear();
    let med = |v: &[Duration]| median(v.to_vec());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Bench 2: Healthy → promote returns (medians of {runs} runs, ms)\n"
    );
    let _ = writeln!(s, "| mode | median | min | max |");
    let _ = writeln!(s, "|---|---|---|---|");
    for (mode, v) in [("watch stream", &watch), ("poll fallback (2 s)", &poll)] {
        let _ = writeln!(
            s,
            "| {mode} | **{}** | {} | {} |",
            ms(med(v)),
            ms(*v.iter().min().unwrap()),
            ms(*v.iter().max().unwrap())
        );
    }
    s.push('\n');
    s
}

/// Promotes `runs` times to `app`, each time measuring Healthy → exit.
fn health_runs(ctx: &Ctx, runs: usize) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let stop = Arc::new(AtomicBool::new(false));
            let (healthy, exited) = std::thread::scope(|sc| {
                let stop2 = stop.clone();
                let sampler = sc.spawn(move || healthy_instant(ctx, "app", &stop2));
                promote(ctx, &[]);
                let exited = Instant::now();
                stop.store(true, Ordering::SeqCst);
                (sampler.join().unwrap(), exited)
            });
            let healthy = healthy.expect("the app turned Healthy while promote ran");
            exited.saturating_duration_since(healthy)
        })
        .collect()
}

/// Samples `app` every millisecond; returns the first instant it is Healthy after being
/// Progressing (the deploy of this run), or `None` when `stop` is set first.
fn healthy_instant(ctx: &Ctx, app: &str, stop: &AtomicBool) -> Option<Instant> {
    let mut progressing = false;
    while !stop.load(Ordering::SeqCst) {
        let health = ctx
            .sb
            .argocd
            .application(app)
            .and_then(|a| a["status"]["health"]["status"].as_str().map(str::to_string))
            .unwrap_or_default();
        let now = Instant::now();
        match health.as_str() {
            "Progressing" => progressing = true,
            "Healthy" if progressing => return Some(now),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Bench 3: a whole promotion to 1 app against one to 50 apps, chosen by the same kind of selector.
fn fan_out(ctx: &Ctx, runs: usize) -> String {
    let mk = |name: String, fleet: &str| {
        ctx.sb
            .argocd
            .create_app(NewApp {
                name,
                labels: BTreeMap::from([("fleet".to_string(), fleet.to_string())]),
                auto_sync: false,
                path: None,
                target_revision: None,
                project: None,
                sync_options: vec![],
            })
            .expect("create app");
    };
    mk("solo".into(), "solo");
    for i in 0..FAN {
        mk(format!("fan-{i:02}"), "fan");
    }
    let (mut one, mut many) = (Vec::new(), Vec::new());
    let mut argo_calls = BTreeMap::new();
    for _ in 0..runs {
        one.push(promote(
            ctx,
            &[("argocd-app", ""), ("argocd-selector", "fleet=solo")],
        ));
        ctx.sb.faults.clear_calls();
        many.push(promote(
            ctx,
            &[("argocd-app", ""), ("argocd-selector", "fleet=fan")],
        ));
        // Proof that every app was synced and waited for, and what that cost in calls.
        argo_calls.clear();
        for c in ctx.sb.faults.calls(Some("argocd")) {
            let name = c.path.rsplit('/').next().unwrap_or_default().to_string();
            let kind = match name.as_str() {
                "sync" | "resource-tree" => name,
                "applications" if c.path.contains("/stream/") => "stream".to_string(),
                "applications" => "list".to_string(),
                _ => "get".to_string(),
            };
            *argo_calls.entry(kind).or_insert(0usize) += 1;
        }
    }
    let (a, b) = (median(one), median(many));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Bench 3: fan-out, whole promotion (medians of {runs} runs, ms)\n"
    );
    let _ = writeln!(s, "| apps | median | ratio to 1 app |");
    let _ = writeln!(s, "|---|---|---|");
    let _ = writeln!(s, "| 1 | {} | 1.00x |", ms(a));
    let _ = writeln!(
        s,
        "| {FAN} | {} | **{:.2}x** |",
        ms(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "\nArgo CD calls in the last {FAN}-app promotion: {}",
        argo_calls
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s.push('\n');
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}
