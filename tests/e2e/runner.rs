//! How actions/runner starts this action's steps, read from action.yml itself so that the tests
//! cannot drift from what the runner does (facts and source lines: `../shared/contracts/actions/`):
//! every declared input is set, the given value or else its default evaluated, or "" when it has
//! none (`ActionRunner.cs:206-219`, `ActionManifestManager.cs:278`); `INPUT_` + the name upper-cased
//! with hyphens kept (`Handler.cs:185`); the main step runs `runs.entrypoint`, the post step
//! `runs.post-entrypoint`, both with the same `runs.args` (`ContainerActionHandler.cs:103-158`);
//! HOME is a fresh empty directory, the working directory is the workspace, and nothing of the
//! host's environment gets in (`DockerCommandManager.cs:194-261`); `STATE_*` comes from the main
//! step's `GITHUB_STATE` file (`ActionRunner.cs:255-258`); the post step runs only when `post-if`
//! holds for the job's status (`ActionManifestManager.cs:339-352`, `StepsRunner.cs`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Which container of the action the runner starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Main,
    Post,
}

/// The job's status (`job.status`) when a step starts: what `post-if` and `${{ job.status }}` see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Success,
    Failure,
    Cancelled,
}

impl Job {
    /// As the runner writes it (`JobContext.cs:24`: the result lower-cased).
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Success => "success",
            Job::Failure => "failure",
            Job::Cancelled => "cancelled",
        }
    }
}

/// The parts of action.yml the runner uses to start a container action.
#[derive(Debug)]
pub struct Manifest {
    /// Every declared input with its default, in the file's order.
    pub inputs: Vec<(String, Option<String>)>,
    pub entrypoint: String,
    pub post_entrypoint: String,
    /// `always()` when action.yml sets none (`ActionManifestManager.cs:458`).
    pub post_if: String,
    pub args: Vec<String>,
}

/// action.yml of this repository, parsed once.
pub fn manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml");
        let doc: yaml_serde::Value =
            yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let text = |v: &yaml_serde::Value| v.as_str().map(str::to_string);
        let runs = &doc["runs"];
        assert_eq!(runs["using"].as_str(), Some("docker"), "a container action");
        Manifest {
            inputs: doc["inputs"]
                .as_mapping()
                .expect("inputs")
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), text(&v["default"])))
                .collect(),
            entrypoint: text(&runs["entrypoint"]).expect("runs.entrypoint"),
            post_entrypoint: text(&runs["post-entrypoint"]).expect("runs.post-entrypoint"),
            post_if: text(&runs["post-if"]).unwrap_or_else(|| "always()".into()),
            args: runs["args"]
                .as_sequence()
                .map(|s| s.iter().filter_map(text).collect())
                .unwrap_or_default(),
        }
    })
}

/// What one step gets from its job and the sandbox.
pub struct Launch<'a> {
    pub step: Step,
    /// The step's `with:`; names match case-insensitively, as the runner's do.
    pub with: &'a [(String, String)],
    pub state: &'a BTreeMap<String, String>,
    pub job: Job,
    pub api_url: &'a str,
    pub server_url: &'a str,
    /// `github.token` of the job.
    pub token: &'a str,
    pub run_id: u32,
    pub attempt: u32,
    /// `github.job`: the job's id, the same for every leg of a matrix.
    pub job_id: &'a str,
    /// The step's own directory: HOME, workspace, temp and file-command files are made under it.
    pub work: &'a Path,
}

/// The repository the workflow runs in (`github.repository`), not the release repo.
pub const WORKFLOW_REPO: &str = "acme/service";

