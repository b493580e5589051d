//! How the client secures its connection: TLS with trust on first use, and
//! the optional server password.
//!
//! The settings are process-wide: the command line (or the window's "trust
//! the new certificate" action) sets them once with [`configure`], and every
//! [`Connection::open`](super::Connection::open) follows them. The pins
//! themselves live in a file like SSH's known_hosts
//! (`$XDG_CONFIG_HOME/komunikator/known_servers`): the first connection to a
//! server address pins its certificate; a later, different certificate is
//! refused with [`NetError::CertificateChanged`], which carries both
//! fingerprints so the user can compare them with the administrator's.

use std::io;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use komunikator_tls::split::{self, TlsReader, TlsWriter};
use komunikator_tls::{PinStore, Pinned, TofuVerifier};
use rustls::{ClientConnection, Connection};
use rustls_pki_types::ServerName;

use super::NetError;

/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection security settings.
#[derive(Debug, Clone)]
pub struct Security {
    /// Use TLS (the default). False only with `--plaintext`.
    pub tls: bool,
    /// A fingerprint pinned up front (`--fingerprint`), overriding the store.
    pub expected: Option<String>,
    /// Accept and pin whatever certificate the server presents now
    /// (`--trust-new-certificate`, or the window's action).
    pub trust_new: bool,
    /// The server password (`--password-file`); otherwise the stored one.
    pub password: Option<String>,
    /// Where pins are kept; `None` keeps nothing (first use every time).
    pub store: Option<PinStore>,
}

impl Default for Security {
    fn default() -> Security {
        Security { tls: true, expected: None, trust_new: false, password: None, store: Some(default_store()) }
    }
}

impl Security {
    /// Plain text, as the original protocol and `nc` speak it.
    pub fn plaintext() -> Security {
        Security { tls: false, store: None, ..Security::default() }
    }
}

static CURRENT: Mutex<Option<Security>> = Mutex::new(None);

/// Sets the security of every later connection.
pub fn configure(security: Security) {
    *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(security);
}

/// The settings in force.
pub fn current() -> Security {
    CURRENT.lock().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or_default()
}

/// The pin store in the user's config directory.
pub fn default_store() -> PinStore {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = env("XDG_CONFIG_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    PinStore::new(dir.join("komunikator").join("known_servers"))
}

/// Pins `fingerprint` for `server` from now on: the deliberate "trust the
/// new certificate" action. Keeps a stored password.
///
/// # Errors
/// When the store cannot be written.
pub fn trust(server: &str, fingerprint: &str) -> Result<(), NetError> {
    let store = current().store.ok_or_else(|| NetError::Pins("no pin store is configured".into()))?;
    let password = store.get(server).ok().flatten().and_then(|p| p.password);
    store
        .set(server, &Pinned { fingerprint: fingerprint.to_owned(), password })
        .map_err(|e| NetError::Pins(e.to_string()))
}

/// Saves the password for `server` next to its pin.
///
/// # Errors
/// When the server has no pin yet (connect once first) or the store cannot be written.
pub fn save_password(server: &str, password: Option<String>) -> Result<(), NetError> {
    let store = current().store.ok_or_else(|| NetError::Pins("no pin store is configured".into()))?;
    let pinned = store.get(server).map_err(|e| NetError::Pins(e.to_string()))?;
    let Some(pinned) = pinned else {
        return Err(NetError::Pins(format!("{server} has no pinned certificate yet")));
    };
    store.set(server, &Pinned { password, ..pinned }).map_err(|e| NetError::Pins(e.to_string()))
}

/// The password to send to `server`, if any.
pub fn password_for(security: &Security, server: &str) -> Option<String> {
    security.password.clone().or_else(|| {
        security.store.as_ref().and_then(|s| s.get(server).ok().flatten()).and_then(|p| p.password)
    })
}

/// Completes a TLS handshake on `stream` and splits it for two threads.
/// Pins the certificate on first use.
///
/// # Errors
/// [`NetError::CertificateChanged`] when the certificate is not the pinned
/// one; [`NetError::Tls`] when the handshake fails otherwise.
pub(super) fn handshake(
    stream: &TcpStream,
    server: &str,
    security: &Security,
) -> Result<(TlsReader, TlsWriter, String), NetError> {
    let pinned = match (&security.store, security.trust_new) {
        (Some(store), false) => store.get(server).map_err(|e| NetError::Pins(e.to_string()))?,
        _ => None,
    };
    let expected = security.expected.clone().or_else(|| pinned.as_ref().map(|p| p.fingerprint.clone()));
    let verifier = Arc::new(TofuVerifier::new(expected));
    let config = verifier.client_config().map_err(|e| NetError::Tls(e.to_string()))?;
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h).trim_matches(['[', ']']);
    let name = ServerName::try_from(host.to_owned())
        .or_else(|_| ServerName::try_from("komunikator"))
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut conn = Connection::from(conn);
    let io_err = |e: io::Error| NetError::Tls(e.to_string());
    let mut socket = stream.try_clone().map_err(io_err)?;
    socket.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(io_err)?;
    if let Err(e) = split::handshake(&mut conn, &mut socket) {
        if let Some((pinned, presented)) = verifier.mismatch() {
            return Err(NetError::CertificateChanged { server: server.to_owned(), pinned, presented });
        }
        return Err(NetError::Tls(format!("TLS handshake with {server} failed: {e}")));
    }
    socket.set_read_timeout(None).map_err(io_err)?;
    let seen = verifier.seen().unwrap_or_default();
    if let Some(store) = &security.store
        && pinned.as_ref().is_none_or(|p| p.fingerprint != seen)
    {
        let password = pinned.and_then(|p| p.password);
        store
            .set(server, &Pinned { fingerprint: seen.clone(), password })
            .map_err(|e| NetError::Pins(e.to_string()))?;
    }
    let (r, w) = split::split(conn, socket, stream.try_clone().map_err(io_err)?);
    Ok((r, w, seen))
}
