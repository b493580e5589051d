//! Errors as the window shows them: a translated sentence for people, and
//! the technical detail (the error's own English text, with the OS's error
//! number) kept for a details expander, a tooltip and the log. Pure: no
//! widgets; called on the main thread and on the connect worker (gettext is
//! thread-safe). Unit-tested here.

use std::io::ErrorKind;

use komunikator_protocol::{ErrorCode, NickError, check_nick};

use super::i18n::{i18n, i18n_f};
use crate::config::ConfigError;
use crate::engine::EngineError;
use crate::net::NetError;

/// Something that went wrong, for people and for whoever debugs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What happened and what to do, translated.
    pub sentence: String,
    /// The error as the code reported it (English, technical).
    pub detail: String,
}

impl Problem {
    fn new(sentence: String, detail: impl ToString) -> Problem {
        Problem { sentence, detail: detail.to_string() }
    }
}

/// Why the engine did not start: connecting, TLS or the media setup.
pub fn from_engine(e: &EngineError) -> Problem {
    match e {
        EngineError::Net(n) => from_net(n),
        EngineError::Media(m) => {
            Problem::new(i18n("The camera, the microphone or the video codecs could not be prepared."), m)
        }
    }
}

/// Why the connection could not be made.
pub fn from_net(e: &NetError) -> Problem {
    let sentence = match e {
        NetError::Resolve(_) => i18n("The server's name was not found. Check the address in Preferences."),
        NetError::Connect { source, .. } => connect_sentence(source.kind()),
        NetError::Closed => i18n("The connection to the server was closed."),
        NetError::Thread(_) => i18n("The system is out of resources; the connection could not be started."),
        NetError::Tls(_) => i18n(
            "A secure connection to the server could not be made. It may not use encryption, or use it differently.",
        ),
        NetError::CertificateChanged { .. } => i18n("The server's identity has changed"),
        NetError::Pins(_) => i18n("The list of trusted servers could not be read or saved."),
    };
    Problem::new(sentence, e)
}

/// The words for a failed TCP connect.
fn connect_sentence(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::ConnectionRefused => {
            i18n("The server is not accepting connections. It may not be running, or the port may be wrong.")
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            i18n("The server did not answer in time. Check the address and your network.")
        }
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable | ErrorKind::NetworkDown => {
            i18n("The server cannot be reached from this network.")
        }
        ErrorKind::PermissionDenied => i18n("This system does not allow connecting to the server."),
        _ => i18n("The connection to the server could not be made."),
    }
}

/// An established connection ended; `detail` is the engine's words.
pub fn lost(detail: &str) -> Problem {
    Problem::new(i18n("The connection to the server was lost."), detail)
}

/// Why the server refused our name `nick`.
pub fn name_rejected(nick: &str, code: ErrorCode) -> String {
    match (code, check_nick(nick)) {
        (ErrorCode::NameTaken, _) => {
            i18n_f("Someone is already using the name {}. Choose another in Preferences.", &[nick])
        }
        (_, Err(rule)) => i18n_f("{} Choose another in Preferences.", &[&nick_rule(nick, rule)]),
        (_, Ok(())) => i18n_f(
            "The name {} cannot be used: a name has up to 32 letters, digits, dots, dashes or underscores. \
             Choose another in Preferences.",
            &[nick],
        ),
    }
}

/// Which nick rule (the server's, [`check_nick`]) `nick` breaks, as a
/// sentence for people: checked before the server is asked, so the user
/// learns the rule where the name is typed.
pub fn nick_rule(nick: &str, rule: NickError) -> String {
    match rule {
        NickError::Length => i18n("A name has 1 to 32 characters, and a dash alone is not a name."),
        NickError::Invisible => i18n_f("The name {} has an invisible character in it.", &[nick]),
        NickError::NotNfkc => i18n_f(
            "The name {} has styled, fullwidth or circled letters, or separate accents. Type it in plain letters.",
            &[nick],
        ),
        NickError::Character => {
            i18n("A name has only letters, digits, dots, dashes or underscores, and no spaces.")
        }
        NickError::Restricted => i18n_f("The name {} has a character that names may not use.", &[nick]),
        NickError::MixedScript => i18n_f(
            "The name {} mixes alphabets, such as Latin and Cyrillic letters. Use one alphabet.",
            &[nick],
        ),
        NickError::CombiningMark => i18n_f(
            "The name {} puts separate accents on letters. Type the accented letters themselves.",
            &[nick],
        ),
        NickError::IpShaped => {
            i18n_f("The name {} looks like an address. Choose one that does not.", &[nick])
        }
    }
}

