//! A small job runner: runs one job of a workflow file the way actions/runner does, so that the
//! README's workflow examples are themselves tests. Steps run in order; `if:` (default
//! `success()`) is evaluated with the status functions against the job's status, which becomes
//! failure when a step fails (`StepsRunner.cs:274-279`); this action's post step is registered
//! before its main step runs (`ActionRunner.cs:112-137`) and post steps run last, in reverse order,
//! when their `post-if` holds (`ExecutionContext.cs:369`, `StepsRunner.cs:71`). `uses:` of this
//! action runs the built binary through [`crate::runner`]; `run:` runs `bash -e` in the workspace.
//! Expressions: `secrets.*`, `github.*` (`github.event.*` too, by its dotted name),
//! `steps.<id>.outputs.*`, `matrix.*`, `inputs.*` and `needs.<job>.outputs.*`, from what the
//! test gives.

use crate::harness::{Ctx, Job, Run, Step};
use std::collections::BTreeMap;
use std::process::Stdio;

/// What the job's expressions and hosts resolve to in the sandbox.
#[derive(Default)]
pub struct Env {
    /// `secrets.NAME`.
    pub secrets: BTreeMap<String, String>,
    /// `github.NAME`, beyond what the runner module sets.
    pub github: BTreeMap<String, String>,
    /// Text replaced in every evaluated `with:` value, e.g. a real host by the sandbox's URL.
    pub hosts: Vec<(String, String)>,
    /// Files put in the workspace before the job starts (path, content, executable).
    pub files: Vec<(String, String)>,
    /// `matrix.NAME` of the leg that runs.
    pub matrix: BTreeMap<String, String>,
    /// `inputs.NAME` of the workflow run.
    pub inputs: BTreeMap<String, String>,
    /// `needs.JOB.outputs.NAME` of the jobs this one needs.
    pub needs: BTreeMap<String, BTreeMap<String, String>>,
    /// The run this job belongs to; a fresh one when `None` (legs of one matrix share one).
    pub run_id: Option<u32>,
    /// The runner's `GITHUB_API_URL` and `GITHUB_SERVER_URL` (the workflow's own instance); the
    /// sandbox's GitHub when `None`.
    pub instance: Option<(String, String)>,
}

/// One step as it ran.
#[derive(Debug)]
pub struct StepRun {
    /// `id:` or `name:` or the `uses`/`run` text.
    pub name: String,
    /// success, failure or skipped.
    pub outcome: &'static str,
    /// This action's step, when it was one.
    pub action: Option<Run>,
    /// A `run:` step's output.
    pub log: String,
}

/// The job as it ran: its steps, its status, and this action's post steps.
#[derive(Debug)]
pub struct JobRun {
    pub steps: Vec<StepRun>,
    pub status: Job,
    /// Post steps that ran, in the order they ran.
    pub posts: Vec<Run>,
    /// The job's `outputs:`, evaluated once its steps ran.
    pub outputs: BTreeMap<String, String>,
}

impl JobRun {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> &StepRun {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name}: {:?}", self.steps))
    }
}

/// One of this action's steps as its post step will need it: its `with:` and the state it saved.
type Registered = (Vec<(String, String)>, BTreeMap<String, String>);

/// Whether `uses:` names this action (a local `./` or any ref of gitops-promote).
fn is_this_action(uses: &str) -> bool {
    uses == "./"
        || uses
            .split('@')
            .next()
            .is_some_and(|u| u.ends_with("/gitops-promote"))
}

