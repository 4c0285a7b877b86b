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
