//! Which certificates a connection trusts, and the rustls configuration built from them the first
//! time a TLS handshake needs it.

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::sync::{Arc, Mutex};

/// The CA bundles tried, in order, when `SSL_CERT_FILE` is not set: the one file each common
/// distribution keeps (the list openssl-probe and Go's crypto/x509 root_linux.go read), so that
/// a run reads one file, never a directory of certificates.
const BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Which server certificates a client accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// Trusted besides the system's roots (`ca-cert`), or instead of them with `only`.
    pub extra: Vec<CertificateDer<'static>>,
    /// Trust `extra` alone (`argocd-ca-cert` names the one CA of the Argo CD server).
    pub only: bool,
    /// Accept any certificate (`argocd-insecure`).
    pub insecure: bool,
}

/// The configuration of a [`Trust`], built on the first handshake that needs it and then shared
/// by every client of the process (git opens a client per transfer).
pub(super) struct LazyTls {
    trust: Trust,
}

impl LazyTls {
    pub(super) fn new(trust: Trust) -> LazyTls {
        LazyTls { trust }
    }

    /// The rustls configuration, or why the roots could not be read.
    pub(super) fn config(&self) -> Result<Arc<ClientConfig>, String> {
        static BUILT: Mutex<Vec<(Trust, Arc<ClientConfig>)>> = Mutex::new(Vec::new());
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = built.iter().find(|(t, _)| *t == self.trust) {
            return Ok(c.clone());
        }
        let config = Arc::new(build(&self.trust)?);
        built.push((self.trust.clone(), config.clone()));
        Ok(config)
    }
}

fn build(trust: &Trust) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = if trust.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        if !trust.only {
            let (pem, from) = system_bundle()?;
            let certs = pem_certs(&from, &pem)?;
            roots.add_parsable_certificates(certs);
        }
        for cert in &trust.extra {
            roots
                .add(cert.clone())
                .map_err(|e| format!("a trusted CA certificate: {e}"))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    // Every client speaks HTTP/1.1 only (one small hyper build).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The system's CA bundle: `SSL_CERT_FILE` (the action's image sets it), else the first of
/// [`BUNDLES`] that exists.
fn system_bundle() -> Result<(Vec<u8>, String), String> {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        let shown = format!("SSL_CERT_FILE {}", path.to_string_lossy());
        return std::fs::read(&path)
            .map(|pem| (pem, shown.clone()))
            .map_err(|e| format!("{shown}: {e}"));
    }
    BUNDLES
        .iter()
        .find_map(|p| std::fs::read(p).ok().map(|pem| (pem, p.to_string())))
        .ok_or_else(|| {
            format!(
                "no CA bundle found (SSL_CERT_FILE is not set and none of {} exists): set SSL_CERT_FILE, or ca-cert",
                BUNDLES.join(", ")
            )
        })
}

/// The certificates of a PEM text; `from` names it in the error (an input, a file).
///
/// # Errors
/// A PEM block that does not parse, or no certificate at all.
pub fn pem_certs(from: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{from}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{from} holds no PEM certificate: expected the certificate itself (-----BEGIN CERTIFICATE-----...) or the path of a PEM file"
        ));
    }
    Ok(certs)
}

/// The certificates of a CA input (`name`): its PEM text, or the path of a PEM file, as users
/// write both (a secret's content, or a file on the runner).
///
/// # Errors
/// A file that cannot be read, or no certificate in it, named by the input and the file.
pub fn input_certs(name: &str, value: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if value.contains("-----BEGIN") {
        return pem_certs(&format!("{name} (PEM text)"), value.as_bytes());
    }
    let path = value.trim();
    let pem = std::fs::read(path).map_err(|e| format!("{name} {path}: {e}"))?;
    pem_certs(&format!("{name} {path}"), &pem)
}

/// Whether `e` is rustls refusing the server's certificate. `io::Error` hides its inner error
/// from `source()` (and the TLS stream nests it), so the walk peels those too.
pub fn refused_by_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(mut err) = next {
        next = err.source();
        loop {
            if let Some(
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented,
            ) = err.downcast_ref::<rustls::Error>()
            {
                return true;
            }
            match err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => err = inner,
                None => break,
            }
        }
    }
    false
}

/// Accepts any certificate: `argocd-insecure`, as `argocd --insecure` does.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_without_a_certificate_is_refused_naming_its_source() {
        let err = pem_certs("ca-cert", b"not a certificate").unwrap_err();
        assert!(err.starts_with("ca-cert holds no PEM certificate"), "{err}");
        let err = pem_certs(
            "ca-cert",
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(err.starts_with("ca-cert"), "{err}");
    }
}
