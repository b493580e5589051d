//! What nodes of a cluster say to each other on the broker, and its
//! parsing. Every message is one header line (`<kind> <fields>...`) and, for
//! some kinds, a body: the directory's user lines, or bytes of the client
//! protocol carried as they are. Anything else, or anything larger than the
//! limits here, is refused like bad input from a client: the message is
//! dropped and logged, never trusted. Pure: run on the cluster thread.

use std::fmt::Write as _;

use komunikator_protocol::{ClientId, PeerState, is_valid_nick};

/// Most users one node's directory entry may list.
pub const MAX_USERS: usize = 10_000;

/// A node's name: 1 to 32 of `a-z`, `0-9`, `-` (a NATS subject token).
pub fn is_valid_node(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A user as another node lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirUser {
    /// Its id on its node.
    pub id: ClientId,
    /// Free or busy.
    pub state: PeerState,
    /// Its nick, if it set one.
    pub nick: Option<String>,
}

/// One message between nodes. `from` is always the sending node; `tid`
/// numbers a tunnel, unique per home node (the node of the user it carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus<'a> {
    /// On `dir`: every local user of node `from`, which started at `epoch`.
    Dir {
        /// The node.
        from: &'a str,
        /// When the node started (a restarted node has a new one).
        epoch: u64,
        /// Its users.
        users: Vec<DirUser>,
        /// Where it takes direct links (`--cluster-link`), if it does.
        link: Option<LinkAddr<'a>>,
    },
    /// On `dir`: node `from` is shutting down.
    Bye {
        /// The node.
        from: &'a str,
    },
    /// On a direct link with nothing else to send: node `from` is alive
    /// (so two linked nodes outlive the broker's absence).
    Alive {
        /// The node.
        from: &'a str,
    },
    /// To a node that takes direct links: node `from` is about to dial you
    /// and will say `token` (32 hex digits, used once).
    Link {
        /// The dialling node.
        from: &'a str,
        /// The one-time token.
        token: &'a str,
    },
    /// To a host node: user `user` of node `from`, called `nick`, is carried
    /// to you through tunnel `tid` (its call lives with you).
    Open {
        /// The user's home node.
        from: &'a str,
        /// The tunnel.
        tid: u64,
        /// The user's id.
        user: ClientId,
        /// Its nick.
        nick: Option<&'a str>,
        /// It turned group calls on.
        group: bool,
    },
    /// To a host node: the user sent `bytes` (one command line, or one media
    /// frame with its header line).
    Up {
        /// The home node.
        from: &'a str,
        /// The tunnel.
        tid: u64,
        /// Numbers messages of the tunnel from 0: a gap ends it.
        seq: u64,
        /// The item.
        bytes: &'a [u8],
    },
    /// To a host node: the user disconnected.
    Gone {
        /// The home node.
        from: &'a str,
        /// The tunnel.
        tid: u64,
    },
    /// To a home node: `bytes` (whole lines and frames) for the tunnel's user.
    Down {
        /// The host node.
        from: &'a str,
        /// The tunnel.
        tid: u64,
        /// As for `Up`.
        seq: u64,
        /// The items.
        bytes: &'a [u8],
    },
    /// To a host node: how fast the user's own connection takes media, as
    /// its home node measured it (`None`: no longer the limit), for the
    /// senders of its call (`rate` in docs/PROTOCOL.md).
    Rate {
        /// The home node.
        from: &'a str,
        /// The tunnel.
        tid: u64,
        /// kbit/s.
        kbps: Option<std::num::NonZeroU32>,
    },
    /// To a home node: the user's call is over; the tunnel is closed.
    Close {
        /// The host node.
        from: &'a str,
        /// The tunnel.
        tid: u64,
    },
    /// To the home node of `user`: `inviter` (of node `from`), called
    /// `nick`, invites it into a call that lives on `from`: carry it there
    /// (answered `pulled` after an `open`, or `refuse`).
    Pull {
        /// The node of the call.
        from: &'a str,
        /// Numbers the request, per asking node.
        pid: u64,
        /// The user invited.
        user: ClientId,
        /// Who invites it.
        inviter: ClientId,
        /// The inviter's nick.
        nick: Option<&'a str>,
    },
    /// To the node that asked `pid`: its user comes, through tunnel `tid`.
    Pulled {
        /// The user's home node.
        from: &'a str,
        /// The request.
        pid: u64,
        /// The tunnel.
        tid: u64,
    },
    /// To the node that asked `pid`: its user cannot come.
    Refuse {
        /// The user's home node.
        from: &'a str,
        /// The request.
        pid: u64,
        /// Why.
        why: Refusal,
    },
}

