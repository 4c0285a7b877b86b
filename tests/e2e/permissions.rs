//! What ordinary tokens may not do (issue #13): a repository that does not let GitHub Actions
//! open pull requests (the default of new repositories) fails the step with GitHub's words and
//! the setting that fixes it.

use crate::harness::Ctx;
use sandbox::world::SEED_REPO;

#[test]
fn a_repo_that_does_not_let_actions_open_prs_names_the_setting() {
    let ctx = Ctx::new();
    ctx.sb.github.set_actions_may_open_prs(false);
    let before = ctx.main_sha();
    let run = ctx.main(&[("set", "image.tag=1.9.0")]);
    run.assert_failed();
    assert_eq!(run.output("error-type"), "authorization");
    let errors = run.errors().join("\n");
    assert!(
        errors.contains("GitHub Actions is not permitted to create or approve pull requests"),
        "{errors}"
    );
    assert!(
        errors.contains("Allow GitHub Actions to create and approve pull requests"),
        "{errors}"
    );
    assert_eq!(ctx.main_sha(), before, "nothing merged");
    assert!(ctx.sb.github.prs(SEED_REPO).is_empty());
}

/// Team reviewers are asked for with the users; a team GitHub will not take (unknown, or a token
/// that cannot read the organization) is a warning, and the promotion goes on.
#[test]
fn team_reviewers_are_requested_and_a_refused_team_is_a_warning() {
    let ctx = Ctx::new();
    ctx.sb.github.add_team("platform");
    let run = ctx.main(&[
        ("set", "image.tag=1.9.1"),
        ("team-reviewers", "platform"),
        ("merge", "false"),
    ]);
    run.assert_ok();
    let n: u64 = run.output("pr-number").parse().unwrap();
    let pr = ctx.sb.github.pr_view(SEED_REPO, n).unwrap();
    assert_eq!(pr.requested_teams, ["platform"]);

    let ghost = ctx.main(&[
        ("set", "image.tag=1.9.2"),
        ("team-reviewers", "ghosts"),
        ("merge", "false"),
    ]);
    ghost.assert_ok();
    assert!(
        ghost.log().contains("teams [\"ghosts\"] not requested"),
        "{}",
        ghost.log()
    );
}
