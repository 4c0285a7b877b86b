//! Inputs as the runner passes them: `INPUT_*` variables, `GITHUB_ACTIONS=true` and the runner's
//! files. Checks the generated files are current, invalid inputs stop the run before anything is
//! done, secrets are masked first, and the post entrypoint is chosen by file name.

use crate::harness::BIN;
use gitops_promote::config::{self, INPUTS};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A runner-like environment: temp `GITHUB_OUTPUT`, `GITHUB_STATE` and summary files.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        Runner {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `program` with only the given variables (plus the runner's), as a container would.
    fn run(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        for f in ["output", "state", "summary"] {
            std::fs::write(self.file(f), "").unwrap();
        }
        Command::new(program)
            .args(args)
            .env_clear()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.file("output"))
            .env("GITHUB_STATE", self.file("state"))
            .env("GITHUB_STEP_SUMMARY", self.file("summary"))
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Whether the run left the runner's files untouched.
    fn files_untouched(&self) -> bool {
        ["output", "state", "summary"]
            .iter()
            .all(|f| std::fs::read_to_string(self.file(f)).unwrap().is_empty())
    }
}

/// Valid promote inputs, to which each test adds one bad one.
const VALID: &[(&str, &str)] = &[
    ("INPUT_GITHUB-TOKEN", "ghs_valid"),
    ("INPUT_REPOSITORY", "acme/deploy"),
    ("INPUT_SET", "image.tag=1.2.3"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = VALID
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    env.extend_from_slice(extra);
    env
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts one `::error` annotation for `input` with `message`, exit code 2 and nothing done.
fn assert_rejected(runner: &Runner, o: &Output, input: &str, message: &str) {
    let out = stdout(o);
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "stdout:\n{out}");
    let want = format!("::error title=config error in inputs::input '{input}': {message}%0Ahint: ");
    assert!(
        errors[0].starts_with(&want),
        "want {want}\ngot  {}",
        errors[0]
    );
    assert_eq!(o.status.code(), Some(2), "stdout:\n{out}");
    assert!(
        runner.files_untouched(),
        "outputs, state or summary were written"
    );
}

#[test]
fn generated_files_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, want) in [
        ("action.yml", config::action_yml()),
        ("docs/inputs.md", config::inputs_md()),
        ("README.md", {
            let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
            config::readme_with_inputs(&readme).expect("README.md has the inputs markers")
        }),
    ] {
        let have = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            have == want,
            "{file} is out of date with src/config/inputs.rs; regenerate it with \
             `cargo run -- action-yml --write` and commit the result"
        );
    }
}

#[test]
fn help_lists_every_input_for_every_command() {
    for cmd in ["promote", "rollback", "verify", "guard", "status"] {
        let o = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(o.status.success());
        let help = stdout(&o);
        for d in INPUTS {
            assert!(
                help.contains(&format!("--{} ", d.name))
                    || help.contains(&format!("--{}[=", d.name)),
                "`{cmd} --help` lacks --{}",
                d.name
            );
            assert!(
                help.contains(d.description),
                "`{cmd} --help` lacks the docs of --{}",
                d.name
            );
        }
    }
}

#[test]
fn bad_duration_is_rejected_naming_the_input() {
    let r = Runner::new();
    let o = r.run(
        Path::new(BIN),
        &[],
        &with(&[("INPUT_HEALTH-TIMEOUT", "10 minutes")]),
    );
    assert_rejected(
        &r,
        &o,
        "health-timeout",
        "expected a duration like 90s, 10m or 1h30m, got '10 minutes'",
    );
}

#[test]
fn bad_merge_method_is_rejected_naming_the_input() {
    let r = Runner::new();
    let o = r.run(
        Path::new(BIN),
        &[],
        &with(&[("INPUT_MERGE-METHOD", "fast-forward")]),
    );
    assert_rejected(
        &r,
        &o,
        "merge-method",
        "expected merge, squash or rebase, got 'fast-forward'",
    );
}

#[test]
fn bad_repository_is_rejected_naming_the_input() {
    let r = Runner::new();
    let o = r.run(Path::new(BIN), &[], &with(&[("INPUT_REPOSITORY", "acme")]));
    assert_rejected(
        &r,
        &o,
        "repository",
        "expected owner/name like acme/deploy, got 'acme'",
    );
}

#[test]
fn missing_set_is_rejected_for_promote() {
    let r = Runner::new();
    let env: Vec<_> = with(&[])
        .into_iter()
        .filter(|(k, _)| *k != "INPUT_SET")
        .collect();
    let o = r.run(Path::new(BIN), &[], &env);
    assert_rejected(&r, &o, "set", "required for promote: set the input");
}

