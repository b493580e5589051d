//! The call as this client sees it: one state enum and a pure transition
//! function. No I/O: [`CallState::step`] returns the lines to send and the
//! media actions to take, and the engine's control thread carries them out.

use std::time::Instant;

use komunikator_protocol::{ClientId, ErrorCode, StopReason};

/// The most other parties a call may have here: the server's largest room
/// size (64) less us. A server that announces more joins is ignored beyond
/// it, so it cannot make the client build pipelines without end.
pub const MAX_PARTIES: usize = 63;

/// Where the call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// No call.
    Idle,
    /// `connect` sent; the server has not answered yet.
    Dialing {
        /// Whom we asked for (id, IP or nick as typed).
        target: String,
    },
    /// The callee is being asked (`calling <id>` received).
    Calling {
        /// Whom we asked for.
        target: String,
        /// The callee's id.
        callee: ClientId,
    },
    /// Someone is calling us (`ask <id> <nick>` received).
    Ringing {
        /// The caller's id.
        caller: ClientId,
        /// The caller's nick, if it set one.
        nick: Option<String>,
    },
    /// The call was accepted (by us or by the callee); waiting for `start`.
    Connecting {
        /// The other party, when known.
        peer: Option<ClientId>,
    },
    /// Media flows.
    Active {
        /// The other party (in a group call, the first of the others).
        peer: ClientId,
        /// When `start` arrived.
        since: Instant,
        /// The further parties of a group call, in the order they joined.
        others: Vec<ClientId>,
    },
}

/// Why a call ended or never started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up or cancelled.
    LocalHangup,
    /// We declined an incoming call.
    LocalDecline,
    /// The peer hung up (`stop hangup`).
    PeerHangup,
    /// The caller cancelled while ringing (`stop cancelled`).
    Cancelled,
    /// Nobody answered in time (`stop timeout`).
    Timeout,
    /// The peer's connection ended (`stop disconnected`).
    PeerDisconnected,
    /// The callee declined (`ask no`).
    Declined,
    /// The callee is in another call (`busy <id>`).
    Busy,
    /// The server refused the `connect` (`error <code>`).
    Refused(ErrorCode),
    /// Our own connection to the server ended.
    ConnectionLost,
}

impl EndReason {
    /// A stable short name, used in the headless JSON (`end_reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::LocalHangup => "hangup",
            EndReason::LocalDecline => "declined-by-us",
            EndReason::PeerHangup => "peer-hangup",
            EndReason::Cancelled => "cancelled",
            EndReason::Timeout => "timeout",
            EndReason::PeerDisconnected => "peer-disconnected",
            EndReason::Declined => "declined",
            EndReason::Busy => "busy",
            EndReason::Refused(code) => refused_name(code),
            EndReason::ConnectionLost => "connection-lost",
        }
    }
}

fn refused_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NoSuchClient => "refused:no-such-client",
        ErrorCode::Ambiguous => "refused:ambiguous",
        ErrorCode::SelfCall => "refused:self",
        ErrorCode::Busy => "refused:busy",
        ErrorCode::RateLimited => "refused:rate-limited",
        ErrorCode::BadArgument => "refused:bad-argument",
        _ => "refused",
    }
}

/// What happened, from the user or the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallInput {
    /// The user calls `target`.
    Dial(String),
    /// The user answers an incoming call.
    Answer(bool),
    /// The user hangs up, cancels or declines.
    Hangup,
    /// `calling <id>`.
    Calling(ClientId),
    /// `ask <id> <nick>`.
    Asked {
        /// The caller.
        caller: ClientId,
        /// Its nick.
        nick: Option<String>,
    },
    /// `ask yes`.
    AskYes,
    /// `ask no`.
    AskNo,
    /// `busy <id>`.
    Busy,
    /// `start <id>`.
    Start(ClientId),
    /// The user invites `target` into the call (group calls).
    Invite(String),
    /// `joined <id> <nick>`: a party joined our call.
    Joined(ClientId),
    /// `left <id> <reason>`: a party left our call, which goes on.
    Left(ClientId),
    /// `stop <reason>`.
    Stop(StopReason),
    /// `error <code>`.
    Error(ErrorCode),
    /// The connection to the server ended.
    ConnectionLost,
}

