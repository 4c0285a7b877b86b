//! `sandbox demo`: the README's first command. Starts the sandbox, then runs the real
//! `gitops-promote` binary the way the Actions runner would, twice: a good version (PR merged, apps
//! Synced and Healthy) and a `-bad` one (Degraded, rolled back through a revert PR, Healthy again),
//! printing a timeline a person can follow.

use crate::world::{SEED_REPO, SEED_VALUES_PATH};
use crate::{Options, Sandbox};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs the demo with the product binary at `bin`; fails if either promotion ends unlike it should.
pub fn run(bin: &Path) -> Result<()> {
    let clock = Instant::now();
    say(
        &clock,
        "starting the sandbox: git host, GitHub emulator, Argo CD emulator",
    );
    let sb = Sandbox::start(Options::default())?;
    say(
        &clock,
        &format!(
            "GitHub API {} · git {} · Argo CD {}",
            sb.github_api_url,
            sb.git_url(),
            sb.argocd_url
        ),
    );
    say(
        &clock,
        &format!("{SEED_REPO}@main has image.tag {}", tag_on_main(&sb)?),
    );

    say(
        &clock,
        "── promotion 1: image.tag=1.1.0 (a good version) ──",
    );
    let good = promote(&sb, bin, &clock, "1.1.0", 1)?;
    if good.code != 0 {
        bail!(
            "the good promotion failed (exit {}); see the log above",
            good.code
        );
    }
    say(
        &clock,
        &format!(
            "✔ promoted: PR #{} merged as {}; main has image.tag {}",
            good.output("pr-number"),
            short(good.output("merge-sha")),
            tag_on_main(&sb)?
        ),
    );
    say(&clock, &format!("  apps: {}", good.output("apps")));

    say(
        &clock,
        "── promotion 2: image.tag=1.2.0-bad (goes Degraded after the sync) ──",
    );
    let bad = promote(&sb, bin, &clock, "1.2.0-bad", 2)?;
    if bad.code == 0 {
        bail!("the bad promotion succeeded; it should have failed and rolled back");
    }
    if bad.output("rolled-back") != "true" {
        bail!("the bad promotion failed but did not roll back");
    }
    say(
        &clock,
        &format!(
            "✔ rolled back: PR #{} reverted by PR #{} ({}); main has image.tag {} again",
            bad.output("pr-number"),
            bad.output("revert-pr-number"),
            short(bad.output("revert-sha")),
            tag_on_main(&sb)?
        ),
    );
    for app in ["app", "app-auto"] {
        say(
            &clock,
            &format!(
                "  {app}: deploys image.tag {}",
                sb.argocd.deployed_tag(app).unwrap_or_default()
            ),
        );
    }
    say(
        &clock,
        "done: the bad version never stayed in production, and git says so",
    );
    Ok(())
}

/// What one run of the product left.
struct Outcome {
    code: i32,
    outputs: std::collections::BTreeMap<String, String>,
}

impl Outcome {
    fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Runs the action's main step for `tag` against both seeded apps, streaming its log.
fn promote(sb: &Sandbox, bin: &Path, clock: &Instant, tag: &str, run_id: u32) -> Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let output = dir.path().join("output");
    let state = dir.path().join("state");
    let summary = dir.path().join("summary");
    for f in [&output, &state, &summary] {
        std::fs::write(f, "")?;
    }
    let mut child = Command::new(bin)
        .env("GITHUB_API_URL", &sb.github_api_url)
        .env("GITHUB_SERVER_URL", sb.git_url())
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", run_id.to_string())
        .env("GITHUB_RUN_ATTEMPT", "1")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STATE", &state)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("INPUT_GITHUB-TOKEN", &sb.world.token)
        .env("INPUT_REPOSITORY", SEED_REPO)
        .env("INPUT_FILE", SEED_VALUES_PATH)
        .env("INPUT_SET", format!("image.tag={tag}"))
        .env("INPUT_LABELS", "deploy")
        .env("INPUT_ARGOCD-SERVER", &sb.argocd_url)
        .env("INPUT_ARGOCD-TOKEN", sb.argocd.token())
        .env("INPUT_ARGOCD-APP", "app\napp-auto")
        .env("INPUT_HEALTH-TIMEOUT", "60s")
        .env("INPUT_ON-FAILURE", "rollback")
        .env_remove("GITHUB_ACTIONS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let stderr = child.stderr.take().unwrap();
    let clock_copy = *clock;
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            say(&clock_copy, &format!("  │ {line}"));
        }
    });
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        say(clock, &format!("  │ {line}"));
    }
    let _ = err_thread.join();
    let code = child.wait()?.code().unwrap_or(-1);
    let outputs = parse_command_file(&std::fs::read_to_string(&output)?);
    Ok(Outcome { code, outputs })
}

/// Parses `name=value` lines and `name<<DELIM` heredocs of a `GITHUB_OUTPUT` file.
pub fn parse_command_file(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
            map.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            map.insert(name.to_string(), value.to_string());
        }
    }
    map
}

fn tag_on_main(sb: &Sandbox) -> Result<String> {
    let values = sb
        .world
        .read_file(SEED_REPO, "refs/heads/main", SEED_VALUES_PATH)?
        .unwrap_or_default();
    Ok(values
        .lines()
        .find_map(|l| l.trim().strip_prefix("tag:"))
        .map(|t| {
            t.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

fn say(clock: &Instant, line: &str) {
    let t = clock.elapsed();
    println!(
        "[{:>3}.{:01}s] {line}",
        t.as_secs(),
        t.subsec_millis() / 100
    );
}

/// The product binary beside this one (the same cargo target dir), unless given.
pub fn default_bin() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    me.with_file_name("gitops-promote")
}
