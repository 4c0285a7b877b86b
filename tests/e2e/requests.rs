//! What the product sends, checked against GitHub's published OpenAPI description: every request
//! body of a promotion (labels, reviewers, assignees, merge) and of its rollback (revert PR, merge,
//! comments) must be one GitHub documents (issue #3's fidelity rule, from the client's side).

use crate::harness::Ctx;
use sandbox::contract::{contracts_dir, Spec};

#[test]
fn every_github_request_body_matches_the_openapi_description() {
    let Some(dir) = contracts_dir(
        "github",
        "every_github_request_body_matches_the_openapi_description",
    ) else {
        return;
    };
    let spec = Spec::load(&dir);
    let ctx = Ctx::new();
    let run = ctx.main(&[
        ("set", "image.tag=6.0.0"),
        ("labels", "deploy"),
        ("reviewers", "alice"),
        ("assignees", "bob"),
        ("merge-method", "squash"),
    ]);
    run.assert_ok();
    ctx.post(&[], &run.state).assert_ok();

    let calls = ctx.sb.faults.calls(Some("github"));
    let sent: Vec<_> = calls.iter().filter(|c| c.body.is_some()).collect();
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for c in &sent {
        let body = c.body.as_ref().unwrap();
        if c.method == "POST" && c.path.ends_with("/assignees") {
            // "Add assignees to an issue" is a GitHub operation the reduced description in
            // ../shared/contracts leaves out; its documented body is {"assignees": [logins]}.
            let logins = body["assignees"].as_array();
            assert!(
                logins.is_some_and(|a| a.iter().all(|l| l.is_string()))
                    && body.as_object().unwrap().len() == 1,
                "add-assignees body: {body}"
            );
            checked.push("POST /repos/{owner}/{repo}/issues/{issue_number}/assignees".into());
            continue;
        }
        match spec.check_request(&c.method, &c.path, body) {
            Ok(template) => checked.push(format!("{} {template}", c.method)),
            Err(e) => problems.push(e),
        }
    }
    assert!(
        problems.is_empty(),
        "requests GitHub would not take:\n{}",
        problems.join("\n")
    );
    // The run sent what a promotion and a rollback must: so this test cannot pass on nothing.
    for op in [
        "POST /repos/{owner}/{repo}/pulls",
        "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge",
        "POST /repos/{owner}/{repo}/issues/{issue_number}/labels",
        "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    ] {
        assert!(checked.iter().any(|c| c == op), "no {op} among {checked:?}");
    }
}
