//! Trust on first use: the client's store of pinned server certificates,
//! and the rustls verifier that enforces a pin.
//!
//! Self-hosted servers have no certificate authority. Like SSH, the client
//! trusts the certificate it sees the first time it connects to a server
//! address, remembers its fingerprint, and from then on accepts only that
//! certificate. A changed certificate is refused until the user deliberately
//! trusts the new one.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::{TlsError, fingerprint, provider};

/// What the store knows about one server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The pinned certificate fingerprint.
    pub fingerprint: String,
    /// The server password, when the user saved one.
    pub password: Option<String>,
}

/// The pinned servers, one line each in a file like SSH's known_hosts:
/// `HOST:PORT FINGERPRINT [PASSWORD-AS-HEX]`. The file is owner-only (0600)
/// because it may hold passwords.
#[derive(Debug, Clone)]
pub struct PinStore {
    path: PathBuf,
}

impl PinStore {
    /// The store in `path`; the file need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> PinStore {
        PinStore { path: path.into() }
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is pinned for `server` (`HOST:PORT`).
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn get(&self, server: &str) -> Result<Option<Pinned>, TlsError> {
        Ok(self.entries()?.into_iter().find(|(s, _)| s == server).map(|(_, p)| p))
    }

    /// Pins `fingerprint` (and an optional password) for `server`, replacing
    /// any earlier entry.
    ///
    /// # Errors
    /// When the file cannot be read or written.
    pub fn set(&self, server: &str, pinned: &Pinned) -> Result<(), TlsError> {
        let mut entries: Vec<(String, Pinned)> =
            self.entries()?.into_iter().filter(|(s, _)| s != server).collect();
        entries.push((server.to_owned(), pinned.clone()));
        let mut text =
            String::from("# Komunikator: pinned server certificates (HOST:PORT SHA-256 [password hex])\n");
        for (s, p) in &entries {
            let _ = write!(text, "{s} {}", p.fingerprint);
            if let Some(pw) = &p.password {
                let _ = write!(text, " {}", hex(pw.as_bytes()));
            }
            text.push('\n');
        }
        self.write(&text)
    }

    fn entries(&self) -> Result<Vec<(String, Pinned)>, TlsError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(TlsError::Io { path: self.path.display().to_string(), source }),
        };
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut f = l.split(' ');
                let server = f.next()?.to_owned();
                let fingerprint = crate::parse_fingerprint(f.next()?).ok()?;
                let password = f.next().and_then(unhex);
                Some((server, Pinned { fingerprint, password }))
            })
            .collect())
    }

    fn write(&self, text: &str) -> Result<(), TlsError> {
        let io = |source| TlsError::Io { path: self.path.display().to_string(), source };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = crate::unique_tmp(&self.path);
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len() / 2).map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Accepts the server certificate whose fingerprint is `expected`, or any
/// certificate when nothing is expected yet (first use). Either way it
/// records what it saw, so the caller can pin it or show both fingerprints.
/// Signatures are verified for real: the peer must hold the certificate's key.
#[derive(Debug)]
pub struct TofuVerifier {
    expected: Option<String>,
    seen: Mutex<Option<String>>,
    provider: Arc<CryptoProvider>,
}

impl TofuVerifier {
    /// A verifier expecting `expected` (a normalised fingerprint), or trusting on first use.
    pub fn new(expected: Option<String>) -> TofuVerifier {
        TofuVerifier { expected, seen: Mutex::new(None), provider: provider() }
    }

    /// The fingerprint the server presented, once the handshake got that far.
    pub fn seen(&self) -> Option<String> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether the server presented a certificate other than the expected one.
    pub fn mismatch(&self) -> Option<(String, String)> {
        match (&self.expected, self.seen()) {
            (Some(expected), Some(seen)) if *expected != seen => Some((expected.clone(), seen)),
            _ => None,
        }
    }

    /// A TLS 1.3 client configuration that uses this verifier.
    ///
    /// # Errors
    /// When rustls refuses the configuration.
    pub fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, TlsError> {
        Ok(rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(self) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth())
    }
}

impl ServerCertVerifier for TofuVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity.as_ref());
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(fp.clone());
        match &self.expected {
            Some(expected) if *expected != fp => {
                Err(rustls::Error::General("the server's certificate is not the pinned one".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_round_trips_and_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::new(dir.path().join("sub/known_servers"));
        assert_eq!(store.get("a:1").unwrap(), None);
        let fp = fingerprint(b"x");
        store.set("a:1", &Pinned { fingerprint: fp.clone(), password: None }).unwrap();
        store.set("b:2", &Pinned { fingerprint: fp.clone(), password: Some("tajne hasło".into()) }).unwrap();
        assert_eq!(store.get("a:1").unwrap().unwrap().fingerprint, fp);
        assert_eq!(store.get("b:2").unwrap().unwrap().password.as_deref(), Some("tajne hasło"));
        let other = fingerprint(b"y");
        store.set("a:1", &Pinned { fingerprint: other.clone(), password: None }).unwrap();
        assert_eq!(store.get("a:1").unwrap().unwrap().fingerprint, other);
        let mode = fs::metadata(store.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