impl Launch<'_> {
    /// The file-command file `name` (output, state, summary) of this step.
    pub fn file(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// Every declared input as the runner evaluates it for this step.
    pub fn inputs(&self) -> Vec<(String, String)> {
        manifest()
            .inputs
            .iter()
            .map(|(name, default)| {
                let given = self
                    .with
                    .iter()
                    .rev()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone());
                let value = given
                    .or_else(|| default.as_deref().map(|d| self.evaluate(d)))
                    .unwrap_or_default();
                (name.clone(), value)
            })
            .collect()
    }

    /// Evaluates the expressions an input default may hold here; any other is a test's bug.
    fn evaluate(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("a closed expression") + start;
            let value = match rest[start + 3..end].trim() {
                "github.token" => self.token.to_string(),
                "github.repository" => WORKFLOW_REPO.to_string(),
                "job.status" => self.job.as_str().to_string(),
                other => panic!("the test runner cannot evaluate ${{{{ {other} }}}}"),
            };
            out.push_str(&value);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// The process the runner starts for this step, with stdin closed; the caller sets stdout and
    /// stderr. Its entrypoint's path inside the image maps to the binary under test by file name.
    pub fn command(&self) -> Command {
        let m = manifest();
        let entry = match self.step {
            Step::Main => &m.entrypoint,
            Step::Post => &m.post_entrypoint,
        };
        let inputs = self.inputs();
        let bin_dir = self.work.join("bin");
        let (home, workspace) = (self.work.join("home"), self.work.join("workspace"));
        let temp = self.work.join("runner_temp");
        for d in [&bin_dir, &home, &workspace, &temp] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in ["output", "state", "summary"] {
            std::fs::write(self.file(f), "").unwrap();
        }
        let name = Path::new(entry)
            .file_name()
            .expect("an entrypoint file name");
        let program = bin_dir.join(name);
        if !program.exists() {
            std::os::unix::fs::symlink(crate::harness::BIN, &program).unwrap();
        }
        let mut cmd = Command::new(program);
        cmd.args(m.args.iter().map(|a| evaluate_inputs(a, &inputs)))
            .env_clear()
            .current_dir(&workspace)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", &home)
            .env("GITHUB_ACTIONS", "true")
            .env("CI", "true")
            .env("GITHUB_WORKSPACE", &workspace)
            .env("RUNNER_TEMP", &temp)
            .env("GITHUB_API_URL", self.api_url)
            .env("GITHUB_SERVER_URL", self.server_url)
            .env("GITHUB_REPOSITORY", WORKFLOW_REPO)
            .env("GITHUB_RUN_ID", self.run_id.to_string())
            .env("GITHUB_RUN_ATTEMPT", self.attempt.to_string())
            .env("GITHUB_JOB", self.job_id)
            .env("GITHUB_OUTPUT", self.file("output"))
            .env("GITHUB_STATE", self.file("state"))
            .env("GITHUB_STEP_SUMMARY", self.file("summary"))
            .stdin(std::process::Stdio::null());
        // State after the job's env, inputs on top of everything (`ActionRunner.cs:248-258`).
        for (k, v) in self.state {
            cmd.env(format!("STATE_{k}"), v);
        }
        for (k, v) in &inputs {
            cmd.env(format!("INPUT_{}", k.replace(' ', "_").to_uppercase()), v);
        }
        cmd
    }
}

impl Launch<'_> {
    /// Runs the step to its end and reads what it left.
    pub fn run(&self) -> crate::harness::Run {
        let out = self
            .command()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("binary runs");
        crate::harness::Run::from_output(&out, self.work)
    }
}

/// `${{ inputs.NAME }}` in a `runs.args` item (the only context args may use).
fn evaluate_inputs(arg: &str, inputs: &[(String, String)]) -> String {
    let mut out = arg.to_string();
    for (k, v) in inputs {
        out = out.replace(&format!("${{{{ inputs.{k} }}}}"), v);
    }
    assert!(
        !out.contains("${{"),
        "unsupported expression in args: {arg}"
    );
    out
}

/// Whether the post step runs for a job that ended as `job`.
pub fn post_runs(job: Job) -> bool {
    evaluate_if(&manifest().post_if, job)
}

/// Evaluates a step condition made of the status functions, `!`, `&&`, `||` and parentheses,
/// with `success()` and `failure()` reading the job's status as they do for post steps
/// (`SuccessFunction.cs:28-39`, `FailureFunction.cs:28-39`, `CancelledFunction.cs:27`).
pub fn evaluate_if(expr: &str, job: Job) -> bool {
    let expr = expr.trim();
    let expr = expr
        .strip_prefix("${{")
        .and_then(|e| e.strip_suffix("}}"))
        .unwrap_or(expr);
    let tokens: Vec<String> = tokenize(expr);
    let mut pos = 0;
    let v = or(&tokens, &mut pos, job);
    assert_eq!(pos, tokens.len(), "cannot evaluate condition {expr:?}");
    v
}

