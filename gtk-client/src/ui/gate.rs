//! What stops the window from retrying by itself: a changed server
//! certificate, or a server that wants a password. Either one stops the
//! engine, cancels the reconnect timer and waits for the user, who trusts the
//! new certificate (`win.trust-certificate`), types the password
//! (`win.submit-password`), changes the server or quits. Both actions set the
//! process-wide [`crate::net::security`] settings and reconnect. Main thread.

use std::rc::Rc;
use std::time::{Duration, Instant};

use adw::prelude::*;
use komunikator_protocol::ErrorCode;

use super::i18n::i18n;
use super::link::stop_engine;
use super::password::Ask;
use super::state::Link;
use super::window::{Window, log};
use crate::call::CallState;
use crate::engine::EngineError;
use crate::net::NetError;
use crate::net::security::{self, Security};

/// How long the window waits after the server said `rate-limited`.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Why the window waits for the user instead of retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The server presented a certificate other than the pinned one.
    Untrusted {
        /// The pinned fingerprint.
        pinned: String,
        /// The fingerprint the server presented.
        presented: String,
    },
    /// The server wants a password.
    Password(Login),
}

/// Why the password is asked for, as the model keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// None was sent, or none is stored.
    Required,
    /// The one sent was wrong.
    Wrong,
    /// Too many wrong ones; no new attempt before this.
    Limited(Instant),
}

impl Login {
    /// For the log: `required`, `wrong` or `rate-limited`.
    pub fn describe(self) -> &'static str {
        match self {
            Login::Required => "required",
            Login::Wrong => "wrong",
            Login::Limited(_) => "rate-limited",
        }
    }

    /// What the page shows, now.
    pub fn ask(self) -> Ask {
        match self {
            Login::Required => Ask::Required,
            Login::Wrong => Ask::Wrong,
            Login::Limited(until) => {
                let left = until.saturating_duration_since(Instant::now());
                Ask::Limited(left.as_secs() + u64::from(left.subsec_nanos() > 0))
            }
        }
    }
}

/// The gate a failed start calls for, if any.
pub fn from_error(error: &EngineError) -> Option<Gate> {
    match error {
        EngineError::Net(NetError::CertificateChanged { pinned, presented, .. }) => {
            Some(Gate::Untrusted { pinned: pinned.clone(), presented: presented.clone() })
        }
        _ => None,
    }
}

/// Adds `win.trust-certificate` and `win.submit-password` to `w`.
pub fn install(w: &Rc<Window>) {
    super::actions::add(w, "trust-certificate", trust_certificate);
    super::actions::add(w, "submit-password", submit_password);
}

impl Window {
    /// Stops the engine and waits for the user behind `gate`.
    pub(super) fn block(self: &Rc<Self>, gate: Gate) {
        let Some(server) = self.launch.borrow().server() else { return };
        let reason = match &gate {
            Gate::Untrusted { pinned, presented } => {
                log(&format!(
                    "the certificate of {server} has changed (pinned {pinned}, presented {presented}); \
                     asking whether to trust it"
                ));
                i18n("The server's identity has changed")
            }
            Gate::Password(login) => {
                log(&format!("{server} wants a password ({}); asking for it", login.describe()));
                i18n("Password required")
            }
        };
        let engine = {
            let mut m = self.model.borrow_mut();
            if let Some(t) = m.retry.take() {
                t.remove();
            }
            m.retry_at = None;
            m.generation += 1;
            m.link =
                Link::Offline { server, reason, detail: String::new(), lost: false, attempt: m.failures };
            m.call = CallState::Idle;
            m.ringer = None;
            m.roster.clear();
            m.gate = Some(gate);
            m.engine.take()
        };
        stop_engine(engine, None);
        self.update_view();
    }

    /// Whether the server error `code` is about logging in.
    pub(super) fn is_login_error(&self, code: ErrorCode) -> bool {
        match code {
            ErrorCode::AuthRequired | ErrorCode::AuthFailed => true,
            // Also said to a client dialling too fast, which has logged in.
            ErrorCode::RateLimited => !self.model.borrow().logged_in,
            _ => false,
        }
    }

