//! The remote: where the release repo lives, the token that opens it (sent by our HTTP transport,
//! never handed to libgit2), the network timeouts, and the retries of transient failures.

use super::error::GitError;
use crate::base::{Classify, ErrorKind};
use git2::RemoteCallbacks;
use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

/// How long a fetch or push is retried when `Remote::retry_budget` is not set otherwise.
pub const RETRY_BUDGET: Duration = Duration::from_secs(120);

/// Runs `f` again after a transient transport failure (connection, timeout, 5xx, 429), with
/// backoff and jitter (about 0.5, 1, 2, 4, 8 s), for up to `budget`; other errors
/// (authentication, rejection, a missing branch) return at once.
pub(super) fn with_retries<T>(
    budget: Duration,
    mut f: impl FnMut() -> Result<T, GitError>,
) -> Result<T, GitError> {
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        match f() {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Connectivity | ErrorKind::Timeout | ErrorKind::RateLimit
                ) =>
            {
                let wait =
                    Duration::from_millis(500 << attempt.min(4)).mul_f64(0.5 + fastrand::f64());
                if started.elapsed() + wait > budget {
                    return Err(e);
                }
                std::thread::sleep(wait);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Where the release repo lives and the token that opens it.
#[derive(Clone)]
pub struct Remote {
    /// The https clone URL; it must not carry credentials.
    pub url: String,
    /// The token sent as the Basic auth password of `x-access-token`; never printed.
    pub token: String,
    /// How long a fetch or push is retried after transient failures (`retry-budget`).
    pub retry_budget: Duration,
    /// The certificates an https git host may present (`ca-cert` besides the system's).
    pub trust: crate::clients::net::Trust,
}

/// By hand, so that a `{:?}` in a log or a panic never shows the token.
impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

/// Bounds how long a fetch or push waits to connect and for each read of an answer, so that a
/// stalled git host fails as a timeout instead of hanging the job.
pub fn set_network_timeouts(connect: Duration, io: Duration) {
    super::http::set_timeouts(connect, io);
}

/// Works out the error type of a failed fetch or push from libgit2's error.
fn transport_kind(e: &git2::Error) -> ErrorKind {
    // libgit2 reports HTTP failures as "unexpected http status code: 403"; match the status, not
    // any digits (a port such as 127.0.0.1:40312 must not read as 403).
    let status = e
        .message()
        .split_once("status code: ")
        .and_then(|(_, rest)| rest.get(..3))
        .and_then(|s| s.parse::<u16>().ok());
    match (e.code(), status) {
        (git2::ErrorCode::NotFastForward, _) => ErrorKind::Conflict,
        _ if e.message().contains("timed out") => ErrorKind::Timeout,
        (git2::ErrorCode::Auth, _) | (_, Some(401)) => ErrorKind::Authentication,
        (_, Some(403)) => ErrorKind::Authorization,
        // GitHub answers 404 for a repo the token cannot see as well as for a missing one.
        (_, Some(404)) => ErrorKind::Config,
        (_, Some(429)) => ErrorKind::RateLimit,
        _ => ErrorKind::Connectivity,
    }
}

/// State shared between the callbacks of one fetch or push.
#[derive(Default)]
pub(super) struct CallState {
    pub(super) rejected: RefCell<Vec<(String, String)>>,
}

impl CallState {
    /// Callbacks that collect the refs the server refused. No credentials callback: the HTTP
    /// transport sends the token itself (`http.rs`), and libgit2 would ask again after every 401.
    pub(super) fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cb = RemoteCallbacks::new();
        cb.push_update_reference(move |refname, status| {
            if let Some(reason) = status {
                self.rejected
                    .borrow_mut()
                    .push((refname.to_string(), reason.to_string()));
            }
            Ok(())
        });
        cb
    }

    /// Turns libgit2's error into ours.
    pub(super) fn error(&self, action: &'static str, url: &str, source: git2::Error) -> GitError {
        match transport_kind(&source) {
            ErrorKind::Authentication => GitError::Authentication {
                action,
                url: url.to_string(),
            },
            kind => GitError::Transport {
                action,
                url: url.to_string(),
                kind,
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retried_within_the_budget_and_refusals_are_not() {
        let transient = || GitError::Transport {
            action: "fetch from",
            url: "u".into(),
            kind: ErrorKind::Connectivity,
            source: git2::Error::from_str("unexpected http status code: 502"),
        };
        let mut tries = 0;
        let r = with_retries(Duration::from_secs(30), || {
            tries += 1;
            if tries < 3 {
                Err(transient())
            } else {
                Ok(tries)
            }
        });
        assert_eq!(r.unwrap(), 3, "two blips, then success");
        let mut tries = 0;
        let r: Result<(), _> = with_retries(Duration::from_secs(30), || {
            tries += 1;
            Err(GitError::Authentication {
                action: "fetch from",
                url: "u".into(),
            })
        });
        assert_eq!(
            (r.unwrap_err().kind(), tries),
            (ErrorKind::Authentication, 1)
        );
        let mut tries = 0;
        let r: Result<(), _> = with_retries(Duration::ZERO, || {
            tries += 1;
            Err(transient())
        });
        assert_eq!(
            (r.unwrap_err().kind(), tries),
            (ErrorKind::Connectivity, 1),
            "no budget, no retry"
        );
    }

    #[test]
    fn remote_debug_hides_the_token() {
        let r = Remote {
            url: "https://github.com/acme/deploy.git".into(),
            token: "ghs_secret".into(),
            retry_budget: RETRY_BUDGET,
            trust: Default::default(),
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("ghs_secret"), "{shown}");
        assert!(shown.contains("github.com/acme/deploy.git"));
    }

    #[test]
    fn transport_errors_are_classified() {
        let http = |msg: &str| {
            git2::Error::new(git2::ErrorCode::GenericError, git2::ErrorClass::Http, msg)
        };
        let kind = |e: git2::Error| transport_kind(&e);
        for (status, want) in [
            (403, ErrorKind::Authorization),
            (401, ErrorKind::Authentication),
            (404, ErrorKind::Config),
            (502, ErrorKind::Connectivity),
        ] {
            let message = format!("unexpected http status code: {status}");
            assert_eq!(kind(http(&message)), want, "{message}");
        }
        assert_eq!(
            kind(git2::Error::new(
                git2::ErrorCode::GenericError,
                git2::ErrorClass::Net,
                "failed to connect to 127.0.0.1:40312: Connection refused"
            )),
            ErrorKind::Connectivity
        );
        assert_eq!(
            kind(git2::Error::new(
                git2::ErrorCode::NotFastForward,
                git2::ErrorClass::Reference,
                "cannot push non-fastforwardable reference"
            )),
            ErrorKind::Conflict
        );
    }
}