/// A line the engine must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send {
    /// `connect <target>`.
    Connect(String),
    /// `ask yes`.
    AskYes,
    /// `ask no`.
    AskNo,
    /// `stop`.
    Stop,
    /// `invite <target>`.
    Invite(String),
}

/// What the engine must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a line to the server.
    Send(Send),
    /// Start the call's pipelines and ask the peer for a keyframe.
    StartMedia(ClientId),
    /// Start receiving from a party that joined the call.
    AddParty(ClientId),
    /// Stop receiving from a party that left the call.
    RemoveParty(ClientId),
    /// Stop the call's pipelines (before any `stop` is sent).
    StopMedia,
    /// Report the end of the call (or of the attempt).
    Ended(EndReason),
    /// The input does not apply in this state; tell the user why.
    Ignored(&'static str),
}

impl CallState {
    /// Whether a call is up, ringing or being set up.
    pub fn is_idle(&self) -> bool {
        matches!(self, CallState::Idle)
    }

    /// The next state and the actions to take, in order.
    pub fn step(&self, input: CallInput) -> (CallState, Vec<Action>) {
        use CallInput as I;
        use CallState as S;
        let end = |reason| (S::Idle, vec![Action::Ended(reason)]);
        match (self, input) {
            (S::Idle, I::Dial(target)) => {
                (S::Dialing { target: target.clone() }, vec![Action::Send(Send::Connect(target))])
            }
            (S::Idle, I::Asked { caller, nick }) => (S::Ringing { caller, nick }, vec![]),
            (S::Dialing { target }, I::Calling(callee)) => {
                (S::Calling { target: target.clone(), callee }, vec![])
            }
            (S::Dialing { .. }, I::Busy) | (S::Calling { .. }, I::Busy) => end(EndReason::Busy),
            (S::Dialing { .. }, I::Error(code)) if ends_dialing(code) => end(EndReason::Refused(code)),
            (S::Calling { callee, .. }, I::AskYes) => (S::Connecting { peer: Some(*callee) }, vec![]),
            (S::Calling { .. }, I::AskNo) => end(EndReason::Declined),
            (S::Ringing { caller, .. }, I::Answer(true)) => {
                (S::Connecting { peer: Some(*caller) }, vec![Action::Send(Send::AskYes)])
            }
            (S::Ringing { .. }, I::Answer(false)) | (S::Ringing { .. }, I::Hangup) => {
                (S::Idle, vec![Action::Send(Send::AskNo), Action::Ended(EndReason::LocalDecline)])
            }
            (S::Dialing { .. } | S::Calling { .. } | S::Connecting { .. }, I::Start(peer)) => (
                S::Active { peer, since: Instant::now(), others: Vec::new() },
                vec![Action::StartMedia(peer)],
            ),
            (S::Active { peer, since, others }, I::Joined(id))
                if id != *peer && !others.contains(&id) && others.len() + 1 < MAX_PARTIES =>
            {
                let others = others.iter().copied().chain([id]).collect();
                (S::Active { peer: *peer, since: *since, others }, vec![Action::AddParty(id)])
            }
            (S::Active { peer, since, others }, I::Left(id)) if id == *peer || others.contains(&id) => {
                let mut rest: Vec<ClientId> = [*peer].into_iter().chain(others.iter().copied()).collect();
                rest.retain(|p| *p != id);
                // The server ends a call left with one party by itself (`stop`).
                let Some((&peer, others)) = rest.split_first() else { return (self.clone(), vec![]) };
                let next = S::Active { peer, since: *since, others: others.to_vec() };
                (next, vec![Action::RemoveParty(id)])
            }
            (S::Active { .. }, I::Invite(target)) => (self.clone(), vec![Action::Send(Send::Invite(target))]),
            (state, I::Invite(_)) => (state.clone(), vec![Action::Ignored("invite someone during a call")]),
            (S::Dialing { .. } | S::Calling { .. } | S::Connecting { .. }, I::Hangup) => {
                (S::Idle, vec![Action::Send(Send::Stop), Action::Ended(EndReason::LocalHangup)])
            }
            (S::Active { .. }, I::Hangup) => (
                S::Idle,
                vec![Action::StopMedia, Action::Send(Send::Stop), Action::Ended(EndReason::LocalHangup)],
            ),
            (S::Active { .. }, I::Stop(reason)) => {
                (S::Idle, vec![Action::StopMedia, Action::Ended(stop_reason(reason))])
            }
            (S::Active { .. }, I::ConnectionLost) => {
                (S::Idle, vec![Action::StopMedia, Action::Ended(EndReason::ConnectionLost)])
            }
            (S::Idle, I::ConnectionLost) => (S::Idle, vec![]),
            (_, I::ConnectionLost) => end(EndReason::ConnectionLost),
            (S::Idle, I::Stop(_)) => (S::Idle, vec![]),
            (_, I::Stop(reason)) => end(stop_reason(reason)),
            (state, I::Dial(_)) => (state.clone(), vec![Action::Ignored("already in a call")]),
            (state, I::Answer(_)) => (state.clone(), vec![Action::Ignored("no incoming call to answer")]),
            (state, I::Hangup) => (state.clone(), vec![Action::Ignored("no call to hang up")]),
            (state, _) => (state.clone(), vec![]),
        }
    }
}

