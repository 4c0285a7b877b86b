//! Argo CD over TLS with a private CA (`argocd-ca-cert`): lighttpd terminates TLS in front of the
//! Argo CD emulator with a leaf certificate signed by a CA made here. Without the CA the promotion
//! stops on the certificate before anything is pushed; with it, it promotes.

use crate::harness::{checked, free_port, Ctx, Daemon, REPO};
use std::path::Path;
use std::process::{Command, Stdio};

/// lighttpd proxying `https://127.0.0.1:PORT` to the emulator; stopped on drop.
pub struct TlsFront {
    _server: Daemon,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The PEM file of the CA that signed the front's certificate.
    pub ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    checked(Command::new("openssl").args(args).current_dir(dir));
}

/// A CA, and a leaf for 127.0.0.1 it signed (rustls refuses a CA certificate as the server's).
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sandbox CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
}

/// A TLS front for `upstream` (an `http://127.0.0.1:PORT` URL) with a certificate of a CA made here.
pub fn tls_front(upstream: &str) -> TlsFront {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let port = free_port();
    let up = upstream.trim_start_matches("http://");
    let (up_host, up_port) = up.split_once(':').unwrap();
    let conf = format!(
        r#"server.modules = ("mod_openssl", "mod_proxy")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{d}"
server.errorlog = "{d}/error.log"
server.stream-response-body = 2
ssl.engine = "enable"
ssl.pemfile = "{d}/leaf.pem"
ssl.privkey = "{d}/leaf.key"
proxy.server = ( "" => (( "host" => "{up_host}", "port" => {up_port} )) )
"#,
        d = dir.path().display()
    );
    std::fs::write(dir.path().join("lighttpd.conf"), conf).unwrap();
    let server = Daemon::start(
        "the TLS front (Debian's lighttpd and lighttpd-mod-openssl)",
        Command::new("/usr/sbin/lighttpd")
            .args(["-D", "-f"])
            .arg(dir.path().join("lighttpd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
        port,
    );
    TlsFront {
        _server: server,
        url: format!("https://127.0.0.1:{port}"),
        ca: dir.path().join("ca.pem"),
        _dir: dir,
    }
}

#[test]
fn argocd_behind_a_private_ca_needs_its_certificate_and_then_promotes() {
    let ctx = Ctx::new();
    let tls = tls_front(&ctx.sb.argocd_url);
    let head = ctx.main_sha();

    let strict = ctx.main(&[("set", "image.tag=8.0.0"), ("argocd-server", &tls.url)]);
    strict.assert_failed();
    let errors = strict.errors().join("\n").to_lowercase();
    assert!(
        errors.contains("certificate") || errors.contains("tls"),
        "{errors}"
    );
    assert_eq!(ctx.main_sha(), head, "refused before anything was pushed");
    assert!(ctx.sb.github.prs(REPO).is_empty());

    let ca = tls.ca.to_str().unwrap();
    let run = ctx.main(&[
        ("set", "image.tag=8.0.0"),
        ("argocd-server", &tls.url),
        ("argocd-ca-cert", ca),
    ]);
    run.assert_ok();
    assert_eq!(run.output("health"), "Healthy");
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("8.0.0"));

    // The input is documented as PEM: the certificate itself works as well as its path (as a
    // workflow passes it from a secret).
    let pem = std::fs::read_to_string(&tls.ca).unwrap();
    let run = ctx.main(&[
        ("set", "image.tag=8.1.0"),
        ("argocd-server", &tls.url),
        ("argocd-ca-cert", &pem),
    ]);
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("8.1.0"));
}
