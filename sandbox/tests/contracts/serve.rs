//! `sandbox serve`, the fixed interface of DESIGN.md §9 that other checks call: its printed keys,
//! its seeded world, and that it stops its children on SIGTERM.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn serve_prints_its_keys_serves_the_seeded_world_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut env = BTreeMap::new();
    let mut keys = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let (k, v) = line.split_once('=').expect("KEY=VALUE lines");
        keys.push(k.to_string());
        env.insert(k.to_string(), v.to_string());
        if line == "SANDBOX_READY=1" {
            break;
        }
    }
    assert_eq!(
        keys,
        [
            "GITHUB_API_URL",
            "GITHUB_SERVER_URL",
            "GITHUB_TOKEN",
            "GITHUB_REPOSITORY",
            "ARGOCD_SERVER",
            "ARGOCD_AUTH_TOKEN",
            "ARGOCD_PASSWORD",
            "SANDBOX_CONTROL",
            "SANDBOX_READY"
        ]
    );
    assert_eq!(env["GITHUB_REPOSITORY"], "acme/deploy");
    assert_eq!(
        env["SANDBOX_CONTROL"],
        format!("{}/_sandbox", env["GITHUB_API_URL"])
    );

    // The seeded repo, through real git with the printed token.
    let dir = tempfile::tempdir().unwrap();
    let host = env["GITHUB_SERVER_URL"].trim_start_matches("http://");
    let url = format!(
        "http://x-access-token:{}@{host}/acme/deploy.git",
        env["GITHUB_TOKEN"]
    );
    let clone = Command::new("git")
        .args(["clone", "-q", &url])
        .arg(dir.path().join("c"))
        .status()
        .unwrap();
    assert!(clone.success());
    let values = std::fs::read_to_string(dir.path().join("c/charts/app/values.yaml")).unwrap();
    assert!(values.contains("tag: \"1.0.0\""), "{values}");

    // The lighttpd child is ours: after SIGTERM nothing answers on the git host's port.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = std::net::TcpStream::connect(host).is_err();
    assert!(gone, "the git host still answers after serve stopped");
}
