//! Bench 1 of issue #8: clone + edit + commit + push with the product's `git` and `values` modules,
//! against the git CLI doing the same (`git clone --depth 1 --single-branch`, `sed`, `git commit`,
//! `git push`), on the same repo of the sandbox's git host (lighttpd + `git http-backend`), for a
//! 10-commit and a 10,000-commit history of 5,002 files.
//!
//! Not a pass/fail test: it prints a Markdown table of medians and ratios measured in this one run
//! (`bench/run.sh` collects it for docs/performance.md). Runs alternate ours/CLI so that drift in the
//! machine's load hits both sides alike. `BENCH_RUNS` sets the runs per side (default 7).

use gitops_promote::clients::git::{clone_base, Identity, Remote};
use gitops_promote::clients::values::{apply, EditOptions, SetOp};
use sandbox::world::SEED_VALUES_PATH;
use sandbox::{Options, Sandbox};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "common/repo.rs"]
mod repo;
use repo::{make_repo, CHARTS};

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let sb = Sandbox::start(Options::default()).expect("sandbox starts");
    let mut rows = Vec::new();
    for commits in [10usize, 10_000] {
        let name = format!("acme/bench-{commits}");
        let t = Instant::now();
        make_repo(&sb, &name, commits);
        eprintln!("{name}: {commits} commits built in {:?}", t.elapsed());
        rows.push(measure(&sb, &name, commits, runs));
    }
    print_report(&rows, runs);
}

/// One row of the report: medians in that repo.
struct Row {
    commits: usize,
    ours: Phases,
    cli: Phases,
}

/// Median times of the phases of one side.
#[derive(Default, Clone, Copy)]
struct Phases {
    clone: Duration,
    edit_commit: Duration,
    push: Duration,
    total: Duration,
}

fn measure(sb: &Sandbox, name: &str, commits: usize, runs: usize) -> Row {
    let url = format!("{}/{name}.git", sb.git_url());
    let remote = Remote {
        url: url.clone(),
        token: sb.world.token.clone(),
        retry_budget: gitops_promote::clients::git::RETRY_BUDGET,
        trust: Default::default(),
    };
    let cred_url = url.replacen(
        "http://",
        &format!("http://x-access-token:{}@", sb.world.token),
        1,
    );
    let scratch = tempfile::tempdir().unwrap();
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    // One warm-up run per side (page cache, lighttpd's first CGI), then `runs` alternating.
    for n in 0..=runs {
        let o = ours_once(&remote, n, commits);
        let c = cli_once(&cred_url, scratch.path(), n, commits);
        if n > 0 {
            ours.push(o);
            cli.push(c);
        }
    }
    Row {
        commits,
        ours: median_phases(&ours),
        cli: median_phases(&cli),
    }
}

fn ours_once(remote: &Remote, n: usize, commits: usize) -> Phases {
    let t0 = Instant::now();
    let mut co = clone_base(remote, "main", 1).expect("clone");
    let t1 = Instant::now();
    let old = co
        .read_file(co.base_sha(), SEED_VALUES_PATH)
        .expect("read")
        .expect("values file");
    let set = SetOp::parse(&format!("image.tag=2.0.{n}")).unwrap();
    let edited = apply(&old, &[set], &EditOptions::default()).expect("edit");
    let commit = co
        .commit_files(
            co.base_sha(),
            &[(SEED_VALUES_PATH.to_string(), edited.bytes)],
            &format!("Promote image.tag to 2.0.{n}"),
            &Identity::default(),
        )
        .expect("commit");
    let t2 = Instant::now();
    co.push_branch(commit, &format!("bench/ours-{commits}-{n}"), true)
        .expect("push");
    let t3 = Instant::now();
    drop(co);
    Phases {
        clone: t1 - t0,
        edit_commit: t2 - t1,
        push: t3 - t2,
        total: t3 - t0,
    }
}

fn cli_once(cred_url: &str, scratch: &Path, n: usize, commits: usize) -> Phases {
    let dir = scratch.join(format!("cli-{commits}-{n}"));
    let run = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", scratch)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let d = dir.to_str().unwrap();
    let t0 = Instant::now();
    run(&[
        "clone",
        "-q",
        "--depth",
        "1",
        "--single-branch",
        "--branch",
        "main",
        cred_url,
        d,
    ]);
    let t1 = Instant::now();
    let file = dir.join(SEED_VALUES_PATH);
    let out = Command::new("sed")
        .arg("-i")
        .arg(format!(r#"s/tag: "1.0.0"/tag: "2.0.{n}"/"#))
        .arg(&file)
        .status()
        .expect("sed runs");
    assert!(out.success());
    run(&[
        "-C",
        d,
        "-c",
        "user.name=github-actions[bot]",
        "-c",
        "user.email=bot@example.invalid",
        "commit",
        "-qam",
        &format!("Promote image.tag to 2.0.{n}"),
    ]);
    let t2 = Instant::now();
    run(&[
        "-C",
        d,
        "push",
        "-q",
        "origin",
        &format!("HEAD:refs/heads/bench/cli-{commits}-{n}"),
    ]);
    let t3 = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    Phases {
        clone: t1 - t0,
        edit_commit: t2 - t1,
        push: t3 - t2,
        total: t3 - t0,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_phases(v: &[Phases]) -> Phases {
    Phases {
        clone: median(v.iter().map(|p| p.clone).collect()),
        edit_commit: median(v.iter().map(|p| p.edit_commit).collect()),
        push: median(v.iter().map(|p| p.push).collect()),
        total: median(v.iter().map(|p| p.total).collect()),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn print_report(rows: &[Row], runs: usize) {
    let files = 2 + CHARTS * 5;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Bench 1: clone + edit + commit + push ({files} files, medians of {runs} runs, ms)\n"
    );
    let _ = writeln!(
        s,
        "| history | side | clone | edit + commit | push | total | ours / CLI |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in rows {
        let ratio = r.ours.total.as_secs_f64() / r.cli.total.as_secs_f64();
        for (side, p, ratio) in [
            ("gitops-promote", r.ours, format!("**{ratio:.2}x**")),
            ("git CLI", r.cli, String::new()),
        ] {
            let _ = writeln!(
                s,
                "| {} commits | {side} | {} | {} | {} | {} | {ratio} |",
                r.commits,
                ms(p.clone),
                ms(p.edit_commit),
                ms(p.push),
                ms(p.total)
            );
        }
    }
    if let [short, long] = rows {
        let _ = writeln!(
            s,
            "\nHistory effect (10,000 / 10 commits, total): gitops-promote {:.2}x, git CLI {:.2}x",
            long.ours.total.as_secs_f64() / short.ours.total.as_secs_f64(),
            long.cli.total.as_secs_f64() / short.cli.total.as_secs_f64()
        );
    }
    print!("{s}");
}
