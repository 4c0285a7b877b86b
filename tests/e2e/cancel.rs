//! Cancellation as the runner does it (issue #12): the step is PID 1 of its own PID namespace, as
//! in its container, and gets SIGINT, then SIGTERM 7.5 s later, then the CLI in front of it is
//! killed 2.5 s after that (actions/runner `src/Runner.Sdk/ProcessInvoker.cs:32-33`, `:443-465`).
//! A PID 1 without handlers ignores both signals, so these tests fail for a binary that has none.

use crate::harness::{wait_until, Ctx, Job, Run, Spawned, Step, REPO};
use sandbox::argocd::HealthRule;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// A main step started as its container would be: PID 1 of a new PID namespace.
struct Pid1(Spawned);

impl Pid1 {
    fn main(ctx: &Ctx, inputs: &[(&str, &str)]) -> Pid1 {
        let work = ctx.workspace();
        let all = ctx.inputs(inputs);
        let state = BTreeMap::new();
        let launch = ctx.launch(Step::Main, Job::Success, &all, &state, &work);
        let inner = launch.command();
        // `unshare -pf` forks the step as PID 1 of a new namespace and waits for it.
        let mut cmd = Command::new("/usr/bin/unshare");
        cmd.args(["--pid", "--fork", "--"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .current_dir(inner.get_current_dir().unwrap())
            .stdin(std::process::Stdio::null());
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        Pid1(Spawned::spawn(cmd, work))
    }

    fn state(&self) -> BTreeMap<String, String> {
        self.0.state()
    }

    /// The host's pid of the namespace's PID 1 (unshare's only child).
    fn pid1(&self) -> i32 {
        let me = self.0.child.id();
        let path = format!("/proc/{me}/task/{me}/children");
        let mut pid = 0;
        wait_until("the step to start", Duration::from_secs(10), || {
            pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            pid > 0
        });
        pid
    }

    /// Cancels the step as the runner does and returns what it left, and whether it had to be
    /// killed (it did not stop by itself within the runner's 10 s).
    fn cancel(mut self) -> (Run, bool) {
        let pid = self.pid1();
        let start = Instant::now();
        // SAFETY: kill(2) on a process this test started.
        unsafe { kill(pid, SIGINT) };
        let mut term_sent = false;
        let killed = loop {
            if self.0.child.try_wait().unwrap().is_some() {
                break false;
            }
            let t = start.elapsed();
            if t > Duration::from_millis(7_500) && !term_sent {
                unsafe { kill(pid, SIGTERM) };
                term_sent = true;
            }
            if t > Duration::from_secs(10) {
                // The runner kills only the docker CLI; the container would go on. Here the test
                // ends it, and reports that the step did not stop.
                unsafe { kill(pid, SIGKILL) };
                self.0.child.wait().unwrap();
                break true;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (self.0.finish(), killed)
    }
}

/// Tags ending in `-slow` stay Progressing, so the step is cancelled while it waits for health.
fn slow_health(ctx: &Ctx) {
    ctx.sb.argocd.add_rule(HealthRule {
        app: None,
        suffix: "-slow".into(),
        health: "Progressing".into(),
        delay_ms: 0,
        message: Some(
            "Waiting for rollout to finish: 0 of 1 updated replicas are available".into(),
        ),
        healthy_after_ms: None,
    });
}

#[test]
fn cancelled_while_waiting_for_health_the_step_stops_and_the_post_step_reverts() {
    let ctx = Ctx::new();
    slow_health(&ctx);
    let before = ctx.values_on_main();
    let inputs = [("set", "image.tag=1.4.0-slow"), ("health-timeout", "5m")];
    let step = Pid1::main(&ctx, &inputs);
    wait_until("the merge to be recorded", Duration::from_secs(60), || {
        step.state().get("phase").map(String::as_str) == Some("merged")
    });
    std::thread::sleep(Duration::from_millis(500));
    let (main, killed) = step.cancel();
    assert!(
        !killed,
        "the step ignored SIGINT and SIGTERM:\n{}",
        main.log()
    );
    assert_eq!(main.code, 1, "{}", main.log());
    let pr = main.state["pr-number"].clone();
    let warning = main
        .log()
        .lines()
        .find(|l| l.starts_with("::warning title=cancelled::"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no cancellation warning:\n{}", main.log()));
    assert!(
        warning.contains("stopped on SIGINT") && warning.contains(&format!("PR #{pr} is merged")),
        "{warning}"
    );
    assert!(main.summary.contains("What stands"), "{}", main.summary);
    assert_eq!(
        ctx.sb.argocd.deployed_tag("app").as_deref(),
        Some("1.4.0-slow")
    );

    // The runner runs the post step for the cancelled job, with the inputs of the main step.
    ctx.sb.argocd.clear_rules();
    let post = ctx
        .post_after(Job::Cancelled, &inputs, &main.state)
        .expect("post-if holds for a cancelled job");
    post.assert_ok();
    assert!(
        post.log().contains("the job was cancelled after the merge"),
        "{}",
        post.log()
    );
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));

    // Re-running the post step finds the revert and does nothing more.
    let head = ctx.main_sha();
    let again = ctx
        .post_after(Job::Cancelled, &inputs, &main.state)
        .unwrap();
    again.assert_ok();
    assert_eq!(ctx.main_sha(), head, "{}", again.log());
    let reverts = ctx
        .sb
        .github
        .prs(REPO)
        .into_iter()
        .filter(|p| p.title.starts_with("Revert"))
        .count();
    assert_eq!(reverts, 1);
}

#[test]
fn cancelled_before_the_merge_the_post_step_closes_the_pr() {
    let ctx = Ctx::new();
    let before = ctx.main_sha();
    // The gate waits for an approval that never comes.
    let inputs = [("set", "image.tag=1.5.0"), ("required-approvals", "1")];
    let step = Pid1::main(&ctx, &inputs);
    wait_until("the PR to be recorded", Duration::from_secs(60), || {
        step.state().get("phase").map(String::as_str) == Some("pr-open")
    });
    let (main, killed) = step.cancel();
    assert!(!killed, "{}", main.log());
    assert!(
        main.log().contains("is open and not merged"),
        "{}",
        main.log()
    );
    let post = ctx
        .post_after(Job::Cancelled, &inputs, &main.state)
        .unwrap();
    post.assert_ok();
    let prs = ctx.sb.github.prs(REPO);
    assert!(
        prs.iter().all(|p| p.state == "closed" && !p.merged),
        "{prs:?}"
    );
    assert_eq!(ctx.main_sha(), before);
}

#[test]
fn a_job_cancelled_after_the_promotion_finished_keeps_it() {
    let ctx = Ctx::new();
    let inputs = [("set", "image.tag=1.6.0")];
    let main = ctx.main(&inputs);
    main.assert_ok();
    let promoted = ctx.values_on_main();
    let post = ctx
        .post_after(Job::Cancelled, &inputs, &main.state)
        .expect("post-if holds for a cancelled job");
    post.assert_ok();
    assert!(post.log().contains("stays deployed"), "{}", post.log());
    assert_eq!(ctx.values_on_main(), promoted);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.6.0"));
    // A successful job has no post step at all.
    assert!(ctx.post_after(Job::Success, &inputs, &main.state).is_none());
}