    /// The server refused to let us in: ask for the password.
    pub(super) fn login_failed(self: &Rc<Self>, code: ErrorCode) {
        let login = match code {
            ErrorCode::AuthFailed => {
                self.forget_stored_password();
                Login::Wrong
            }
            ErrorCode::RateLimited => Login::Limited(Instant::now() + RATE_LIMIT_WAIT),
            _ => Login::Required,
        };
        self.block(Gate::Password(login));
    }

    /// A stored password the server refused (the one just sent) is of no further use.
    fn forget_stored_password(&self) {
        let Some(server) = self.launch.borrow().server() else { return };
        let current = security::current();
        let sent = security::password_for(&current, &server);
        let stored = security::password_for(&Security { password: None, ..current }, &server);
        if stored.is_some() && stored == sent {
            match security::save_password(&server, None) {
                Ok(()) => log(&format!("forgot the wrong stored password of {server}")),
                Err(e) => log(&format!("cannot forget the stored password of {server}: {e}")),
            }
        }
    }

    /// Shows the gate's page; its name for the stack.
    pub(super) fn show_gate(&self, server: &str, gate: &Gate) -> &'static str {
        match gate {
            Gate::Untrusted { pinned, presented } => {
                self.trust.show(server, pinned, presented);
                "trust"
            }
            Gate::Password(login) => {
                self.password.show(server, login.ask());
                "password"
            }
        }
    }
}

/// "Trust the New Certificate": pins what the server presented, forgets a
/// `--fingerprint` that said otherwise, and reconnects.
fn trust_certificate(w: &Rc<Window>) {
    let Some(Gate::Untrusted { presented, .. }) = w.model.borrow().gate.clone() else { return };
    let Some(server) = w.launch.borrow().server() else { return };
    if let Err(e) = security::trust(&server, &presented) {
        return w.toast(&format!("{} ({e})", i18n("The new certificate could not be saved")));
    }
    security::configure(Security { expected: None, ..security::current() });
    log(&format!("trusted the new certificate of {server}: {presented}"));
    w.connect();
}

/// "Log In": uses the typed password from now on, saves it when asked to,
/// and reconnects.
fn submit_password(w: &Rc<Window>) {
    let Some(Gate::Password(login)) = w.model.borrow().gate.clone() else { return };
    if let Ask::Limited(left @ 1..) = login.ask() {
        return log(&format!("not sending the password: the server is rate-limiting; {left} s left"));
    }
    let Some(server) = w.launch.borrow().server() else { return };
    let password = w.password.entry.text().to_string();
    if password.is_empty() {
        w.password.entry.grab_focus();
        return;
    }
    w.password.entry.set_text("");
    security::configure(Security { password: Some(password.clone()), ..security::current() });
    if w.password.remember.is_active() {
        match security::save_password(&server, Some(password)) {
            Ok(()) => log(&format!("saved the password of {server}")),
            Err(e) => w.toast(&format!("{} ({e})", i18n("The password could not be saved"))),
        }
    }
    log(&format!("sending the password to {server}"));
    w.connect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_counts_down_in_whole_seconds() {
        let ask = Login::Limited(Instant::now() + Duration::from_millis(59_500)).ask();
        assert_eq!(ask, Ask::Limited(60));
        assert_eq!(Login::Limited(Instant::now()).ask(), Ask::Limited(0));
        assert_eq!(Login::Wrong.ask(), Ask::Wrong);
        assert_eq!(Login::Required.ask(), Ask::Required);
    }

    #[test]
    fn only_a_changed_certificate_is_a_gate() {
        let changed = EngineError::Net(NetError::CertificateChanged {
            server: "h:1".into(),
            pinned: "AA".into(),
            presented: "BB".into(),
        });
        assert_eq!(
            from_error(&changed),
            Some(Gate::Untrusted { pinned: "AA".into(), presented: "BB".into() })
        );
        assert_eq!(from_error(&EngineError::Net(NetError::Tls("handshake".into()))), None);
        assert_eq!(from_error(&EngineError::Net(NetError::Closed)), None);
    }
}
