//! App of apps (issue #14): a parent whose resources are child Applications is Healthy whatever
//! its children do, as Argo CD has no health check for Application CRs since 1.8. The promotion
//! waits for the children too (and theirs, to three levels): synced at the merge where they track
//! the release repo, and Healthy, and a failing child is named.

use crate::harness::{commit_on_main, Ctx};
use sandbox::argocd::{HealthRule, NewApp};
use std::collections::BTreeMap;

/// `root` (path `apps`, a kustomization of Application manifests) holds `child-a` (auto-sync)
/// and `child-b` (manual), and `child-b` holds `grand`: all three deploy the seeded chart.
fn app_of_apps(ctx: &Ctx) {
    commit_on_main(
        &ctx.sb,
        &[(
            "apps/kustomization.yaml",
            "resources:\n  - child-a.yaml\n  - child-b.yaml\n",
        )],
        "apps: the child Applications",
    );
    let new = |name: &str, path: Option<&str>, auto_sync: bool| NewApp {
        name: name.into(),
        labels: BTreeMap::new(),
        auto_sync,
        path: path.map(str::to_string),
        target_revision: None,
        project: None,
        sync_options: vec![],
    };
    let argo = &ctx.sb.argocd;
    argo.create_app(new("root", Some("apps"), false)).unwrap();
    argo.create_app(new("child-a", None, true)).unwrap();
    argo.create_app(new("child-b", None, false)).unwrap();
    argo.create_app(new("grand", None, false)).unwrap();
    assert!(argo.set_children("root", &["child-a", "child-b"]));
    assert!(argo.set_children("child-b", &["grand"]));
}

#[test]
fn the_children_of_an_app_of_apps_are_waited_for_at_the_merge() {
    let ctx = Ctx::new();
    app_of_apps(&ctx);
    let run = ctx.main(&[("set", "image.tag=2.2.0"), ("argocd-app", "root")]);
    run.assert_ok();
    assert!(
        run.log()
            .contains("root: an app of apps; waiting for its child apps too"),
        "{}",
        run.log()
    );
    for child in ["child-a", "child-b", "grand"] {
        assert_eq!(
            ctx.sb.argocd.deployed_tag(child).as_deref(),
            Some("2.2.0"),
            "{child}: {}",
            run.log()
        );
    }
}

#[test]
fn a_degraded_grandchild_fails_the_promotion_naming_it() {
    let ctx = Ctx::new();
    app_of_apps(&ctx);
    ctx.sb.argocd.add_rule(HealthRule {
        app: Some("grand".into()),
        suffix: "-grand".into(),
        health: "Degraded".into(),
        delay_ms: 200,
        message: None,
        healthy_after_ms: None,
    });
    let before = ctx.values_on_main();
    let run = ctx.main(&[
        ("set", "image.tag=2.3.0-grand"),
        ("argocd-app", "root"),
        ("health-timeout", "30s"),
    ]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(errors.contains("title=health error in wait"), "{errors}");
    assert!(errors.contains("child app grand of child-b"), "{errors}");
    assert_eq!(run.output("error-type"), "health");
    // The parent alone was Healthy: only the children's wait could revert this.
    assert_eq!(ctx.values_on_main(), before, "{}", run.log());
}