#[test]
fn command_input_selects_what_the_main_entrypoint_runs() {
    let r = Runner::new();
    let o = r.run(
        Path::new(BIN),
        &[],
        &[
            ("INPUT_COMMAND", "verify"),
            ("INPUT_QUERY", "up"),
            ("INPUT_SUCCESS-CONDITION", "result == 1"),
        ],
    );
    assert_rejected(
        &r,
        &o,
        "prometheus-url",
        "required for verify: set the input",
    );
}

#[test]
fn cli_flag_wins_over_input_variable() {
    let r = Runner::new();
    let o = r.run(
        Path::new(BIN),
        &["promote", "--merge-method", "octopus"],
        &with(&[("INPUT_MERGE-METHOD", "merge")]),
    );
    assert_rejected(
        &r,
        &o,
        "merge-method",
        "expected merge, squash or rebase, got 'octopus'",
    );
}

#[test]
fn secrets_are_masked_before_any_other_line() {
    let r = Runner::new();
    let o = r.run(
        Path::new(BIN),
        &[],
        &with(&[
            ("INPUT_GITHUB-TOKEN", "ghs_s3cret"),
            ("INPUT_ARGOCD-SERVER", "https://cd.example"),
            ("INPUT_ARGOCD-TOKEN", "argo-t0ken"),
            ("INPUT_ARGOCD-APP", "app"),
            ("INPUT_HEALTH-TIMEOUT", "soon"),
        ]),
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        ["::add-mask::ghs_s3cret", "::add-mask::argo-t0ken"],
        "stdout:\n{out}"
    );
    assert!(lines[2].starts_with("::error title=config error in inputs::input 'health-timeout'"));
}

#[test]
fn outside_actions_errors_are_plain() {
    let o = Command::new(BIN)
        .args([
            "promote",
            "--repository",
            "acme/deploy",
            "--github-token",
            "t",
            "--set",
            "a=1",
        ])
        .args(["--count", "many"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(
            "error: config error in inputs: input 'count': expected a whole number like 0 or 2, got 'many'\nhint: "
        ),
        "{err}"
    );
}

/// The binary under the post entrypoint's name, as the image provides it.
fn post_binary(r: &Runner) -> PathBuf {
    let link = r.file("gitops-promote-post");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    link
}

#[test]
fn post_with_empty_state_does_nothing() {
    let r = Runner::new();
    let post = post_binary(&r);
    // The runner passes the main step's args to the post container too; they must not matter.
    let o = r.run(&post, &["promote"], &with(&[("STATE_phase", "")]));
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}");
    assert!(!out.contains("::error"), "stdout:\n{out}");
    assert!(out.contains("nothing to roll back"), "stdout:\n{out}");
    assert!(r.files_untouched());
}

#[test]
fn post_after_ignore_or_abort_does_nothing() {
    let r = Runner::new();
    let post = post_binary(&r);
    let o = r.run(
        &post,
        &[],
        &with(&[("STATE_phase", "merged"), ("STATE_on-failure", "skip")]),
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}");
    assert!(out.contains("no rollback"), "stdout:\n{out}");
    assert!(r.files_untouched());
}

/// The metrics gate's inputs are checked with the gate's own parsers before anything is touched:
/// a typo in a condition must not cost a merge, a deploy and a rollback.
#[test]
fn metrics_gate_inputs_are_checked_before_anything_is_touched() {
    let gate = [
        ("INPUT_PROMETHEUS-URL", "http://127.0.0.1:9"),
        ("INPUT_QUERY", "sum(rate(x[5m]))"),
        ("INPUT_SUCCESS-CONDITION", "result >= 0.99"),
    ];
    for (bad, input, starts) in [
        (
            ("INPUT_SUCCESS-CONDITION", "result >== 0.99"),
            "success-condition",
            "at column ",
        ),
        (
            ("INPUT_FAILURE-CONDITION", "reslt > 0.05"),
            "failure-condition",
            "at column ",
        ),
        (("INPUT_COUNT", "0"), "count", ""),
        (
            ("INPUT_QUERY", "errors: sum(a)\nerrors: sum(b)"),
            "query",
            "line 2: the name `errors` is used twice",
        ),
        (
            ("INPUT_QUERY", "# the error ratio\nsum(a)\nsum(b)"),
            "query",
            "line 2: with several lines",
        ),
    ] {
        let r = Runner::new();
        let mut env: Vec<(&str, &str)> =
            gate.iter().filter(|(k, _)| *k != bad.0).copied().collect();
        env.push(bad);
        let o = r.run(Path::new(BIN), &[], &with(&env));
        let out = stdout(&o);
        let want = format!("::error title=config error in inputs::input '{input}': {starts}");
        assert!(
            out.lines().any(|l| l.starts_with(&want)),
            "{bad:?}: want a line starting {want}\n{out}"
        );
        assert_eq!(o.status.code(), Some(2), "{bad:?}\n{out}");
        assert!(r.files_untouched());
    }
}
