//! The repo the git benches run on: 1,000 charts of five files plus the seeded chart, with a
//! history of `commits` commits, packed as a hosted repo is.

use sandbox::world::{commit_files, seed_signature, SEED_VALUES, SEED_VALUES_PATH};
use sandbox::Sandbox;
use std::path::Path;
use std::process::Command;

/// Charts in the generated repo; five files each, plus the seeded chart's two.
pub const CHARTS: usize = 1000;

/// Builds `name` with `CHARTS` charts and `commits` commits, each later one bumping one chart's tag,
/// then packs it as a hosted repo would be.
pub fn make_repo(sb: &Sandbox, name: &str, commits: usize) {
    let mut files: Vec<(String, String)> = vec![
        (SEED_VALUES_PATH.to_string(), SEED_VALUES.to_string()),
        (
            "charts/app/Chart.yaml".to_string(),
            sandbox::world::SEED_CHART.to_string(),
        ),
    ];
    for i in 0..CHARTS {
        let d = format!("charts/svc-{i:04}");
        files.push((
            format!("{d}/Chart.yaml"),
            format!("apiVersion: v2\nname: svc-{i:04}\nversion: 0.1.0\nappVersion: \"1.0.0\"\n"),
        ));
        files.push((format!("{d}/values.yaml"), svc_values(i, 0)));
        files.push((format!("{d}/templates/deployment.yaml"), format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i:04}\nspec:\n  replicas: {{{{ .Values.replicaCount }}}}\n  template:\n    spec:\n      containers:\n        - name: app\n          image: \"{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag }}}}\"\n")));
        files.push((format!("{d}/templates/service.yaml"), format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i:04}\nspec:\n  ports:\n    - port: 80\n      targetPort: 8080\n")));
        files.push((
            format!("{d}/README.md"),
            format!("# svc-{i:04}\n\nOwned by team-{}.\n", i % 7),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let mut head = sb
        .world
        .create_repo(name, "main", &refs)
        .expect("create repo");
    let repo = sb.world.open(name).expect("open repo");
    let sig = seed_signature().unwrap();
    for n in 1..commits {
        let i = n % CHARTS;
        let path = format!("charts/svc-{i:04}/values.yaml");
        let change = vec![(path, svc_values(i, n).into_bytes())];
        head = commit_files(
            &repo,
            "main",
            Some(head),
            &change,
            &format!("svc-{i:04}: 1.0.{n}"),
            &sig,
        )
        .expect("commit");
    }
    let dir = sb.world.repo_path(name);
    git(&dir, &["repack", "-adq"]);
    git(&dir, &["commit-graph", "write", "--reachable"]);
}

fn svc_values(i: usize, n: usize) -> String {
    format!(
        "# Values for svc-{i:04}.\nreplicaCount: 2\nimage:\n  repository: ghcr.io/acme/svc-{i:04}\n  tag: \"1.0.{n}\"\n  pullPolicy: IfNotPresent\nresources:\n  limits:\n    cpu: 500m\n    memory: 256Mi\n"
    )
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .status()
        .expect("git runs");
    assert!(st.success(), "git {args:?} failed");
}