/// Where a node takes direct links: an address other nodes can dial
/// (`HOST:PORT`) and the SHA-256 fingerprint of its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAddr<'a> {
    /// `HOST:PORT`.
    pub addr: &'a str,
    /// As [`komunikator_tls::fingerprint`] writes it.
    pub fingerprint: &'a str,
}

/// Why a user cannot be carried to an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Ringing or in a call, gone, or it blocked the inviter (not revealed).
    Busy,
    /// It has not turned group calls on.
    NotSupported,
    /// A ring limit of its node.
    RateLimited,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Busy => "busy",
            Refusal::NotSupported => "not-supported",
            Refusal::RateLimited => "rate-limited",
        }
    }
}

/// Why a bus message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad cluster message: {0}")]
pub struct BadMessage(pub &'static str);

impl<'a> Bus<'a> {
    /// Appends the message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut head = String::new();
        let body: &[u8] = match self {
            Bus::Dir { from, epoch, users, link } => {
                let _ = match link {
                    Some(l) => {
                        writeln!(head, "dir {from} {epoch} {} {} {}", users.len(), l.addr, l.fingerprint)
                    }
                    None => writeln!(head, "dir {from} {epoch} {}", users.len()),
                };
                for u in users {
                    let _ =
                        writeln!(head, "{} {} {}", u.id, u.state.as_str(), u.nick.as_deref().unwrap_or("-"));
                }
                &[]
            }
            Bus::Bye { from } => {
                let _ = writeln!(head, "bye {from}");
                &[]
            }
            Bus::Link { from, token } => {
                let _ = writeln!(head, "link {from} {token}");
                &[]
            }
            Bus::Alive { from } => {
                let _ = writeln!(head, "alive {from}");
                &[]
            }
            Bus::Open { from, tid, user, nick, group } => {
                let _ =
                    writeln!(head, "open {from} {tid} {user} {} {}", nick.unwrap_or("-"), u8::from(*group));
                &[]
            }
            Bus::Up { from, tid, seq, bytes } => {
                let _ = writeln!(head, "up {from} {tid} {seq}");
                bytes
            }
            Bus::Gone { from, tid } => {
                let _ = writeln!(head, "gone {from} {tid}");
                &[]
            }
            Bus::Down { from, tid, seq, bytes } => {
                let _ = writeln!(head, "down {from} {tid} {seq}");
                bytes
            }
            Bus::Close { from, tid } => {
                let _ = writeln!(head, "close {from} {tid}");
                &[]
            }
            Bus::Rate { from, tid, kbps: Some(k) } => {
                let _ = writeln!(head, "rate {from} {tid} {k}");
                &[]
            }
            Bus::Rate { from, tid, kbps: None } => {
                let _ = writeln!(head, "rate {from} {tid} -");
                &[]
            }
            Bus::Pull { from, pid, user, inviter, nick } => {
                let _ = writeln!(head, "pull {from} {pid} {user} {inviter} {}", nick.unwrap_or("-"));
                &[]
            }
            Bus::Pulled { from, pid, tid } => {
                let _ = writeln!(head, "pulled {from} {pid} {tid}");
                &[]
            }
            Bus::Refuse { from, pid, why } => {
                let _ = writeln!(head, "refuse {from} {pid} {}", why.as_str());
                &[]
            }
        };
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses one message.
    ///
    /// # Errors
    /// [`BadMessage`] for anything malformed or past a limit.
    pub fn parse(msg: &'a [u8]) -> Result<Bus<'a>, BadMessage> {
        let end = msg.iter().position(|&b| b == b'\n').ok_or(BadMessage("no header line"))?;
        let head = std::str::from_utf8(&msg[..end]).map_err(|_| BadMessage("header is not UTF-8"))?;
        let body = &msg[end + 1..];
        let mut f = head.split(' ');
        let kind = f.next().unwrap_or("");
        let from = f.next().filter(|n| is_valid_node(n)).ok_or(BadMessage("bad node name"))?;
        let number = |s: Option<&str>| s.and_then(|s| s.parse::<u64>().ok()).ok_or(BadMessage("bad number"));
        let parsed = match kind {
            "dir" => {
                let epoch = number(f.next())?;
                let n = number(f.next())? as usize;
                if n > MAX_USERS {
                    return Err(BadMessage("too many users"));
                }
                let link = match (f.next(), f.next()) {
                    (None, _) => None,
                    (Some(addr), Some(fingerprint)) if is_valid_addr(addr) && is_fingerprint(fingerprint) => {
                        Some(LinkAddr { addr, fingerprint })
                    }
                    _ => return Err(BadMessage("bad link address")),
                };
                Bus::Dir { from, epoch, users: users(body, n)?, link }
            }
            "bye" => Bus::Bye { from },
            "alive" => Bus::Alive { from },
            "link" => {
                Bus::Link { from, token: f.next().filter(|t| is_token(t)).ok_or(BadMessage("bad token"))? }
            }
            "open" => {
                let tid = number(f.next())?;
                let user = f.next().and_then(|s| s.parse().ok()).ok_or(BadMessage("bad user id"))?;
                let nick = nick(f.next())?;
                let group = match f.next() {
                    Some("0") => false,
                    Some("1") => true,
                    _ => return Err(BadMessage("bad group flag")),
                };
                Bus::Open { from, tid, user, nick, group }
            }
            "up" => Bus::Up { from, tid: number(f.next())?, seq: number(f.next())?, bytes: body },
            "down" => Bus::Down { from, tid: number(f.next())?, seq: number(f.next())?, bytes: body },
            "gone" => Bus::Gone { from, tid: number(f.next())? },
            "close" => Bus::Close { from, tid: number(f.next())? },
            "rate" => {
                let tid = number(f.next())?;
                let kbps = match f.next() {
                    Some("-") => None,
                    k => Some(k.and_then(|k| k.parse().ok()).ok_or(BadMessage("bad rate"))?),
                };
                Bus::Rate { from, tid, kbps }
            }
            "pull" => {
                let pid = number(f.next())?;
                let id = |s: Option<&str>| s.and_then(|s| s.parse().ok()).ok_or(BadMessage("bad user id"));
                let (user, inviter) = (id(f.next())?, id(f.next())?);
                Bus::Pull { from, pid, user, inviter, nick: nick(f.next())? }
            }
            "pulled" => Bus::Pulled { from, pid: number(f.next())?, tid: number(f.next())? },
            "refuse" => {
                let pid = number(f.next())?;
                let why = match f.next() {
                    Some("busy") => Refusal::Busy,
                    Some("not-supported") => Refusal::NotSupported,
                    Some("rate-limited") => Refusal::RateLimited,
                    _ => return Err(BadMessage("bad refusal")),
                };
                Bus::Refuse { from, pid, why }
            }
            _ => return Err(BadMessage("unknown kind")),
        };
        if f.next().is_some() {
            return Err(BadMessage("extra fields"));
        }
        let bodyless = !matches!(parsed, Bus::Dir { .. } | Bus::Up { .. } | Bus::Down { .. });
        if bodyless && !body.is_empty() {
            return Err(BadMessage("unexpected body"));
        }
        Ok(parsed)
    }
}

/// A dialable `HOST:PORT`: at most 255 printable ASCII characters.
fn is_valid_addr(s: &str) -> bool {
    (3..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) && s.contains(':')
}

/// A fingerprint exactly as [`komunikator_tls::fingerprint`] writes it.
fn is_fingerprint(s: &str) -> bool {
    komunikator_tls::parse_fingerprint(s).is_ok_and(|n| n == s)
}

/// A link token: 32 lower-case hex digits.
pub fn is_token(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Bus<'_> {
    /// The node that sent it.
    pub fn from(&self) -> &str {
        match self {
            Bus::Dir { from, .. }
            | Bus::Bye { from }
            | Bus::Link { from, .. }
            | Bus::Alive { from }
            | Bus::Open { from, .. }
            | Bus::Up { from, .. }
            | Bus::Gone { from, .. }
            | Bus::Down { from, .. }
            | Bus::Close { from, .. }
            | Bus::Rate { from, .. }
            | Bus::Pull { from, .. }
            | Bus::Pulled { from, .. }
            | Bus::Refuse { from, .. } => from,
        }
    }
}

fn nick(s: Option<&str>) -> Result<Option<&str>, BadMessage> {
    match s {
        Some("-") => Ok(None),
        Some(n) if is_valid_nick(n) => Ok(Some(n)),
        _ => Err(BadMessage("bad nick")),
    }
}

/// `n` lines of `<id> <free|busy> <nick|->`, and nothing else.
fn users(body: &[u8], n: usize) -> Result<Vec<DirUser>, BadMessage> {
    let text = std::str::from_utf8(body).map_err(|_| BadMessage("directory is not UTF-8"))?;
    let lines: Vec<&str> = text.strip_suffix('\n').map_or(Vec::new(), |t| t.split('\n').collect());
    if lines.len() != n {
        return Err(BadMessage("directory count does not match"));
    }
    lines
        .into_iter()
        .map(|line| {
            let mut f = line.split(' ');
            let id = f.next().and_then(|s| s.parse().ok()).ok_or(BadMessage("bad user id"))?;
            let state = match f.next() {
                Some("free") => PeerState::Free,
                Some("busy") => PeerState::Busy,
                _ => return Err(BadMessage("bad user state")),
            };
            let nick = nick(f.next())?.map(str::to_owned);
            if f.next().is_some() {
                return Err(BadMessage("extra fields"));
            }
            Ok(DirUser { id, state, nick })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ClientId {
        ([10, 0, 0, n], 4000).into()
    }

    #[test]
    fn every_message_survives_a_round_trip() {
        let users = vec![
            DirUser { id: id(1), state: PeerState::Free, nick: Some("ala".into()) },
            DirUser { id: id(2), state: PeerState::Busy, nick: None },
        ];
        let frame = b"video 1 k 3\nabc";
        let fp = komunikator_tls::fingerprint(b"a certificate");
        let messages = [
            Bus::Dir { from: "n1", epoch: 7, users: users.clone(), link: None },
            Bus::Dir { from: "n1", epoch: 7, users: vec![], link: None },
            Bus::Dir {
                from: "n1",
                epoch: 7,
                users,
                link: Some(LinkAddr { addr: "10.0.0.1:12346", fingerprint: &fp }),
            },
            Bus::Bye { from: "n-2" },
            Bus::Alive { from: "n-2" },
            Bus::Link { from: "n1", token: "0123456789abcdef0123456789abcdef" },
            Bus::Open { from: "n1", tid: 3, user: id(1), nick: Some("ala"), group: true },
            Bus::Open { from: "n1", tid: 3, user: id(1), nick: None, group: false },
            Bus::Up { from: "n1", tid: 3, seq: 0, bytes: b"connect bob\n" },
            Bus::Up { from: "n1", tid: 3, seq: 1, bytes: frame },
            Bus::Down { from: "n2", tid: 3, seq: 9, bytes: b"calling 10.0.0.2:4000\n" },
            Bus::Gone { from: "n1", tid: 3 },
            Bus::Close { from: "n2", tid: 3 },
            Bus::Rate { from: "n1", tid: 3, kbps: std::num::NonZeroU32::new(480) },
            Bus::Rate { from: "n1", tid: 3, kbps: None },
            Bus::Pull { from: "n2", pid: 4, user: id(1), inviter: id(2), nick: Some("bob") },
            Bus::Pulled { from: "n1", pid: 4, tid: 5 },
            Bus::Refuse { from: "n1", pid: 4, why: Refusal::RateLimited },
        ];
        for m in messages {
            assert_eq!(Bus::parse(&m.to_bytes()), Ok(m.clone()), "{m:?}");
        }
    }

    #[test]
    fn bad_messages_are_refused() {
        let bad: &[&[u8]] = &[
            b"",
            b"dir n1 7 1",
            b"dir n1 7 1\n",
            b"dir n1 7 2\n10.0.0.1:4000 free ala\n",
            b"dir n1 7 1\n10.0.0.1:4000 gone ala\n",
            b"dir n1 7 1\n10.0.0.1:4000 free a la\n",
            b"dir n1 7 1\nnobody free ala\n",
            b"dir N1 7 0\n",
            b"dir n1 x 0\n",
            b"dir n1 7 99999999\n",
            b"open n1 3 10.0.0.1:4000 ala 2\n",
            b"open n1 3 10.0.0.1:4000 ala 1 extra\n",
            b"gone n1 3\nbody",
            b"what n1 3\n",
            b"up n1 3\nconnect bob\n",
            b"pull n1 4 10.0.0.1:4000 nobody -\n",
            b"refuse n1 4 maybe\n",
            b"rate n1 3 0\n",
            b"rate n1 3 fast\n",
            b"rate n1 3\n",
            b"\xff\xfe n1\n",
            b"dir n1 7 0 10.0.0.1:12346\n",
            b"dir n1 7 0 10.0.0.1:12346 ab:cd\n",
            b"dir n1 7 0 10.0.0.1 12:34\n",
            b"link n1 0123\n",
            b"link n1 0123456789ABCDEF0123456789ABCDEF\n",
        ];
        for m in bad {
            assert!(Bus::parse(m).is_err(), "{:?}", String::from_utf8_lossy(m));
        }
    }

    proptest::proptest! {
        /// Whatever comes from the broker or a link, parsing never panics,
        /// and what it accepts is what it would send.
        #[test]
        fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(m) = Bus::parse(&bytes) {
                let again = m.to_bytes();
                proptest::prop_assert_eq!(Bus::parse(&again), Ok(m));
            }
        }

        /// Headers made of the words messages use, in any order.
        #[test]
        fn word_salad_parses_or_is_refused(words in proptest::collection::vec(
            proptest::sample::select(vec![
                "dir", "bye", "link", "open", "up", "down", "gone", "close", "rate", "pull", "pulled",
                "refuse", "n1", "0", "1", "-", "7", "18446744073709551616", "10.0.0.1:4000", "ala",
                "busy", "0123456789abcdef0123456789abcdef", "\n", "10.0.0.1:12346",
            ]),
            0..12,
        )) {
            let msg = words.join(" ");
            if let Ok(m) = Bus::parse(msg.as_bytes()) {
                let again = m.to_bytes();
                proptest::prop_assert_eq!(Bus::parse(&again), Ok(m));
            }
        }
    }

    #[test]
    fn node_names_are_subject_tokens() {
        assert!(is_valid_node("node-1"));
        for bad in ["", "Node", "a.b", "a b", "*", ">", &"x".repeat(33)] {
            assert!(!is_valid_node(bad), "{bad}");
        }
    }
}
