//! git's smart HTTP protocol (gitprotocol-http(5)) over the one HTTP stack of
//! [`crate::clients::net`]: libgit2 speaks the protocol, this moves its bytes, so git shares the
//! proxies, the CA settings and the rustls of every other call and the build needs no OpenSSL.
//! The shape follows git2-curl (rust-lang/git2-rs `git2-curl/src/lib.rs`), the subtransport
//! cargo used for years: one request per action, the body buffered until libgit2 reads.
//!
//! The token goes in an `Authorization` header built for the one fetch or push running on this
//! thread ([`with_session`]) and only to the remote's own origin: it is never handed to libgit2.

use super::remote::Remote;
use crate::base::chain;
use crate::clients::net::{self, FullBody, HttpClient};
use base64::Engine;
use bytes::Bytes;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use git2::{ErrorClass, ErrorCode};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::proxy::matcher::Matcher;
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// How long one read of an answer may wait, in ms (`request-timeout`; see `set_timeouts`).
static IO_TIMEOUT_MS: AtomicU64 = AtomicU64::new(60_000);
/// How long a connect may take, in ms.
static CONNECT_TIMEOUT_MS: AtomicU64 = AtomicU64::new(10_000);

/// Redirects followed for the first request of a fetch or push, as git does (http.followRedirects
/// "initial").
const MAX_REDIRECTS: usize = 5;

/// Sets how long a connect and each read of an answer may wait.
pub(super) fn set_timeouts(connect: Duration, io: Duration) {
    CONNECT_TIMEOUT_MS.store(connect.as_millis() as u64, Ordering::Relaxed);
    IO_TIMEOUT_MS.store(io.as_millis() as u64, Ordering::Relaxed);
}

fn io_timeout() -> Duration {
    Duration::from_millis(IO_TIMEOUT_MS.load(Ordering::Relaxed))
}

/// What the fetch or push running on this thread sends, and what it runs on: a runtime and a
/// client of its own, so that when the transfer ends (or times out) every connection it opened
/// closes with them instead of idling in a pool.
struct Session {
    auth: HeaderValue,
    client: HttpClient<FullBody>,
    runtime: tokio::runtime::Runtime,
}

thread_local! {
    static SESSION: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
}

/// Runs `f` (one libgit2 fetch or push) with `remote`'s credentials for the HTTP transport.
pub(super) fn with_session<T>(remote: &Remote, f: impl FnOnce() -> T) -> T {
    register();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("x-access-token:{}", remote.token));
    let mut auth = HeaderValue::from_str(&format!("Basic {basic}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    auth.set_sensitive(true);
    let connect = Duration::from_millis(CONNECT_TIMEOUT_MS.load(Ordering::Relaxed));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        // Only when the process is out of file descriptors; libgit2 then reports no transport.
        Err(_) => return f(),
    };
    let session = Arc::new(Session {
        auth,
        client: net::client_with(remote.trust.clone(), Matcher::from_env(), connect),
        runtime,
    });
    let previous = SESSION.with(|s| s.replace(Some(session)));
    let out = f();
    SESSION.with(|s| *s.borrow_mut() = previous);
    out
}

/// Makes libgit2 use this transport for http:// and https:// URLs (once per process).
fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["http", "https"] {
            // SAFETY: `git_transport_register` changes a global list without a lock. Every
            // fetch and push goes through `with_session`, which waits on this `Once` before
            // libgit2 reads the list, and nothing else here looks transports up.
            let registered = unsafe {
                git2::transport::register(scheme, |remote| {
                    let session = SESSION.with(|s| s.borrow().clone()).ok_or_else(|| {
                        git2::Error::from_str("git over HTTP outside a fetch or push of ours")
                    })?;
                    Transport::smart(
                        remote,
                        true,
                        Http {
                            session,
                            base: Mutex::new(None),
                        },
                    )
                })
            };
            registered.expect("registering the git HTTP transport");
        }
    });
}

/// The subtransport of one fetch or push.
struct Http {
    session: Arc<Session>,
    /// The repository URL after the first request's redirects; later requests go there.
    base: Mutex<Option<String>>,
}

impl SmartSubtransport for Http {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let service = match action {
            Service::UploadPackLs | Service::UploadPack => "git-upload-pack",
            Service::ReceivePackLs | Service::ReceivePack => "git-receive-pack",
        };
        let base = self
            .base
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| url.trim_end_matches('/').to_string());
        let exchange = Exchange {
            session: self.session.clone(),
            origin: origin(&base),
            service,
        };
        match action {
            Service::UploadPackLs | Service::ReceivePackLs => {
                let (resp, base) = exchange.advertise(&base)?;
                *self.base.lock().unwrap_or_else(|e| e.into_inner()) = Some(base);
                Ok(Box::new(Stream::answered(self.session.clone(), resp)))
            }
            Service::UploadPack | Service::ReceivePack => Ok(Box::new(Stream {
                session: self.session.clone(),
                exchange: Some((exchange, format!("{base}/{service}"))),
                request: Vec::new(),
                body: None,
                chunk: Bytes::new(),
            })),
        }
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// scheme://host:port of a URL: where the token may go.
fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin())
}

/// What one request needs.
struct Exchange {
    session: Arc<Session>,
    origin: Option<url::Origin>,
    service: &'static str,
}