fn tokenize(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '(' | ')' | '!' => out.push(c.to_string()),
            '|' | '&' => {
                assert_eq!(chars.next(), Some(c), "{expr:?}");
                out.push(format!("{c}{c}"));
            }
            _ => {
                let mut word = c.to_string();
                while chars.peek().is_some_and(|c| c.is_alphanumeric()) {
                    word.push(chars.next().unwrap());
                }
                out.push(word);
            }
        }
    }
    out
}

fn or(t: &[String], pos: &mut usize, job: Job) -> bool {
    let mut v = and(t, pos, job);
    while t.get(*pos).is_some_and(|s| s == "||") {
        *pos += 1;
        v |= and(t, pos, job);
    }
    v
}

fn and(t: &[String], pos: &mut usize, job: Job) -> bool {
    let mut v = unary(t, pos, job);
    while t.get(*pos).is_some_and(|s| s == "&&") {
        *pos += 1;
        v &= unary(t, pos, job);
    }
    v
}

fn unary(t: &[String], pos: &mut usize, job: Job) -> bool {
    let tok = t.get(*pos).cloned().expect("a term");
    *pos += 1;
    match tok.as_str() {
        "!" => !unary(t, pos, job),
        "(" => {
            let v = or(t, pos, job);
            assert_eq!(t.get(*pos).map(String::as_str), Some(")"));
            *pos += 1;
            v
        }
        f => {
            assert_eq!(t.get(*pos).map(String::as_str), Some("("), "{f}");
            assert_eq!(t.get(*pos + 1).map(String::as_str), Some(")"), "{f}");
            *pos += 2;
            match f {
                "always" => true,
                "success" => job == Job::Success,
                "failure" => job == Job::Failure,
                "cancelled" => job == Job::Cancelled,
                other => panic!("unknown status function {other}()"),
            }
        }
    }
}

/// action.yml against the runner's own manifest schema (`action_yaml.json`, its template-schema
/// format: mapping, sequence, one-of, string, boolean, with contexts allowed per definition).
mod schema {
    use super::*;
    use serde_json::Value as J;
    use yaml_serde::Value as Y;

