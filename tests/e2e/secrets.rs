//! Secrets (issue #7): every byte the binary writes (stdout, stderr, GITHUB_OUTPUT, GITHUB_STATE,
//! the step summary, its HOME, its TMPDIR with any clone or temp file left behind) holds none of
//! the tokens and passwords it was given; and TLS to Argo CD is verified unless `argocd-insecure`.

use crate::harness::{checked, free_port, Ctx, Daemon, Spawned, Step};
use std::path::Path;

/// Every regular file under `dir`, recursively (symlinks not followed).
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

/// The byte strings that must never appear: each secret as given, and the forms it travels in
/// (Basic auth for git over HTTP, a Bearer header).
fn needles(ctx: &Ctx) -> Vec<(String, Vec<u8>)> {
    use base64_like::encode;
    let gh = ctx.sb.world.token.clone();
    let mut n = vec![
        ("github token".to_string(), gh.as_bytes().to_vec()),
        (
            "git Basic auth".to_string(),
            encode(format!("x-access-token:{gh}").as_bytes()).into_bytes(),
        ),
        (
            "argocd token".to_string(),
            ctx.sb.argocd.token().as_bytes().to_vec(),
        ),
        (
            "argocd password".to_string(),
            ctx.sb.argocd.password().as_bytes().to_vec(),
        ),
    ];
    n.retain(|(_, b)| b.len() >= 8);
    n
}

/// Standard base64, enough for a needle (no dependency for one use).
mod base64_like {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(b: &[u8]) -> String {
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

/// `::add-mask::<secret>` is how a step asks the runner to mask a secret; the runner consumes the
/// line and never shows it. Everything else must be clean.
fn without_mask_lines(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_secret_in_anything_the_binary_writes() {
    let ctx = Ctx::new();
    // A promotion that succeeds (token auth), one that fails and reverts in the step (username and
    // password: a session login), and the post step after it.
    let ok = Spawned::main(&ctx, &[("set", "image.tag=1.1.0")]).finish();
    ok.assert_ok();
    let pw = [
        ("set", "image.tag=1.2.0-bad"),
        ("argocd-token", ""),
        ("argocd-username", "admin"),
        ("argocd-password", ctx.sb.argocd.password()),
        ("health-timeout", "20s"),
    ];
    let bad = Spawned::main(&ctx, &pw).finish();
    bad.assert_failed();
    assert_eq!(bad.output("rolled-back"), "true", "{}", bad.log());
    let post = Spawned::start(&ctx, Step::Post, &pw, &bad.state).finish();
    post.assert_ok();
    // A run that fails on a refused token prints its error, not the token.
    let refused = Spawned::main(
        &ctx,
        &[
            ("set", "image.tag=1.3.0"),
            ("github-token", "ghs_refusedrefused"),
        ],
    )
    .finish();
    refused.assert_failed();
    assert!(
        refused
            .log()
            .lines()
            .all(|l| !l.contains("ghs_refusedrefused") || l.starts_with("::add-mask::")),
        "{}",
        refused.log()
    );
    // The scan below would see the secrets: the step does print them, in its mask requests.
    assert!(
        ok.stdout
            .contains(&format!("::add-mask::{}", ctx.sb.world.token)),
        "the token is masked first:\n{}",
        ok.stdout
    );

    let mut all = Vec::new();
    files(ctx.dir.path(), &mut all);
    assert!(all.len() >= 15, "the runner workspaces: {all:?}");
    let mut leaks = Vec::new();
    for f in &all {
        let bytes = without_mask_lines(&std::fs::read(f).unwrap());
        for (what, needle) in needles(&ctx) {
            if find(&bytes, &needle) {
                leaks.push(format!("{what} in {}", f.display()));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets written:\n{}", leaks.join("\n"));
}

/// A self-signed HTTPS server (`openssl s_server`) on a free loopback port; killed when dropped.
struct TlsServer {
    _server: Daemon,
    url: String,
    _dir: tempfile::TempDir,
}

fn tls_server() -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    checked(
        std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ])
            .current_dir(dir.path()),
    );
    let port = free_port();
    let server = Daemon::start(
        "openssl s_server",
        std::process::Command::new("openssl")
            .args([
                "s_server", "-quiet", "-www", "-cert", "cert.pem", "-key", "key.pem",
            ])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
        port,
    );
    TlsServer {
        _server: server,
        url: format!("https://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// An Argo CD behind a certificate nobody trusts is refused for the certificate; with
/// `argocd-insecure` the TLS handshake passes (and the server is then found not to be Argo CD).
#[test]
fn tls_to_argocd_is_verified_unless_insecure() {
    let tls = tls_server();
    let ctx = Ctx::new();
    let strict = ctx.main(&[("set", "image.tag=1.1.0"), ("argocd-server", &tls.url)]);
    strict.assert_failed();
    let e = strict.errors().join("\n").to_lowercase();
    assert!(e.contains("certificate") || e.contains("tls"), "{e}");
    // An untrusted certificate is a setting to fix, not a blip to retry for the whole budget.
    assert!(
        e.contains("config error") && e.contains("argocd-ca-cert"),
        "{e}"
    );
    let ctx = Ctx::new();
    let insecure = ctx.main(&[
        ("set", "image.tag=1.1.0"),
        ("argocd-server", &tls.url),
        ("argocd-insecure", "true"),
    ]);
    insecure.assert_failed();
    let e = insecure.errors().join("\n").to_lowercase();
    assert!(!e.contains("certificate"), "{e}");
    assert!(e.contains("does not answer like the argo cd api"), "{e}");
}