/// Runs job `job` of `workflow` (YAML text) in `ctx`.
pub fn run_job(ctx: &Ctx, workflow: &str, job: &str, env: &Env) -> JobRun {
    let doc: yaml_serde::Value = yaml_serde::from_str(workflow).expect("the workflow parses");
    let steps = doc["jobs"][job]["steps"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no steps in job {job}"))
        .clone();
    let work = ctx.workspace();
    let workspace = work.join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    for (path, content) in &env.files {
        let p = workspace.join(path);
        std::fs::write(&p, content).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&p)
            .status()
            .unwrap();
    }
    let run_id = env.run_id.unwrap_or_else(|| ctx.next_run_id());
    let mut status = Job::Success;
    let mut outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut posts: Vec<Registered> = Vec::new();
    let mut ran = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let text = |k: &str| step[k].as_str().map(str::to_string);
        let name = text("id")
            .or_else(|| text("name"))
            .or_else(|| text("uses"))
            .or_else(|| text("run"))
            .unwrap_or_default();
        let cond = text("if").unwrap_or_else(|| "success()".into());
        if !crate::runner::evaluate_if(&cond, status) {
            ran.push(StepRun {
                name,
                outcome: "skipped",
                action: None,
                log: String::new(),
            });
            continue;
        }
        let eval = |s: &str| evaluate(s, env, &outputs, run_id);
        let (ok, action, log) = if let Some(uses) = text("uses") {
            assert!(
                is_this_action(&uses),
                "the test runner runs only this action, not {uses}"
            );
            let with: Vec<(String, String)> = step["with"]
                .as_mapping()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            let v = match v {
                                yaml_serde::Value::String(s) => s.clone(),
                                other => yaml_serde::to_string(other).unwrap().trim().to_string(),
                            };
                            let mut v = eval(&v);
                            for (from, to) in &env.hosts {
                                v = v.replace(from, to);
                            }
                            (k.as_str().unwrap().to_string(), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let step_dir = work.join(format!("step-{i}"));
            std::fs::create_dir_all(&step_dir).unwrap();
            let none = BTreeMap::new();
            let mut launch = ctx.launch(Step::Main, status, &with, &none, &step_dir);
            launch.run_id = run_id;
            launch.job_id = job;
            if let Some((api, server)) = &env.instance {
                (launch.api_url, launch.server_url) = (api, server);
            }
            let run = launch.run();
            let ok = run.code == 0;
            if let Some(id) = text("id") {
                outputs.insert(id, run.outputs.clone());
            }
            posts.push((with.clone(), run.state.clone()));
            (ok, Some(run), String::new())
        } else {
            let script = eval(&text("run").expect("a step has uses or run"));
            let out = std::process::Command::new("bash")
                .arg("-e")
                .arg("-c")
                .arg(&script)
                .current_dir(&workspace)
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), None, log)
        };
        let continue_on_error = step["continue-on-error"].as_bool() == Some(true);
        if !ok && !continue_on_error {
            status = Job::Failure;
        }
        ran.push(StepRun {
            name,
            outcome: if ok { "success" } else { "failure" },
            action,
            log,
        });
    }
    let mut post_runs = Vec::new();
    while let Some((with, state)) = posts.pop() {
        if !crate::runner::post_runs(status) {
            continue;
        }
        let step_dir = work.join(format!("post-{}", posts.len()));
        std::fs::create_dir_all(&step_dir).unwrap();
        let mut launch = ctx.launch(Step::Post, status, &with, &state, &step_dir);
        launch.run_id = run_id;
        launch.job_id = job;
        if let Some((api, server)) = &env.instance {
            (launch.api_url, launch.server_url) = (api, server);
        }
        let run = launch.run();
        if run.code != 0 {
            status = Job::Failure;
        }
        post_runs.push(run);
    }
    let job_outputs = doc["jobs"][job]["outputs"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().unwrap_or_default();
                    (
                        k.as_str().unwrap().to_string(),
                        evaluate(v, env, &outputs, run_id),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    JobRun {
        steps: ran,
        status,
        posts: post_runs,
        outputs: job_outputs,
    }
}

/// Replaces each `${{ expr }}` by its value; an expression the test did not provide panics.
fn evaluate(
    text: &str,
    env: &Env,
    outputs: &BTreeMap<String, BTreeMap<String, String>>,
    run_id: u32,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("a closed expression") + start;
        let expr = rest[start + 3..end].trim();
        // The test gives an event's object as its JSON text already, so `toJSON()` is a lookup.
        let expr = expr
            .strip_prefix("toJSON(")
            .and_then(|e| e.strip_suffix(')'))
            .unwrap_or(expr);
        let parts: Vec<&str> = expr.split('.').collect();
        let value = match parts.as_slice() {
            ["secrets", name] => env.secrets.get(*name).cloned(),
            ["github", "run_id"] => Some(run_id.to_string()),
            ["github", "repository"] => Some(crate::runner::WORKFLOW_REPO.to_string()),
            ["github", name @ ..] => env.github.get(&name.join(".")).cloned(),
            ["steps", id, "outputs", name] => outputs
                .get(*id)
                .map(|o| o.get(*name).cloned().unwrap_or_default()),
            ["matrix", name] => env.matrix.get(*name).cloned(),
            ["inputs", name] => env.inputs.get(*name).cloned(),
            ["needs", job, "outputs", name] => env
                .needs
                .get(*job)
                .map(|o| o.get(*name).cloned().unwrap_or_default()),
            _ => None,
        };
        out.push_str(
            &value.unwrap_or_else(|| panic!("the test gave no value for ${{{{ {expr} }}}}")),
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The README's first workflow (the `yaml` block under "Use it in a workflow").
fn readme_workflow() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Use it in a workflow").expect("the section")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = section[start..].find("```").unwrap() + start;
    section[start..end].to_string()
}

/// The secrets and hosts the README's example and the recipes name, mapped to the sandbox.
pub fn sandbox_env(ctx: &Ctx) -> Env {
    Env {
        secrets: [
            ("RELEASE_REPO_TOKEN", ctx.sb.world.token.clone()),
            ("ARGOCD_TOKEN", ctx.sb.argocd.token().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        hosts: vec![(
            "https://argocd.example.com".to_string(),
            ctx.sb.argocd_url.clone(),
        )],
        ..Env::default()
    }
}

/// The README example's environment; `smoke` is the smoke test's exit.
fn readme_env(ctx: &Ctx, tag: &str, smoke: i32) -> Env {
    Env {
        github: [("ref_name".to_string(), tag.to_string())].into(),
        files: vec![(
            "smoke-test.sh".to_string(),
            format!("#!/bin/sh\necho \"smoke test of $1\"\nexit {smoke}\n"),
        )],
        ..sandbox_env(ctx)
    }
}

#[test]
fn the_readme_workflow_promotes_and_its_post_step_stays_away_when_the_job_succeeds() {
    let ctx = Ctx::new();
    let job = run_job(
        &ctx,
        &readme_workflow(),
        "deploy",
        &readme_env(&ctx, "1.8.0", 0),
    );
    let promote = job.step("promote").action.as_ref().unwrap();
    promote.assert_ok();
    assert_eq!(job.status, Job::Success, "{job:?}");
    assert!(job.posts.is_empty(), "no post step for a successful job");
    assert!(
        ctx.values_on_main().contains("tag: \"1.8.0\""),
        "{}",
        ctx.values_on_main()
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.8.0"));
}

#[test]
fn the_readme_workflow_rolls_back_when_the_smoke_test_fails() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let job = run_job(
        &ctx,
        &readme_workflow(),
        "deploy",
        &readme_env(&ctx, "1.9.0", 1),
    );
    job.step("promote").action.as_ref().unwrap().assert_ok();
    let smoke = job
        .steps
        .iter()
        .find(|s| s.name.starts_with("./smoke-test.sh"))
        .unwrap();
    assert_eq!(smoke.outcome, "failure", "{}", smoke.log);
    assert_eq!(job.posts.len(), 1, "the post step runs for the failed job");
    let post = &job.posts[0];
    post.assert_ok();
    assert!(
        post.log().contains("rolling back because the job failed"),
        "{}",
        post.log()
    );
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

#[test]
fn a_step_after_a_failure_runs_only_under_failure_and_the_statuses_steer_it() {
    let ctx = Ctx::new();
    let workflow = r#"
jobs:
  j:
    steps:
      - run: exit 1
      - id: skipped
        run: echo never
      - id: cleanup
        if: failure()
        run: echo cleaning
      - id: always
        if: ${{ always() }}
        run: echo always
"#;
    let job = run_job(&ctx, workflow, "j", &Env::default());
    assert_eq!(job.status, Job::Failure);
    assert_eq!(job.step("skipped").outcome, "skipped");
    assert_eq!(job.step("cleanup").outcome, "success");
    assert!(job.step("cleanup").log.contains("cleaning"));
    assert_eq!(job.step("always").outcome, "success");
}