/// An `error` line from the server that is not about the call or logging in;
/// `text` is the server's own (English) words.
pub fn from_server(code: ErrorCode, text: Option<&str>) -> Problem {
    let sentence = match code {
        ErrorCode::Full => i18n("The server is full. Try again later."),
        ErrorCode::RateLimited => i18n("Too many calls in a short time. Wait a moment and try again."),
        ErrorCode::TlsRequired => i18n("The server accepts only encrypted connections."),
        ErrorCode::Timeout => i18n("The server stopped waiting for this window and ended the connection."),
        _ => i18n("The server could not do what was asked."),
    };
    let detail = match text {
        Some(t) => format!("{}: {t}", code.as_str()),
        None => code.as_str().to_owned(),
    };
    Problem { sentence, detail }
}

/// A server address or port that conf.txt would not hold, as a sentence
/// about the form's field (not about "conf.txt, line 1").
pub fn from_config(e: &ConfigError) -> Problem {
    let sentence = match e {
        ConfigError::Malformed { line: 1, .. } => {
            i18n("Enter the server's address: an IP address such as 192.168.0.1, or a host name.")
        }
        ConfigError::Malformed { line: 2, .. } => i18n("The port is a number from 1 to 65535."),
        ConfigError::Malformed { line: 3, .. } => i18n("The camera number is from 0 to 255."),
        _ => i18n("The settings file could not be read."),
    };
    Problem::new(sentence, e)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::Path;

    use super::*;

    #[test]
    fn a_name_the_server_would_refuse_is_explained_by_its_rule() {
        // Look-alikes of "alice" the old check let through to the server.
        for (nick, words) in [
            ("\u{0430}lice", "mixes alphabets"),
            ("\u{ff41}lice", "plain letters"),
            ("10.0.0.1", "looks like an address"),
            ("al\u{200b}ice", "invisible"),
            ("a b", "no spaces"),
            ("-", "dash alone"),
        ] {
            let rule = check_nick(nick).expect_err(nick);
            let sentence = nick_rule(nick, rule);
            assert!(sentence.contains(words), "{nick:?}: {sentence}");
        }
        assert!(check_nick("\u{141}ukasz").is_ok());
        assert!(name_rejected("\u{0430}lice", ErrorCode::BadName).contains("mixes alphabets"));
    }

    #[test]
    fn os_errors_become_sentences_and_keep_their_detail() {
        let refused = NetError::Connect {
            addr: "127.0.0.1:1".into(),
            source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        };
        let p = from_net(&refused);
        assert!(p.sentence.contains("not accepting connections"), "{p:?}");
        assert!(!p.sentence.contains("os error"), "{p:?}");
        assert!(p.detail.contains("os error 111"), "{p:?}");
        let timed_out =
            NetError::Connect { addr: "x:1".into(), source: io::Error::from(io::ErrorKind::TimedOut) };
        assert!(from_net(&timed_out).sentence.contains("in time"));
        assert!(from_net(&NetError::Resolve("nowhere:1".into())).sentence.contains("not found"));
        assert!(from_net(&NetError::Tls("alert".into())).sentence.contains("secure connection"));
        assert_eq!(lost("read failed").detail, "read failed");
        let full = from_server(ErrorCode::Full, Some("too many clients"));
        assert!(full.sentence.contains("full") && full.detail == "full: too many clients", "{full:?}");
        assert!(name_rejected("ala", ErrorCode::NameTaken).contains("already using the name ala"));
        assert!(!name_rejected("a b", ErrorCode::BadName).contains("bad-name"));
    }

    #[test]
    fn config_errors_name_the_field_not_the_file() {
        let line = |text: &str| from_config(&crate::config::parse(text, Path::new("conf.txt")).unwrap_err());
        let host = line("bad host!\n1\n0\n");
        assert!(host.sentence.contains("address"), "{host:?}");
        assert!(!host.sentence.contains("conf.txt"), "{host:?}");
        assert!(host.detail.contains("line 1"), "{host:?}");
        assert!(line("h\n0\n0\n").sentence.contains("port"));
    }
}
