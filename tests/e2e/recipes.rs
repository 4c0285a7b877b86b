//! The recipes in examples/workflows (issue #16), run as actions/runner would run them against
//! the sandbox: a matrix over environments of one release repo, staging then prod in two jobs
//! joined by `needs`, one service of a monorepo's release repo, a release repo on GitHub
//! Enterprise Server, and a Kustomize overlay. Every recipe is also checked for what a linter of
//! this action would catch: it parses, and each step of this action names only inputs action.yml
//! declares.

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
    assert!(seen >= 10, "every recipe uses the action: {seen}");
}

/// An app named `name` deploying `path` of the release repo's main, by manual sync.
fn app(ctx: &Ctx, name: &str, path: &str) {
    ctx.sb
        .argocd
        .create_app(NewApp {
            name: name.to_string(),
            labels: BTreeMap::new(),
            auto_sync: false,
            path: Some(path.to_string()),
            target_revision: None,
            project: None,
            sync_options: vec![],
        })
        .unwrap();
}

fn on_main(ctx: &Ctx, path: &str) -> String {
    crate::harness::file_at(&ctx.sb, "refs/heads/main", path).unwrap_or_default()
}

/// The services of the monorepo recipe's release repo.
const SERVICES: [&str; 3] = ["web", "api", "worker"];

fn service_file(svc: &str) -> String {
    format!("services/{svc}/values.yaml")
}

/// A release repo holding `services/<svc>/values.yaml` for each service, and an app per service.
fn services(ctx: &Ctx) {
    let files: Vec<(String, &str)> = SERVICES
        .iter()
        .map(|s| (service_file(s), SEED_VALUES))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(f, c)| (f.as_str(), *c)).collect();
    ctx.sb
        .world
        .commit(REPO, SEED_BRANCH, &files, "Add the services")
        .unwrap();
    for svc in SERVICES {
        app(ctx, svc, &format!("services/{svc}"));
    }
}