    fn contracts() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/contracts/actions");
        if dir.is_dir() {
            return Some(dir);
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the runner's schema is missing at {}",
            dir.display()
        );
        eprintln!("skipped: no {} outside CI", dir.display());
        None
    }

    /// Problems found validating `v` against definition `def`, with their paths.
    fn check(defs: &J, def: &J, v: &Y, at: &str, out: &mut Vec<String>) {
        let def = match def {
            J::String(name) => match name.as_str() {
                "any" => return,
                "string" | "non-empty-string" | "boolean" | "null" | "number"
                    if defs.get(name).is_none() =>
                {
                    return scalar(name, v, at, out)
                }
                _ => defs
                    .get(name)
                    .unwrap_or_else(|| panic!("no definition {name}")),
            },
            J::Object(_) if def.get("type").is_some() => {
                return check(defs, &def["type"], v, at, out)
            }
            other => other,
        };
        if let Some(options) = def.get("one-of").and_then(J::as_array) {
            let fits = options.iter().any(|o| {
                let mut p = Vec::new();
                check(defs, o, v, at, &mut p);
                p.is_empty()
            });
            if !fits {
                out.push(format!("{at}: fits none of {options:?}"));
            }
            return;
        }
        if let Some(m) = def.get("mapping") {
            let Some(map) = v.as_mapping() else {
                return out.push(format!("{at}: expected a mapping"));
            };
            let props = m.get("properties").and_then(J::as_object);
            for (k, val) in map {
                let key = k.as_str().unwrap_or_default();
                match props.and_then(|p| p.get(key)) {
                    Some(d) => check(defs, d, val, &format!("{at}.{key}"), out),
                    None => match m.get("loose-value-type") {
                        Some(d) => check(defs, d, val, &format!("{at}.{key}"), out),
                        None => out.push(format!("{at}: unknown key {key}")),
                    },
                }
            }
            for (key, d) in props.into_iter().flatten() {
                if d.get("required") == Some(&J::Bool(true))
                    && !map.contains_key(Y::String(key.clone()))
                {
                    out.push(format!("{at}: missing required {key}"));
                }
            }
        } else if let Some(s) = def.get("sequence") {
            let Some(seq) = v.as_sequence() else {
                return out.push(format!("{at}: expected a sequence"));
            };
            for (i, item) in seq.iter().enumerate() {
                check(defs, &s["item-type"], item, &format!("{at}[{i}]"), out);
            }
        } else if let Some(s) = def.get("string") {
            if !v.is_string() {
                return out.push(format!("{at}: expected a string"));
            }
            if s.get("require-non-empty") == Some(&J::Bool(true)) && v.as_str() == Some("") {
                out.push(format!("{at}: must not be empty"));
            }
            contexts(def, v, at, out);
        } else if def.get("boolean").is_some() {
            scalar("boolean", v, at, out)
        }
    }

    fn scalar(kind: &str, v: &Y, at: &str, out: &mut Vec<String>) {
        let ok = match kind {
            "boolean" => v.is_bool(),
            "null" => v.is_null(),
            "number" => v.is_number(),
            _ => v
                .as_str()
                .is_some_and(|s| kind == "string" || !s.is_empty()),
        };
        if !ok {
            out.push(format!("{at}: expected {kind}"));
        }
    }

    /// An expression may only name the contexts its definition allows.
    fn contexts(def: &J, v: &Y, at: &str, out: &mut Vec<String>) {
        let allowed: Vec<&str> = def
            .get("context")
            .and_then(J::as_array)
            .map(|a| a.iter().filter_map(J::as_str).collect())
            .unwrap_or_default();
        let text = v.as_str().unwrap_or_default();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            let end = rest[start..]
                .find("}}")
                .map(|e| e + start)
                .unwrap_or(rest.len());
            let expr = rest[start + 3..end].trim();
            let head = expr.split(['.', '(', ' ']).next().unwrap_or_default();
            if !allowed.iter().any(|a| a.split('(').next() == Some(head)) {
                out.push(format!(
                    "{at}: context {head} is not allowed here ({allowed:?})"
                ));
            }
            rest = &rest[end.min(rest.len())..];
            if rest.len() >= 2 {
                rest = &rest[2..];
            }
        }
    }

    #[test]
    fn action_yml_is_valid_for_the_runner() {
        let Some(dir) = contracts() else { return };
        let schema: J =
            serde_json::from_str(&std::fs::read_to_string(dir.join("action_yaml.json")).unwrap())
                .unwrap();
        let defs = &schema["definitions"];
        let action: Y = yaml_serde::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"))
                .unwrap(),
        )
        .unwrap();
        let mut problems = Vec::new();
        check(
            defs,
            &J::String("action-root".into()),
            &action,
            "action.yml",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:#?}");

        // The checker itself refuses what the runner refuses.
        let bad: Y = yaml_serde::from_str(
            "name: x\nruns:\n  using: docker\n  image: Dockerfile\n  args: ['${{ github.token }}']\n  post-if: ''\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        check(
            defs,
            &J::String("action-root".into()),
            &bad,
            "bad",
            &mut problems,
        );
        assert!(
            !problems.is_empty(),
            "a context args may not use must be refused"
        );
    }

    #[test]
    fn input_defaults_use_only_contexts_the_runner_evaluates_there() {
        for (name, default) in &manifest().inputs {
            let Some(d) = default else { continue };
            let launch_dir = tempfile::tempdir().unwrap();
            let l = Launch {
                step: Step::Post,
                with: &[],
                state: &BTreeMap::new(),
                job: Job::Cancelled,
                api_url: "",
                server_url: "",
                token: "t",
                run_id: 1,
                attempt: 1,
                job_id: "promote",
                work: launch_dir.path(),
            };
            // Panics on an expression the runner would not evaluate for an input default.
            let v = l.evaluate(d);
            assert!(!v.contains("${{"), "{name}: {v}");
        }
    }

    #[test]
    fn the_post_step_runs_for_a_failed_or_cancelled_job_only() {
        assert!(post_runs(Job::Failure));
        assert!(post_runs(Job::Cancelled));
        assert!(!post_runs(Job::Success));
        assert!(evaluate_if("always()", Job::Success));
        assert!(!evaluate_if("!cancelled() && failure()", Job::Cancelled));
        assert!(evaluate_if("${{ success() || (failure()) }}", Job::Failure));
    }
}
