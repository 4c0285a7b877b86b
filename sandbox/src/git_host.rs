//! Real git over smart HTTP: lighttpd running `git http-backend` on a loopback port, with Basic auth
//! `x-access-token:<token>` (any other user or token gets 401). lighttpd, not Python's CGI server:
//! the latter cannot stream pack data; `server.stream-request-body = 0` keeps pushes over 1 MB working.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running git host; stops lighttpd when dropped.
pub struct GitHost {
    /// `http://127.0.0.1:PORT`; clone URLs are `{url}/{owner}/{name}.git`.
    pub url: String,
    child: Child,
    _conf_dir: tempfile::TempDir,
}

/// Where Debian installs `git http-backend`.
fn http_backend() -> Result<PathBuf> {
    for p in [
        "/usr/lib/git-core/git-http-backend",
        "/usr/libexec/git-core/git-http-backend",
    ] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .context("git is not installed")?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("git-http-backend");
    if p.exists() {
        return Ok(p);
    }
    bail!("git-http-backend not found: install Debian's git package")
}

/// Finds the lighttpd binary, or says how to install it.
fn lighttpd() -> Result<PathBuf> {
    for p in ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("lighttpd not found: run `apt-get install -y lighttpd` (./dev does it for you)")
}

/// Picks a free loopback port for a child process to bind.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listened on 127.0.0.1:{port} within {timeout:?}")
}

impl GitHost {
    /// Starts lighttpd serving every bare repo under `repos_dir` to `token`.
    pub fn start(repos_dir: &Path, token: &str) -> Result<GitHost> {
        let conf_dir = tempfile::Builder::new()
            .prefix("gitops-githost-")
            .tempdir()?;
        let users = conf_dir.path().join("users");
        std::fs::write(&users, format!("x-access-token:{token}\n"))?;
        let backend = http_backend()?;
        {
            let port = free_port()?;
            let conf = conf_dir.path().join("lighttpd.conf");
            std::fs::write(
                &conf,
                format!(
                    r#"server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_setenv", "mod_cgi", "mod_accesslog")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{repos}"
server.errorlog = "{dir}/error.log"
accesslog.filename = "{dir}/access.log"
server.stream-request-body = 0
server.stream-response-body = 0
server.max-request-size = 0
alias.url = ( "/" => "{backend}/" )
cgi.assign = ( "" => "" )
setenv.add-environment = ( "GIT_PROJECT_ROOT" => "{repos}", "GIT_HTTP_EXPORT_ALL" => "1" )
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ( "/" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
"#,
                    repos = repos_dir.display(),
                    dir = conf_dir.path().display(),
                    backend = backend.display(),
                    users = users.display(),
                ),
            )?;
            let child = Command::new(lighttpd()?)
                .args(["-D", "-f"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting lighttpd")?;
            let mut host = GitHost {
                url: format!("http://127.0.0.1:{port}"),
                child,
                _conf_dir: conf_dir,
            };
            if let Err(e) = wait_for_port(port, Duration::from_secs(10)) {
                let _ = host.child.kill();
                let mut log = String::new();
                if let Some(mut err) = host.child.stderr.take() {
                    use std::io::Read;
                    let _ = err.read_to_string(&mut log);
                }
                return Err(e.context(format!("lighttpd did not start: {log}")));
            }
            Ok(host)
        }
    }
}

impl Drop for GitHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
