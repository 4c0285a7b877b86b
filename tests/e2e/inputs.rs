//! The bad-input matrix (issue #7): each bad input ends the main step with a non-zero exit, exactly
//! one `::error` annotation naming the input, and nothing changed: the base branch, the PRs, our
//! branches and the app are as before.

use crate::harness::{commit_on_main, Ctx, Run, REPO};
use sandbox::{Fault, FaultRule};

/// What the world looked like before the run.
struct Before {
    main: String,
    deployed: Option<String>,
}

fn before(ctx: &Ctx) -> Before {
    Before {
        main: ctx.main_sha(),
        deployed: ctx.sb.argocd.deployed_tag("app"),
    }
}

/// The step failed with one annotation that names `input` (the input's name, or for `file` and
/// `set` the value the user wrote) and `also`, and nothing in the release repo or Argo CD changed.
fn assert_refused(ctx: &Ctx, b: &Before, run: &Run, input: &str, also: &str) {
    run.assert_failed();
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "one annotation:\n{}", run.log());
    let e = &errors[0];
    assert!(
        e.contains(input) && e.contains(also),
        "the annotation names {input:?} and {also:?}: {e}"
    );
    assert_eq!(ctx.main_sha(), b.main, "{input}: the base branch moved");
    let prs = ctx.sb.github.prs(REPO);
    assert!(
        prs.iter().all(|p| p.state == "closed" && !p.merged),
        "{input}: a PR is open or merged: {prs:?}"
    );
    let ours = ctx.our_branches();
    assert!(ours.is_empty(), "{input}: branches left: {ours:?}");
    assert_eq!(ctx.sb.argocd.deployed_tag("app"), b.deployed);
    // The post step the runner then runs changes nothing either.
    let post = ctx.post(&[], &run.state);
    post.assert_ok();
    assert_eq!(ctx.main_sha(), b.main, "{input}: the post step moved main");
}

/// Runs one promotion with `inputs` in a fresh sandbox prepared by `prep`, and checks the refusal.
fn refused(inputs: &[(&str, &str)], prep: impl FnOnce(&Ctx), input: &str, also: &str) -> Run {
    let ctx = Ctx::new();
    prep(&ctx);
    let b = before(&ctx);
    let mut all = vec![("set", "image.tag=1.1.0")];
    all.extend_from_slice(inputs);
    let run = ctx.main(&all);
    assert_refused(&ctx, &b, &run, input, also);
    run
}

#[test]
fn malformed_yaml_in_the_values_file() {
    refused(
        &[("file", "charts/app/broken.yaml")],
        |ctx| {
            commit_on_main(
                &ctx.sb,
                &[("charts/app/broken.yaml", "image:\n  tag: \"1.0.0\n  x: [\n")],
                "test fixture",
            );
        },
        "charts/app/broken.yaml",
        "malformed",
    );
}

#[test]
fn a_yaml_bomb_is_refused_not_expanded() {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names: Vec<char> = "bcdefghij".chars().collect();
    let mut prev = 'a';
    for n in &names {
        bomb.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = *n;
    }
    bomb.push_str("image:\n  tag: \"1.0.0\"\n");
    let t = std::time::Instant::now();
    refused(
        &[("file", "charts/app/bomb.yaml")],
        |ctx| {
            commit_on_main(&ctx.sb, &[("charts/app/bomb.yaml", &bomb)], "test fixture");
        },
        "charts/app/bomb.yaml",
        "alias",
    );
    // Expanding 9^10 nodes would take far longer than this.
    assert!(t.elapsed().as_secs() < 30, "took {:?}", t.elapsed());
}

#[test]
fn a_file_outside_the_repo_is_refused() {
    for path in ["../values.yaml", "charts/../../etc/passwd", "/etc/passwd"] {
        refused(&[("file", path)], |_| {}, "file", "");
    }
}

#[test]
fn a_symlink_out_of_the_repo_is_refused() {
    refused(
        &[("file", "charts/app/link.yaml")],
        |ctx| {
            let repo = ctx.sb.world.open(REPO).unwrap();
            let parent = repo.refname_to_id("refs/heads/main").unwrap();
            let parent = repo.find_commit(parent).unwrap();
            let blob = repo.blob(b"/etc/passwd").unwrap();
            let mut up = git2::build::TreeUpdateBuilder::new();
            up.upsert("charts/app/link.yaml", blob, git2::FileMode::Link);
            let tree = up.create_updated(&repo, &parent.tree().unwrap()).unwrap();
            let tree = repo.find_tree(tree).unwrap();
            let sig = sandbox::world::seed_signature().unwrap();
            repo.commit(
                Some("refs/heads/main"),
                &sig,
                &sig,
                "symlink",
                &tree,
                &[&parent],
            )
            .unwrap();
        },
        "charts/app/link.yaml",
        "symbolic link",
    );
}

#[test]
fn an_unknown_set_path_names_the_path() {
    refused(
        &[("set", "image.nope=1")],
        |_| {},
        "image.nope",
        "not found",
    );
    refused(&[("set", "image.tag[3]=1")], |_| {}, "image.tag", "");
    refused(&[("set", "image.tag")], |_| {}, "set", "");
}

#[test]
fn bad_durations_and_an_unknown_merge_method() {
    refused(
        &[("health-timeout", "ten minutes")],
        |_| {},
        "health-timeout",
        "",
    );
    refused(
        &[("approval-timeout", "-5s")],
        |_| {},
        "approval-timeout",
        "",
    );
    refused(
        &[("merge-method", "fast-forward")],
        |_| {},
        "merge-method",
        "",
    );
}

#[test]
fn a_missing_app_is_refused_before_anything_is_pushed() {
    refused(&[("argocd-app", "nope")], |_| {}, "argocd-app", "nope");
}

#[test]
fn a_wrong_github_token() {
    refused(&[("github-token", "ghs_wrong")], |_| {}, "github-token", "");
}

/// Tokens that authenticate but may not act: GitHub answers 403 for a missing scope, and 404 for a
/// private repo the token cannot see.
#[test]
fn under_scoped_github_tokens() {
    for (status, message) in [
        (403, "Resource not accessible by integration"),
        (404, "Not Found"),
    ] {
        refused(
            &[],
            |ctx| {
                ctx.sb.faults.inject(FaultRule {
                    service: "github".into(),
                    method: None,
                    path: "/repos/**".into(),
                    times: 1000,
                    fault: Fault::Status {
                        status,
                        body: Some(serde_json::json!({ "message": message })),
                    },
                })
            },
            "github-token",
            "",
        );
    }
}

#[test]
fn a_wrong_argocd_token() {
    refused(
        &[("argocd-token", "not-a-token")],
        |_| {},
        "argocd-token",
        "",
    );
}

#[test]
fn an_argocd_server_that_is_not_argocd() {
    // The GitHub emulator answers JSON 404s, the git host HTML: neither is Argo CD.
    for which in ["github api", "git host"] {
        let ctx = Ctx::new();
        let server = match which {
            "github api" => ctx.sb.github_api_url.clone(),
            _ => ctx.sb.git_url().to_string(),
        };
        let b = before(&ctx);
        let run = ctx.main(&[("set", "image.tag=1.1.0"), ("argocd-server", &server)]);
        assert_refused(&ctx, &b, &run, "argocd-server", "");
    }
}
