//! TLS for Komunikator, shared by the server and the client.
//!
//! * [`fingerprint`] names a certificate the way administrators and users
//!   compare it: SHA-256 over its DER bytes, as colon-separated hex.
//! * [`server`] loads a certificate and key from PEM files, or creates a
//!   self-signed one on first start and keeps it.
//! * [`pin`] is the client's trust-on-first-use store, like SSH's known_hosts,
//!   and a rustls verifier that accepts exactly the pinned certificate.
//! * [`split`] shares one rustls connection between a reading thread and a
//!   writing thread, which is how both programs use their sockets. Neither
//!   thread holds the connection's lock while it waits on the socket.
//!
//! TLS 1.3 only, with the `ring` provider. The protocol inside TLS is
//! exactly the plain-text one (`docs/PROTOCOL.md`).

pub mod pin;
pub mod server;
pub mod split;

use std::sync::Arc;

pub use pin::{PinStore, Pinned, TofuVerifier};
pub use split::{TlsReader, TlsWriter, split};

/// The first byte of a TLS connection (a handshake record). A plain-text
/// client never sends it: no command starts with 0x16.
pub const HANDSHAKE_BYTE: u8 = 0x16;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A PEM file did not hold what it should.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What was expected.
        what: &'static str,
    },
    /// rustls refused the certificate, key or configuration.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The self-signed certificate could not be made.
    #[error("cannot create a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A fingerprint given by the user is not 32 bytes of hex.
    #[error("not a SHA-256 fingerprint (64 hex digits, colons allowed): {0}")]
    BadFingerprint(String),
}

/// The SHA-256 fingerprint of a DER certificate: `AB:CD:...` (32 bytes,
/// upper-case hex, colon-separated), as `openssl x509 -fingerprint -sha256` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Normalises a fingerprint typed by a person: hex digits with or without
/// colons, any case, an optional `SHA256:` prefix.
///
/// # Errors
/// [`TlsError::BadFingerprint`] when it is not 32 bytes of hex.
pub fn parse_fingerprint(s: &str) -> Result<String, TlsError> {
    let body = s.trim();
    let body = body.strip_prefix("SHA256:").or_else(|| body.strip_prefix("sha256:")).unwrap_or(body);
    let hex: String = body.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(TlsError::BadFingerprint(s.to_owned()));
    }
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32).map(|i| &upper[2 * i..2 * i + 2]).collect();
    Ok(pairs.join(":"))
}

/// A temporary name next to `path`, unique to this process and call, for
/// writing a file and renaming it into place.
pub(crate) fn unique_tmp(path: &std::path::Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// The crypto provider every config here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised() {
        let fp = fingerprint(b"hello");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert_eq!(parse_fingerprint(&fp).unwrap(), fp);
        assert_eq!(parse_fingerprint(&fp.replace(':', "").to_lowercase()).unwrap(), fp);
        assert_eq!(parse_fingerprint(&format!("SHA256:{fp}")).unwrap(), fp);
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }
}