/// Errors that answer a `connect`.
fn ends_dialing(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NoSuchClient
            | ErrorCode::Ambiguous
            | ErrorCode::SelfCall
            | ErrorCode::Busy
            | ErrorCode::RateLimited
            | ErrorCode::BadArgument
    )
}

fn stop_reason(reason: StopReason) -> EndReason {
    match reason {
        StopReason::Hangup => EndReason::PeerHangup,
        StopReason::Cancelled => EndReason::Cancelled,
        StopReason::Timeout => EndReason::Timeout,
        StopReason::Disconnected => EndReason::PeerDisconnected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(port: u16) -> ClientId {
        ClientId::from(([127, 0, 0, 1], port))
    }

    fn run(inputs: Vec<CallInput>) -> (CallState, Vec<Action>) {
        let mut state = CallState::Idle;
        let mut all = Vec::new();
        for input in inputs {
            let (next, actions) = state.step(input);
            state = next;
            all.extend(actions);
        }
        (state, all)
    }

    #[test]
    fn caller_happy_path_and_hangup() {
        let (state, actions) = run(vec![
            CallInput::Dial("bob".into()),
            CallInput::Calling(id(2)),
            CallInput::AskYes,
            CallInput::Start(id(2)),
        ]);
        assert!(matches!(&state, CallState::Active { peer, .. } if *peer == id(2)));
        assert_eq!(actions, vec![Action::Send(Send::Connect("bob".into())), Action::StartMedia(id(2))]);
        let (state, actions) = state.step(CallInput::Hangup);
        assert_eq!(state, CallState::Idle);
        assert_eq!(
            actions,
            vec![Action::StopMedia, Action::Send(Send::Stop), Action::Ended(EndReason::LocalHangup)]
        );
    }

    #[test]
    fn callee_answers_then_peer_hangs_up() {
        let (state, actions) = run(vec![
            CallInput::Asked { caller: id(1), nick: Some("ala".into()) },
            CallInput::Answer(true),
            CallInput::Start(id(1)),
            CallInput::Stop(StopReason::Hangup),
        ]);
        assert_eq!(state, CallState::Idle);
        assert_eq!(
            actions,
            vec![
                Action::Send(Send::AskYes),
                Action::StartMedia(id(1)),
                Action::StopMedia,
                Action::Ended(EndReason::PeerHangup)
            ]
        );
    }

    #[test]
    fn refusals_end_the_attempt() {
        let dial = || vec![CallInput::Dial("x".into())];
        let with = |extra: Vec<CallInput>| {
            let mut v = dial();
            v.extend(extra);
            run(v)
        };
        assert_eq!(with(vec![CallInput::Busy]).1.last(), Some(&Action::Ended(EndReason::Busy)));
        let refused = with(vec![CallInput::Error(ErrorCode::NoSuchClient)]);
        assert_eq!(refused.1.last(), Some(&Action::Ended(EndReason::Refused(ErrorCode::NoSuchClient))));
        let declined = with(vec![CallInput::Calling(id(2)), CallInput::AskNo]);
        assert_eq!(declined.1.last(), Some(&Action::Ended(EndReason::Declined)));
        let timeout = with(vec![CallInput::Calling(id(2)), CallInput::Stop(StopReason::Timeout)]);
        assert_eq!(timeout.1.last(), Some(&Action::Ended(EndReason::Timeout)));
        // An unrelated error while dialing does not end it.
        let (state, _) = with(vec![CallInput::Error(ErrorCode::NotInCall)]);
        assert!(matches!(state, CallState::Dialing { .. }));
    }

    #[test]
    fn decline_and_cancel() {
        let (state, actions) =
            run(vec![CallInput::Asked { caller: id(1), nick: None }, CallInput::Answer(false)]);
        assert_eq!(state, CallState::Idle);
        assert_eq!(actions, vec![Action::Send(Send::AskNo), Action::Ended(EndReason::LocalDecline)]);
        let (_, actions) =
            run(vec![CallInput::Asked { caller: id(1), nick: None }, CallInput::Stop(StopReason::Cancelled)]);
        assert_eq!(actions, vec![Action::Ended(EndReason::Cancelled)]);
    }

    #[test]
    fn connection_loss_stops_media() {
        let (_, actions) = run(vec![
            CallInput::Asked { caller: id(1), nick: None },
            CallInput::Answer(true),
            CallInput::Start(id(1)),
            CallInput::ConnectionLost,
        ]);
        assert_eq!(&actions[2..], &[Action::StopMedia, Action::Ended(EndReason::ConnectionLost)]);
        assert_eq!(run(vec![CallInput::ConnectionLost]).1, vec![]);
    }

    #[test]
    fn parties_join_and_leave_a_group_call() {
        let (state, _) = run(vec![
            CallInput::Asked { caller: id(1), nick: None },
            CallInput::Answer(true),
            CallInput::Start(id(1)),
        ]);
        let (state, actions) = state.step(CallInput::Joined(id(3)));
        assert_eq!(actions, vec![Action::AddParty(id(3))]);
        let (state, actions) = state.step(CallInput::Joined(id(3)));
        assert_eq!(actions, vec![], "a party joins once");
        // A server announcing joins without end gets MAX_PARTIES parties.
        let mut crowded = state.clone();
        for port in 100..1000 {
            crowded = crowded.step(CallInput::Joined(id(port))).0;
        }
        let CallState::Active { others, .. } = crowded else { panic!("still in the call") };
        assert_eq!(1 + others.len(), MAX_PARTIES);
        let (state, actions) = state.step(CallInput::Invite("dawid".into()));
        assert_eq!(actions, vec![Action::Send(Send::Invite("dawid".into()))]);
        // The first party leaves: the next one takes its place.
        let (state, actions) = state.step(CallInput::Left(id(1)));
        assert_eq!(actions, vec![Action::RemoveParty(id(1))]);
        assert!(
            matches!(&state, CallState::Active { peer, others, .. } if *peer == id(3) && others.is_empty())
        );
        let (state, actions) = state.step(CallInput::Left(id(9)));
        assert_eq!(actions, vec![], "not a party");
        let (state, actions) = state.step(CallInput::Stop(StopReason::Hangup));
        assert_eq!(state, CallState::Idle);
        assert_eq!(actions, vec![Action::StopMedia, Action::Ended(EndReason::PeerHangup)]);
        assert!(matches!(CallState::Idle.step(CallInput::Invite("x".into())).1[..], [Action::Ignored(_)]));
    }

    #[test]
    fn misuse_is_ignored_not_fatal() {
        let (state, actions) = run(vec![CallInput::Answer(true)]);
        assert_eq!(state, CallState::Idle);
        assert!(matches!(actions[..], [Action::Ignored(_)]));
        let (state, _) =
            run(vec![CallInput::AskYes, CallInput::Start(id(3)), CallInput::Stop(StopReason::Hangup)]);
        assert_eq!(state, CallState::Idle, "start without a call attempt is ignored");
    }
}
