//! Issue #17's whole-process bench: the `gitops-promote` process doing a promotion with
//! `merge: false` (start, clone, edit, commit, push, open the PR) against the git CLI doing the
//! same git work with no work tree (`git init --bare`, `git fetch --depth 1`, `git show | sed |
//! git hash-object -w`, `git read-tree`, `git update-index --cacheinfo`, `git write-tree`,
//! `git commit-tree`, `git push`), both as processes under GNU time, alternating, on the sandbox's
//! git host with a repo of 5,002 files and 10,000 commits (packed).
//!
//! Not a pass/fail test: it prints medians of wall time, CPU time and peak RSS, and the ratios
//! measured in this run, for docs/performance.md. `BENCH_RUNS` sets the runs per side (default 9).

#[path = "common/repo.rs"]
mod repo;

use sandbox::world::SEED_VALUES_PATH;
use sandbox::{Options, Sandbox};
use std::path::Path;
use std::process::Command;

/// What GNU time measured of one run.
#[derive(Clone, Copy, Default)]
struct Sample {
    wall_ms: f64,
    cpu_ms: f64,
    rss_kb: f64,
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    assert!(
        Path::new("/usr/bin/time").exists(),
        "needs GNU time (/usr/bin/time, Debian's `time`)"
    );
    let sb = Sandbox::start(Options::default()).expect("sandbox starts");
    let name = "acme/bench-process";
    repo::make_repo(&sb, name, 10_000);
    let scratch = tempfile::tempdir().unwrap();
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    // One warm-up each (page cache, lighttpd's first CGI start), then alternate.
    for n in 0..=runs {
        let o = ours_once(&sb, name, scratch.path(), n);
        let c = cli_once(&sb, name, scratch.path(), n);
        if n > 0 {
            ours.push(o);
            cli.push(c);
        }
    }
    report(&median(&ours), &median(&cli), runs);
}

/// Runs `cmd` under GNU time and reads its wall, user + system and max RSS.
fn timed(cmd: Command, scratch: &Path, what: &str) -> Sample {
    let out_file = scratch.join("time.out");
    let mut time = Command::new("/usr/bin/time");
    time.arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&out_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    time.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            time.env(k, v);
        }
    }
    let out = time.output().expect("GNU time runs");
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let f: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    Sample {
        wall_ms: f[0] * 1000.0,
        cpu_ms: (f[1] + f[2]) * 1000.0,
        rss_kb: f[3],
    }
}

fn ours_once(sb: &Sandbox, repo: &str, scratch: &Path, n: usize) -> Sample {
    let home = scratch.join(format!("home-{n}"));
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitops-promote"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("GITHUB_API_URL", &sb.github_api_url)
        .env("GITHUB_SERVER_URL", sb.git_url())
        .env("GITHUB_RUN_ID", format!("9{n}"))
        .env("GITHUB_OUTPUT", home.join("output"))
        .env("GITHUB_STATE", home.join("state"))
        .env("GITHUB_STEP_SUMMARY", home.join("summary"))
        .env("INPUT_GITHUB-TOKEN", &sb.world.token)
        .env("INPUT_REPOSITORY", repo)
        .env("INPUT_FILE", SEED_VALUES_PATH)
        .env("INPUT_SET", format!("image.tag=3.0.{n}"))
        .env("INPUT_MERGE", "false");
    timed(cmd, scratch, "gitops-promote")
}

fn cli_once(sb: &Sandbox, repo: &str, scratch: &Path, n: usize) -> Sample {
    let url = format!("{}/{repo}.git", sb.git_url()).replacen(
        "http://",
        &format!("http://x-access-token:{}@", sb.world.token),
        1,
    );
    let dir = scratch.join(format!("cli-{n}"));
    let script = format!(
        r#"set -e
git init -q --bare "$D"
cd "$D"
git fetch -q --depth 1 "$URL" main
blob=$(git show FETCH_HEAD:{file} | sed 's/tag: "[^"]*"/tag: "4.0.{n}"/' | git hash-object -w --stdin)
git read-tree FETCH_HEAD
git update-index --cacheinfo 100644,"$blob",{file}
tree=$(git write-tree)
commit=$(git commit-tree "$tree" -p FETCH_HEAD -m "Promote image.tag to 4.0.{n}")
git push -q "$URL" "$commit:refs/heads/bench/cli-{n}"
"#,
        file = SEED_VALUES_PATH
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", scratch)
        .env("D", &dir)
        .env("URL", &url)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid");
    let s = timed(cmd, scratch, "the git CLI");
    let _ = std::fs::remove_dir_all(&dir);
    s
}

fn median(v: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    Sample {
        wall_ms: pick(|s| s.wall_ms),
        cpu_ms: pick(|s| s.cpu_ms),
        rss_kb: pick(|s| s.rss_kb),
    }
}

fn report(ours: &Sample, cli: &Sample, runs: usize) {
    println!("### Whole process: promote with merge: false against the git CLI (5,002 files, 10,000 commits, medians of {runs} runs)\n");
    println!("| side | wall | CPU (user + sys) | peak RSS |");
    println!("|---|---|---|---|");
    for (side, s) in [("gitops-promote", ours), ("git CLI, no work tree", cli)] {
        println!(
            "| {side} | {:.0} ms | {:.0} ms | {:.1} MiB |",
            s.wall_ms,
            s.cpu_ms,
            s.rss_kb / 1024.0
        );
    }
    println!(
        "| **ours / CLI** | **{:.2}x** | **{:.2}x** | **{:.2}x** |\n",
        ours.wall_ms / cli.wall_ms,
        ours.cpu_ms / cli.cpu_ms,
        ours.rss_kb / cli.rss_kb
    );
}