/// The monorepo recipe as run in service `svc`'s repo: a push of tag `tag`, or with `alert` a
/// repository_dispatch carrying it; the smoke test exits `smoke`.
fn service_env(ctx: &Ctx, svc: &str, tag: &str, smoke: i32, alert: Option<&str>) -> Env {
    let mut github: BTreeMap<String, String> = [
        ("event.repository.name", svc),
        ("ref_name", tag),
        (
            "event_name",
            if alert.is_some() {
                "repository_dispatch"
            } else {
                "push"
            },
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(alert) = alert {
        github.insert("event.client_payload".into(), alert.into());
    }
    Env {
        github,
        files: vec![(
            "smoke-test.sh".to_string(),
            format!("#!/bin/sh\necho \"smoke test of $1\"\nexit {smoke}\n"),
        )],
        ..sandbox_env(ctx)
    }
}

/// Runs the monorepo recipe's `promote` job for `svc` and returns it.
fn promote_service(ctx: &Ctx, svc: &str, tag: &str, smoke: i32) -> crate::workflow::JobRun {
    let env = service_env(ctx, svc, tag, smoke, None);
    run_job(ctx, &recipe("monorepo-service.yml"), "promote", &env)
}

#[test]
fn the_monorepo_recipe_promotes_one_service_and_its_guard_reverts_only_that_service() {
    let ctx = Ctx::new();
    services(&ctx);
    let workflow = recipe("monorepo-service.yml");
    // One concurrency group per service: web's runs queue behind web's, never behind api's.
    let doc: yaml_serde::Value = yaml_serde::from_str(&workflow).unwrap();
    let group = doc["concurrency"]["group"].as_str().unwrap();
    assert_eq!(
        group.replace("${{ github.event.repository.name }}", "web"),
        "gitops-promote-web"
    );

    let api = promote_service(&ctx, "api", "2.0.0", 0);
    assert_eq!(api.status, Job::Success, "{api:?}");
    let web = promote_service(&ctx, "web", "3.0.0", 0);
    assert_eq!(web.status, Job::Success, "{web:?}");
    assert!(web.posts.is_empty());
    let run = web.step("promote").action.as_ref().unwrap();
    assert_eq!(run.output("changed"), "true");
    let n: u64 = run.output("pr-number").parse().unwrap();
    let pr = ctx.sb.github.pr_view(REPO, n).unwrap();
    assert!(pr.merged, "{pr:?}");
    assert!(
        pr.title.starts_with("web: promote") && pr.title.contains("services/web/values.yaml"),
        "{}",
        pr.title
    );
    assert!(!pr.title.contains("services/api"), "{}", pr.title);
    // Only web's file changed in web's merge.
    let merge = run.output("merge-sha");
    let repo = ctx.sb.world.open(REPO).unwrap();
    let commit = repo
        .find_commit(git2::Oid::from_str(merge).unwrap())
        .unwrap();
    let parent = commit.parent(0).unwrap();
    let diff = repo
        .diff_tree_to_tree(
            Some(&parent.tree().unwrap()),
            Some(&commit.tree().unwrap()),
            None,
        )
        .unwrap();
    let changed: Vec<String> = diff
        .deltas()
        .map(|d| d.new_file().path().unwrap().display().to_string())
        .collect();
    assert_eq!(changed, ["services/web/values.yaml"]);
    assert!(on_main(&ctx, &service_file("web")).contains("tag: \"3.0.0\""));
    assert!(on_main(&ctx, &service_file("api")).contains("tag: \"2.0.0\""));
    assert_eq!(on_main(&ctx, &service_file("worker")), SEED_VALUES);
    assert_eq!(ctx.sb.argocd.deployed_tag("web").as_deref(), Some("3.0.0"));

    // api is promoted again after web: the newest promotion on main is no longer web's.
    let api = promote_service(&ctx, "api", "2.1.0", 0);
    assert_eq!(api.status, Job::Success, "{api:?}");

    // An alert for web: web's guard finds web's promotion behind api's and reverts it alone.
    let alert =
        r#"{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"WebErrors"}}]}"#;
    let env = service_env(&ctx, "web", "", 0, Some(alert));
    let guard = run_job(&ctx, &workflow, "guard", &env);
    assert_eq!(guard.status, Job::Success, "{guard:?}");
    let g = guard.step("guard").action.as_ref().unwrap();
    assert_eq!(g.output("rolled-back"), "true", "{}", g.log());
    assert!(g.log().contains(&format!("#{n}")), "{}", g.log());
    assert_eq!(on_main(&ctx, &service_file("web")), SEED_VALUES);
    assert!(on_main(&ctx, &service_file("api")).contains("tag: \"2.1.0\""));
    assert_eq!(ctx.sb.argocd.deployed_tag("web").as_deref(), Some("1.0.0"));
    assert_eq!(ctx.sb.argocd.deployed_tag("api").as_deref(), Some("2.1.0"));
}

#[test]
fn a_failed_smoke_test_of_one_service_rolls_back_that_service_alone() {
    let ctx = Ctx::new();
    services(&ctx);
    let api = promote_service(&ctx, "api", "2.0.0", 0);
    assert_eq!(api.status, Job::Success, "{api:?}");
    let web = promote_service(&ctx, "web", "3.0.0", 1);
    assert_eq!(web.status, Job::Failure, "{web:?}");
    let merge = web
        .step("promote")
        .action
        .as_ref()
        .unwrap()
        .output("merge-sha")
        .to_string();
    assert_eq!(web.posts.len(), 1, "the post step runs for the failed job");
    let post = &web.posts[0];
    post.assert_ok();
    assert!(
        post.log().contains("rolling back because the job failed"),
        "{}",
        post.log()
    );
    assert!(post.log().contains(&merge[..7]), "{}", post.log());
    assert_eq!(on_main(&ctx, &service_file("web")), SEED_VALUES);
    assert!(on_main(&ctx, &service_file("api")).contains("tag: \"2.0.0\""));
    assert_eq!(ctx.sb.argocd.deployed_tag("web").as_deref(), Some("1.0.0"));
    assert_eq!(ctx.sb.argocd.deployed_tag("api").as_deref(), Some("2.0.0"));
}

/// The GHES recipe's environment: the GHES host is the sandbox's GHES-shaped one, and the
/// workflow's own instance (a github.com that holds nothing of the release repo) is unreachable.
fn ghes_env(ctx: &Ctx, tag: &str) -> Env {
    let mut env = sandbox_env(ctx);
    env.secrets
        .insert("GHES_RELEASE_TOKEN".into(), ctx.sb.world.token.clone());
    env.hosts
        .push(("https://ghe.example.com".into(), ctx.sb.ghes_url.clone()));
    env.github.insert("ref_name".into(), tag.into());
    env.instance = Some(("http://127.0.0.1:9".into(), "http://127.0.0.1:9".into()));
    env
}

#[test]
fn the_enterprise_server_recipe_promotes_through_api_v3_and_the_instances_git_host() {
    let ctx = Ctx::new();
    let job = run_job(
        &ctx,
        &recipe("github-enterprise.yml"),
        "deploy",
        &ghes_env(&ctx, "4.2.0"),
    );
    assert_eq!(job.status, Job::Success, "{job:?}");
    let run = job.step("promote").action.as_ref().unwrap();
    let pr_url = run.output("pr-url");
    assert!(
        pr_url.starts_with(&format!("{}/{REPO}/pull/", ctx.sb.ghes_url)),
        "the PR is on the GHES host: {pr_url}"
    );
    assert!(run.log().contains(pr_url), "{}", run.log());
    let calls = ctx.sb.faults.calls(Some("github"));
    assert!(!calls.is_empty());
    for c in &calls {
        assert!(c.path.starts_with("/api/v3/"), "{} {}", c.method, c.path);
    }
    assert!(ctx.values_on_main().contains("tag: \"4.2.0\""));
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("4.2.0"));
    // The run's own link names the workflow's instance, not the release repo's.
    let n: u64 = run.output("pr-number").parse().unwrap();
    let body = ctx.sb.github.pr_view(REPO, n).unwrap().body;
    assert!(body.contains("http://127.0.0.1:9/"), "{body}");
}

#[test]
fn the_enterprise_server_recipe_with_the_api_url_as_git_host_fails_before_any_push() {
    let ctx = Ctx::new();
    // A common slip: github-server-url copied from github-api-url, /api/v3 and all.
    let workflow = recipe("github-enterprise.yml").replace(
        "github-server-url: https://ghe.example.com\n",
        "github-server-url: https://ghe.example.com/api/v3\n",
    );
    let job = run_job(&ctx, &workflow, "deploy", &ghes_env(&ctx, "4.3.0"));
    assert_eq!(job.status, Job::Failure, "{job:?}");
    let run = job.step("promote").action.as_ref().unwrap();
    // The input is named with what to do, before any clone; it is not blamed on the token.
    let errors = run.errors();
    assert!(
        errors.iter().any(|e| e.contains("github-server-url")
            && e.contains(&format!("{}/api/v3", ctx.sb.ghes_url))
            && e.contains("put it in github-api-url")),
        "{errors:?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("authentication")),
        "{errors:?}"
    );
    assert!(ctx.sb.github.prs(REPO).is_empty(), "no PR");
    assert!(ctx.our_branches().is_empty(), "no branch");
    assert_eq!(ctx.values_on_main(), SEED_VALUES);
}

/// An overlay pinning two images; `web` is the one the app's workload runs.
const KUSTOMIZATION: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  # Set by CI.
  - name: web
    newName: ghcr.io/acme/web
    newTag: \"1.0.0\"
  - name: envoy
    newTag: v1.31.0 # pinned by hand
";

const OVERLAY: &str = "overlays/prod/kustomization.yaml";

/// The Kustomize recipe's release repo: the overlay, and app `web-prod` deploying it.
fn overlay(ctx: &Ctx) {
    ctx.sb
        .world
        .commit(
            REPO,
            SEED_BRANCH,
            &[(OVERLAY, KUSTOMIZATION)],
            "Add prod overlay",
        )
        .unwrap();
    app(ctx, "web-prod", "overlays/prod");
}

fn tag_env(ctx: &Ctx, tag: &str) -> Env {
    let mut env = sandbox_env(ctx);
    env.github.insert("ref_name".into(), tag.into());
    env
}

#[test]
fn the_kustomize_recipe_sets_the_named_images_new_tag_and_argo_cd_deploys_it() {
    let ctx = Ctx::new();
    overlay(&ctx);
    let app = ctx.sb.argocd.application("web-prod").unwrap();
    assert_eq!(app["status"]["sourceType"], "Kustomize");
    let job = run_job(
        &ctx,
        &recipe("kustomize-overlay.yml"),
        "deploy",
        &tag_env(&ctx, "1.4.0"),
    );
    assert_eq!(job.status, Job::Success, "{job:?}");
    let run = job.step("promote").action.as_ref().unwrap();
    assert_eq!(run.output("changed"), "true");
    assert_eq!(
        on_main(&ctx, OVERLAY),
        KUSTOMIZATION.replace("newTag: \"1.0.0\"", "newTag: \"1.4.0\""),
        "only web's newTag changed"
    );
    assert_eq!(
        ctx.sb.argocd.deployed_tag("web-prod").as_deref(),
        Some("1.4.0")
    );
    assert_eq!(run.output("health"), "Healthy");
}

#[test]
fn a_kustomize_promotion_that_goes_degraded_restores_the_overlay() {
    let ctx = Ctx::new();
    overlay(&ctx);
    let job = run_job(
        &ctx,
        &recipe("kustomize-overlay.yml"),
        "deploy",
        &tag_env(&ctx, "1.5.0-bad"),
    );
    assert_eq!(job.status, Job::Failure, "{job:?}");
    let run = job.step("promote").action.as_ref().unwrap();
    assert_eq!(run.output("rolled-back"), "true", "{}", run.log());
    assert!(run.log().contains("Degraded"), "{}", run.log());
    assert_eq!(on_main(&ctx, OVERLAY), KUSTOMIZATION);
    assert_eq!(
        ctx.sb.argocd.deployed_tag("web-prod").as_deref(),
        Some("1.0.0")
    );
}
