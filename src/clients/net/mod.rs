//! One HTTP stack for every outside system (GitHub, git, Argo CD, Prometheus): hyper over rustls,
//! proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, and certificate roots read on the first
//! TLS handshake instead of at start (a run against plain-HTTP hosts reads none).

mod connect;
mod tls;

pub use connect::{Conn, Connector};
pub use tls::{input_certs, pem_certs, refused_by_tls, Trust};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a TCP connect (and a proxy's CONNECT, and the TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 client for one kind of request body, sharing its connection pool between clones.
/// It implements `tower_service::Service`, so octocrab runs over it too.
pub struct HttpClient<B> {
    inner: legacy::Client<Connector, B>,
    proxies: Arc<Matcher>,
}

/// By hand: the derive would ask `B: Clone`.
impl<B> Clone for HttpClient<B> {
    fn clone(&self) -> Self {
        HttpClient {
            inner: self.inner.clone(),
            proxies: self.proxies.clone(),
        }
    }
}

/// A client trusting `trust`, with the proxies of the environment and [`CONNECT_TIMEOUT`].
pub fn client<B>(trust: Trust) -> HttpClient<B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    client_with(trust, Matcher::from_env(), CONNECT_TIMEOUT)
}

/// [`client`] with the proxies and the connect timeout given (tests).
pub fn client_with<B>(trust: Trust, proxies: Matcher, connect_timeout: Duration) -> HttpClient<B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let proxies = Arc::new(proxies);
    let connector = Connector::new(trust, proxies.clone(), connect_timeout);
    HttpClient {
        inner: legacy::Client::builder(TokioExecutor::new()).build(connector),
        proxies,
    }
}

impl<B> HttpClient<B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Sends `req`; a plain-HTTP request through an authenticating proxy carries its credentials.
    pub fn request(&self, mut req: Request<B>) -> legacy::ResponseFuture {
        // A tunnel (https) sends them in its CONNECT; a forwarded http request in its own header.
        if req.uri().scheme_str() == Some("http") {
            if let Some(auth) = self
                .proxies
                .intercept(req.uri())
                .and_then(|p| p.basic_auth().cloned())
            {
                req.headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, sensitive(auth));
            }
        }
        self.inner.request(req)
    }
}

fn sensitive(mut v: HeaderValue) -> HeaderValue {
    v.set_sensitive(true);
    v
}

impl<B> tower_service::Service<Request<B>> for HttpClient<B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Incoming>;
    type Error = legacy::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, legacy::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Box::pin(self.request(req))
    }
}

/// The body most of our requests send: all of it at once.
pub type FullBody = http_body_util::Full<Bytes>;
