//! The server's certificate: from PEM files, or self-signed on first start.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{TlsError, fingerprint, provider};

/// File names of the self-signed certificate in the state directory.
pub const CERT_FILE: &str = "cert.pem";
/// File name of its key; written owner-only (0600).
pub const KEY_FILE: &str = "key.pem";

/// A ready server identity.
#[derive(Clone)]
pub struct Identity {
    /// The rustls configuration to accept connections with.
    pub config: Arc<ServerConfig>,
    /// The certificate's SHA-256 fingerprint.
    pub fingerprint: String,
    /// Where the certificate came from, for the log.
    pub source: PathBuf,
    /// Whether it was created just now.
    pub created: bool,
}

/// Loads `cert` and `key` (PEM), or, when neither is given, the self-signed
/// certificate in `state_dir`, creating it on first start.
///
/// # Errors
/// When a file cannot be read, written or parsed, or rustls refuses the key.
pub fn load_or_create(
    cert: Option<&Path>,
    key: Option<&Path>,
    state_dir: &Path,
) -> Result<Identity, TlsError> {
    let (cert_path, key_path, created) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_owned(), k.to_owned(), false),
        (None, None) => {
            let (c, k) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
            let created = !c.exists() || !k.exists();
            if created {
                create_self_signed(state_dir, &c, &k)?;
            }
            (c, k, created)
        }
        _ => {
            return Err(TlsError::Pem {
                path: "--tls-cert/--tls-key".into(),
                what: "give both a certificate and a key, or neither",
            });
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let fingerprint = fingerprint(certs[0].as_ref());
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Identity { config: Arc::new(config), fingerprint, source: cert_path, created })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.display().to_string(), source }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = fs::read(path).map_err(io_err(path))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.display().to_string(), what: "no CERTIFICATE block found" });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = fs::read(path).map_err(io_err(path))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| TlsError::Pem { path: path.display().to_string(), what: "no PRIVATE KEY block found" })
}

fn create_self_signed(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let host = hostname();
    let names = vec![host.clone(), "localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    // The key first, owner-only from the moment it exists.
    write_new(key_path, certified.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert_path, certified.cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = crate::unique_tmp(path);
    let _ = fs::remove_file(&tmp);
    let mut f =
        fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn hostname() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or_else(|| "komunikator".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reuses_with_owner_only_key() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = load_or_create(None, None, &state).unwrap();
        assert!(first.created);
        let mode = fs::metadata(state.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(None, None, &state).unwrap();
        assert!(!again.created);
        assert_eq!(first.fingerprint, again.fingerprint);
        let explicit = load_or_create(
            Some(&state.join(CERT_FILE)),
            Some(&state.join(KEY_FILE)),
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert_eq!(explicit.fingerprint, first.fingerprint);
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        fs::write(&junk, "not pem").unwrap();
        let e = load_or_create(Some(&junk), Some(&junk), dir.path()).err().unwrap().to_string();
        assert!(e.contains("junk.pem") && e.contains("CERTIFICATE"), "{e}");
        let e = load_or_create(Some(&junk), None, dir.path()).err().unwrap().to_string();
        assert!(e.contains("both"), "{e}");
        let e = load_or_create(Some(&dir.path().join("missing")), Some(&junk), dir.path()).err().unwrap();
        assert!(e.to_string().contains("missing"));
    }
}
