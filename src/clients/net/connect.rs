//! Opening a connection: directly, through a proxy's CONNECT tunnel (https) or to a forwarding
//! proxy (http), then TLS when the URL is https.

use super::tls::{LazyTls, Trust};
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connector of every client: proxies, connect timeout, TLS with lazily read roots.
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    proxies: Arc<Matcher>,
    tls: Arc<LazyTls>,
    timeout: Duration,
}

impl Connector {
    /// A connector trusting `trust`, going through `proxies`, giving up a connect after `timeout`.
    pub(super) fn new(trust: Trust, proxies: Arc<Matcher>, timeout: Duration) -> Connector {
        let mut tcp = HttpConnector::new();
        // The scheme is ours to handle (TLS below); HttpConnector would refuse https URLs.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout));
        Connector {
            tcp,
            proxies,
            tls: Arc::new(LazyTls::new(trust)),
            timeout,
        }
    }

    async fn connect(mut self, dst: Uri) -> Result<Conn, BoxError> {
        use tower_service::Service;
        let https = dst.scheme_str() == Some("https");
        let proxy = self.proxies.intercept(&dst);
        if let Some(p) = &proxy {
            // A socks5:// or https:// proxy would be spoken to in plain HTTP: refuse it by name.
            if p.uri().scheme_str() != Some("http") {
                return Err(format!(
                    "the proxy {} for {} is not supported: only http:// proxies are",
                    shown(p.uri()),
                    dst.scheme_str().unwrap_or("http")
                )
                .into());
            }
        }
        let tcp = match proxy {
            None => self.tcp.call(dst.clone()).await?,
            Some(proxy) if https => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.tcp.clone());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                tunnel
                    .call(dst.clone())
                    .await
                    .map_err(|e| format!("through the proxy {}: {e}", shown(proxy.uri())))?
            }
            // Plain http goes to the proxy as an absolute-form request (RFC 9112 §3.2.2).
            Some(proxy) => {
                let io = self.tcp.call(proxy.uri().clone()).await?;
                return Ok(Conn::Plain {
                    io,
                    forwarded: true,
                });
            }
        };
        if !https {
            return Ok(Conn::Plain {
                io: tcp,
                forwarded: false,
            });
        }
        let config = self.tls.config()?;
        let host = dst.host().unwrap_or_default();
        let name = rustls::pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .map_err(|e| format!("{host}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp.into_inner())
            .await?;
        Ok(Conn::Tls(Box::new(TokioIo::new(tls))))
    }
}

/// A proxy's URL as it may be shown: without its credentials.
fn shown(uri: &Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority()
            .map(|a| a
                .as_str()
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_string())
            .unwrap_or_default()
    )
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let what = format!(
                "connecting to {}",
                dst.authority().map(|a| a.as_str()).unwrap_or("")
            );
            tokio::time::timeout(timeout, this.connect(dst))
                .await
                .map_err(|_| -> BoxError {
                    Box::new(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{what} timed out after {timeout:?}"),
                    ))
                })?
        })
    }
}

/// An open connection, plain or TLS.
pub enum Conn {
    /// Plain TCP; `forwarded` when it goes to a forwarding proxy, so requests use absolute URIs.
    Plain {
        /// The socket.
        io: TokioIo<TcpStream>,
        /// Whether it is a connection to an http proxy rather than the server.
        forwarded: bool,
    },
    /// TLS over TCP (or over a proxy's tunnel).
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        match self {
            Conn::Plain { io, forwarded } => io.connected().proxy(*forwarded),
            Conn::Tls(tls) => tls.inner().get_ref().0.connected(),
        }
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain { io, .. } => Pin::new(io).poll_read(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain { io, .. } => Pin::new(io).poll_write(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain { io, .. } => Pin::new(io).poll_flush(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain { io, .. } => Pin::new(io).poll_shutdown(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_shown_without_its_credentials() {
        let uri: Uri = "http://runner:s3cret@proxy.corp:3128".parse().unwrap();
        assert_eq!(shown(&uri), "http://proxy.corp:3128");
    }
}