/// A git2 error of `code`, in the words the remote's classification reads (`status code: N`).
fn error(code: ErrorCode, msg: impl Into<String>) -> git2::Error {
    git2::Error::new(code, ErrorClass::Http, msg.into())
}

impl Exchange {
    /// Sends one request and waits for the answer's head under the io timeout.
    fn send(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
    ) -> Result<Response<Incoming>, git2::Error> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(
                header::USER_AGENT,
                concat!("git/2.0 (gitops-promote ", env!("CARGO_PKG_VERSION"), ")"),
            )
            .header("pragma", "no-cache");
        if method == Method::POST {
            req = req
                .header(
                    header::CONTENT_TYPE,
                    format!("application/x-{}-request", self.service),
                )
                .header(
                    header::ACCEPT,
                    format!("application/x-{}-result", self.service),
                );
        }
        // The token only to the remote's own origin, never along a redirect elsewhere.
        if self.origin.is_some() && origin(url) == self.origin {
            req = req.header(header::AUTHORIZATION, self.session.auth.clone());
        }
        let req = req.body(FullBody::new(Bytes::from(body))).map_err(|e| {
            error(
                ErrorCode::GenericError,
                format!("building the request: {e}"),
            )
        })?;
        let timeout = io_timeout();
        let answer = self.session.runtime.block_on(async {
            tokio::time::timeout(timeout, self.session.client.request(req)).await
        });
        match answer {
            Err(_) => Err(git2::Error::new(
                ErrorCode::GenericError,
                ErrorClass::Net,
                format!("timed out after {timeout:?} waiting for the answer"),
            )),
            Ok(Err(e)) => Err(git2::Error::new(
                ErrorCode::GenericError,
                ErrorClass::Net,
                chain(&e),
            )),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// The ref advertisement (`GET info/refs?service=`), following the first redirects as git
    /// does; returns it and the repository URL it came from.
    fn advertise(&self, base: &str) -> Result<(Response<Incoming>, String), git2::Error> {
        let suffix = format!("/info/refs?service={}", self.service);
        let mut url = format!("{base}{suffix}");
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send(Method::GET, &url, Vec::new())?;
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url::Url::parse(&url).ok()?.join(l).ok())
                    .ok_or_else(|| {
                        error(
                            ErrorCode::GenericError,
                            format!(
                                "unexpected http status code: {} without a Location",
                                resp.status().as_u16()
                            ),
                        )
                    })?;
                if Some(next.origin()) != self.origin {
                    return Err(error(
                        ErrorCode::GenericError,
                        format!(
                            "the git host redirects to another host ({}); set the repository's new location",
                            next.host_str().unwrap_or_default()
                        ),
                    ));
                }
                url = next.to_string();
                continue;
            }
            check(
                &resp,
                &format!("application/x-{}-advertisement", self.service),
            )?;
            let base = url.strip_suffix(&suffix).unwrap_or(base).to_string();
            return Ok((resp, base));
        }
        Err(error(
            ErrorCode::GenericError,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }
}

/// A failed answer as an error libgit2 passes on, with the status the remote classifies.
fn check(resp: &Response<Incoming>, content_type: &str) -> Result<(), git2::Error> {
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED {
        return Err(error(
            ErrorCode::Auth,
            "unexpected http status code: 401 (the token was refused)",
        ));
    }
    if !status.is_success() {
        return Err(error(
            ErrorCode::GenericError,
            format!("unexpected http status code: {}", status.as_u16()),
        ));
    }
    let got = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if got != content_type {
        return Err(error(
            ErrorCode::GenericError,
            format!(
                "not a git smart HTTP server: the answer is '{got}', expected '{content_type}'"
            ),
        ));
    }
    Ok(())
}

/// One action's stream: the request body libgit2 writes, then the answer it reads.
struct Stream {
    session: Arc<Session>,
    /// Until the request is sent: how to send it, and where.
    exchange: Option<(Exchange, String)>,
    request: Vec<u8>,
    body: Option<Incoming>,
    chunk: Bytes,
}

impl Stream {
    fn answered(session: Arc<Session>, resp: Response<Incoming>) -> Stream {
        Stream {
            session,
            exchange: None,
            request: Vec::new(),
            body: Some(resp.into_body()),
            chunk: Bytes::new(),
        }
    }
}

fn io_error(e: git2::Error) -> io::Error {
    io::Error::other(e.message().to_string())
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((exchange, url)) = self.exchange.take() {
            let resp = exchange
                .send(Method::POST, &url, std::mem::take(&mut self.request))
                .map_err(io_error)?;
            check(&resp, &format!("application/x-{}-result", exchange.service))
                .map_err(io_error)?;
            self.body = Some(resp.into_body());
        }
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                buf[..n].copy_from_slice(&self.chunk.split_to(n));
                return Ok(n);
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(0);
            };
            let timeout = io_timeout();
            let frame = self
                .session
                .runtime
                .block_on(async { tokio::time::timeout(timeout, body.frame()).await });
            match frame {
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("timed out after {timeout:?} reading the answer"),
                    ))
                }
                Ok(None) => self.body = None,
                Ok(Some(Err(e))) => return Err(io::Error::other(chain(&e))),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.chunk = data;
                    }
                }
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.exchange.is_none() {
            return Err(io::Error::other("write after the request was sent"));
        }
        self.request.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
