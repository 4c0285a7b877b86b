//! A forward proxy on a loopback port, as the ones enterprise runners sit behind (squid and the
//! like): `CONNECT host:port` opens a tunnel (RFC 9110 §9.3.6), an absolute-form request
//! (`GET http://host/path`, RFC 9112 §3.2.2) is forwarded, and with credentials set anything
//! without the right `Proxy-Authorization: Basic` gets 407 with `Proxy-Authenticate`
//! (RFC 9110 §11.7.1). Each connection carries one request and is then closed, so every request
//! is seen here. It records what it was asked for; a test reads [`Proxy::seen`].

use base64::Engine;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request the proxy was asked to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `CONNECT`, or the forwarded request's method.
    pub method: String,
    /// `host:port` of a tunnel, or the absolute URL of a forwarded request.
    pub target: String,
    /// Whether it carried the proxy's credentials (always true when none are required).
    pub authorized: bool,
}

/// A running proxy; it stops accepting when dropped (the listener thread ends with the process).
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, without credentials.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// Starts a proxy; with `credentials` (`user`, `password`) it requires Basic proxy auth.
    pub fn start(credentials: Option<(&str, &str)>) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let expected = credentials.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { break };
                let (log, expected) = (log.clone(), expected.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &log, expected.as_deref());
                });
            }
        });
        Ok(Proxy { url, seen })
    }

    /// Every request carried so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads up to the end of the request head; returns the head and whatever came after it.
fn read_head(s: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn serve(
    mut client: TcpStream,
    log: &Mutex<Vec<Seen>>,
    expected: Option<&str>,
) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let auth = headers.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_string())
    });
    let authorized = expected.is_none_or(|e| auth.as_deref() == Some(e));
    log.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        authorized,
    });
    if !authorized {
        return client.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sandbox\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    if method == "CONNECT" {
        let Ok(mut server) = TcpStream::connect(&target) else {
            return client.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        };
        client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
        server.write_all(&rest)?;
        return pipe(client, server);
    }
    // Absolute form: connect to its authority and send the origin form, without our headers.
    let Some((authority, path)) = target.strip_prefix("http://").map(|t| {
        t.split_once('/')
            .map_or((t, "/".to_string()), |(a, p)| (a, format!("/{p}")))
    }) else {
        return client.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let Ok(mut server) = TcpStream::connect(authority) else {
        return client.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for h in headers {
        let name = h.split(':').next().unwrap_or_default().trim();
        if ["proxy-authorization", "proxy-connection", "connection"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    server.write_all(out.as_bytes())?;
    server.write_all(&rest)?;
    pipe(client, server)
}

/// Copies both ways until either side closes.
fn pipe(client: TcpStream, server: TcpStream) -> std::io::Result<()> {
    let (mut c2, mut s2) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let (mut client, mut server) = (client, server);
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
    Ok(())
}
