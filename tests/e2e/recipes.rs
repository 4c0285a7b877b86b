//! The recipes in examples/workflows (issue #16), run as actions/runner would run them against
//! the sandbox: a matrix over environments of one release repo, and staging then prod in two
//! jobs joined by `needs`. Every recipe is also checked for what a linter of this action would
//! catch: it parses, and each step of this action names only inputs action.yml declares.

use crate::harness::{Ctx, Job, REPO};
use crate::workflow::{run_job, sandbox_env, Env};
use sandbox::argocd::NewApp;
use sandbox::world::{SEED_BRANCH, SEED_VALUES};
use std::collections::BTreeMap;

fn recipe(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/examples/workflows/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A release repo with `envs/staging` and `envs/prod`, each deployed by its own app.
fn environments(ctx: &Ctx) {
    for env in ["staging", "prod"] {
        let file = format!("envs/{env}/values.yaml");
        ctx.sb
            .world
            .commit(
                REPO,
                SEED_BRANCH,
                &[(&file, SEED_VALUES)],
                &format!("Add {env}"),
            )
            .unwrap();
        ctx.sb
            .argocd
            .create_app(NewApp {
                name: format!("web-{env}"),
                labels: BTreeMap::new(),
                auto_sync: false,
                path: Some(format!("envs/{env}")),
                target_revision: None,
                project: None,
                sync_options: vec![],
            })
            .unwrap();
    }
}

/// The recipes' environment: the sandbox's secrets and hosts, and `inputs.version`.
fn env(ctx: &Ctx, version: &str) -> Env {
    Env {
        inputs: [("version".to_string(), version.to_string())].into(),
        ..sandbox_env(ctx)
    }
}

#[test]
fn the_matrix_recipe_promotes_each_environment_in_its_own_pr() {
    let ctx = Ctx::new();
    environments(&ctx);
    let run_id = ctx.next_run_id();
    let mut prs = Vec::new();
    for leg in ["staging", "prod"] {
        let env = Env {
            matrix: [("env".to_string(), leg.to_string())].into(),
            run_id: Some(run_id),
            ..env(&ctx, "3.1.0")
        };
        let job = run_job(&ctx, &recipe("matrix-environments.yml"), "promote", &env);
        assert_eq!(job.status, Job::Success, "{leg}: {job:?}");
        let run = job.step("promote").action.as_ref().unwrap();
        prs.push(run.output("pr-number").to_string());
        assert_eq!(
            ctx.sb.argocd.deployed_tag(&format!("web-{leg}")).as_deref(),
            Some("3.1.0")
        );
    }
    assert_ne!(prs[0], prs[1], "one PR per leg");
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

#[test]
fn the_staging_then_prod_recipe_hands_stagings_outputs_to_prod() {
    let ctx = Ctx::new();
    environments(&ctx);
    let workflow = recipe("staging-then-prod.yml");
    let staging = run_job(&ctx, &workflow, "staging", &env(&ctx, "3.2.0"));
    assert_eq!(staging.status, Job::Success, "{staging:?}");
    let pr_url = staging.outputs["pr-url"].clone();
    assert!(pr_url.contains("/pull/"), "{:?}", staging.outputs);
    let prod_env = Env {
        needs: [("staging".to_string(), staging.outputs.clone())].into(),
        ..env(&ctx, "3.2.0")
    };
    let prod = run_job(&ctx, &workflow, "prod", &prod_env);
    assert_eq!(prod.status, Job::Success, "{prod:?}");
    let n: u64 = prod
        .step("promote")
        .action
        .as_ref()
        .unwrap()
        .output("pr-number")
        .parse()
        .unwrap();
    let body = ctx.sb.github.pr_view(REPO, n).unwrap().body;
    assert!(body.contains(&pr_url), "{body}");
    assert!(body.contains("envs/prod/values.yaml"), "{body}");
    for app in ["web-staging", "web-prod"] {
        assert_eq!(ctx.sb.argocd.deployed_tag(app).as_deref(), Some("3.2.0"));
    }
}

#[test]
fn every_recipe_parses_and_names_only_declared_inputs() {
    let declared: Vec<String> = crate::runner::manifest()
        .inputs
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workflows");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: yaml_serde::Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (_, job) in doc["jobs"].as_mapping().expect("jobs") {
            for step in job["steps"].as_sequence().expect("steps") {
                let uses = step["uses"].as_str().unwrap_or_default();
                if !uses.contains("/gitops-promote@") {
                    continue;
                }
                seen += 1;
                for (k, _) in step["with"].as_mapping().into_iter().flatten() {
                    let k = k.as_str().unwrap();
                    assert!(
                        declared.iter().any(|d| d == k),
                        "{}: input {k} is not declared in action.yml",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(seen >= 6, "every recipe uses the action: {seen}");
}
