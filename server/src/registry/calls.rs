//! Calls starting and ending in the client table: answering a call, linking
//! the parties' media paths, and the end of a call or a party's leaving (the
//! barrier for its media). Like the rest of the registry, these run under
//! the registry lock, on the session thread of the client whose command it
//! is, or on the housekeeping thread.

use std::sync::Arc;

use komunikator_protocol::{ClientId, DeclineReason, ErrorCode, ServerMsg, StopReason};

use super::{Call, Conn, Link, Table, broadcast_presence, group};

pub(super) fn answer(t: &mut Table, conn: &Conn, yes: bool) {
    let callee = conn.id;
    let (caller, room) = match t.clients.get(&callee).map(|c| c.call) {
        Some(Call::Asked { caller, room, .. }) => (caller, room),
        _ => {
            conn.send_error(ErrorCode::NotAsked, "nobody is calling you");
            return;
        }
    };
    if let Some(room) = room {
        group::answer_invite(t, conn, room, yes);
        return;
    }
    let Some(caller_conn) = t.clients.get(&caller).map(|c| Arc::clone(&c.conn)) else { return };
    if yes {
        caller_conn.send(&ServerMsg::AskYes);
        let room = t.rooms.open(vec![caller, callee]);
        for party in [caller, callee] {
            if let Some(c) = t.clients.get_mut(&party) {
                c.conn.outbox.start_call();
                c.call = Call::InCall { room };
            }
        }
        link(t, &caller_conn, &[callee]);
        crate::log!(Info, "{caller} <-> {callee}: call started");
    } else {
        for id in [caller, callee] {
            if let Some(c) = t.clients.get_mut(&id) {
                c.call = Call::Idle;
            }
        }
        caller_conn.send(&ServerMsg::AskNo);
        crate::log!(Info, "{callee} declined {caller}");
        broadcast_presence(t, caller);
        broadcast_presence(t, callee);
    }
}

/// Opens the media path between `new` and each of `members`, holding all
/// their slots, and queues `start <members[0]>` for `new` (then `joined`
/// for the other members), `start <new>` for a lone member of a two-party
/// call, or `joined <new>` for the members of a group call. So no frame can
/// be queued ahead of those lines, and a client that has read them finds its
/// slot set.
pub(super) fn link(t: &Table, new: &Conn, members: &[ClientId]) {
    let conns: Vec<(Arc<Conn>, bool)> =
        members.iter().filter_map(|id| t.clients.get(id)).map(|c| (Arc::clone(&c.conn), c.group)).collect();
    let Some(((first, _), rest)) = conns.split_first() else { return };
    let new_group = t.clients.get(&new.id).is_some_and(|c| c.group);
    let new_nick = t.clients.get(&new.id).and_then(|c| c.nick.as_deref());
    let mut new_slot = new.links();
    let mut slots: Vec<_> = conns.iter().map(|(c, _)| c.links()).collect();
    new.send(&ServerMsg::Start(first.id));
    for (c, group) in &conns {
        new_slot.push(Link { id: c.id, outbox: Arc::clone(&c.outbox), enveloped: *group });
    }
    for (c, _) in rest {
        let nick = t.clients.get(&c.id).and_then(|m| m.nick.as_deref());
        new.send(&ServerMsg::Joined { id: c.id, nick });
    }
    for ((c, _), slot) in conns.iter().zip(slots.iter_mut()) {
        slot.push(Link { id: new.id, outbox: Arc::clone(&new.outbox), enveloped: new_group });
        if members.len() == 1 && slot.len() == 1 {
            c.send(&ServerMsg::Start(new.id));
        } else {
            c.send(&ServerMsg::Joined { id: new.id, nick: new_nick });
        }
    }
}

/// Ends `id`'s part in a call, if any, telling the others why. Returns
/// whether there was a call. A caller's `stop` while ringing is reported as
/// `cancelled`; an invited client's `stop` declines the invitation. Leaving
/// a call of three or more, the others get `left` and go on; leaving a call
/// of two ends it.
///
/// The end of a call (and a party's leaving) is a barrier for its media:
/// once this returns, no frame of the call is queued for the party that
/// left, none from it is queued for anyone, and none can be (see
/// [`crate::outbox::Outbox::purge_media`] for frames being written at that moment).
pub(super) fn end_call(t: &mut Table, id: ClientId, reason: StopReason) -> bool {
    let Some(call) = t.clients.get(&id).map(|c| c.call) else { return false };
    let (other, reason) = match call {
        // A carried client's call is the other node's to end (see `cluster`).
        Call::Idle | Call::Remote => return false,
        Call::InCall { room } => {
            group::leave_room(t, id, room, reason);
            return true;
        }
        Call::Asked { room: Some(room), .. } => {
            let why = if reason == StopReason::Disconnected {
                DeclineReason::Disconnected
            } else {
                DeclineReason::No
            };
            group::decline(t, id, room, why);
            return true;
        }
        Call::Calling { callee, .. } if reason == StopReason::Hangup => (callee, StopReason::Cancelled),
        Call::Calling { callee: other, .. } | Call::Asked { caller: other, .. } => (other, reason),
    };
    for party in [id, other] {
        if let Some(c) = t.clients.get_mut(&party) {
            c.call = Call::Idle;
        }
    }
    if let Some(c) = t.clients.get(&other) {
        c.conn.send(&ServerMsg::Stop(reason));
        crate::log!(Info, "{id} -> {other}: call ended ({})", reason.as_str());
    }
    broadcast_presence(t, id);
    broadcast_presence(t, other);
    true
}

/// The barrier for one party: its links and the links to it go, then its
/// queued media and queued media from it, so no frame can be queued after
/// its receiver's purge (a push in progress holds the sender's slot, which
/// this waits for).
pub(super) fn unlink(t: &Table, id: ClientId, others: &[ClientId]) {
    if let Some(c) = t.clients.get(&id) {
        c.conn.links().clear();
    }
    for other in others {
        if let Some(c) = t.clients.get(other) {
            c.conn.links().retain(|l| l.id != id);
        }
    }
    if let Some(c) = t.clients.get(&id) {
        c.conn.outbox.purge_media();
    }
    for other in others {
        if let Some(c) = t.clients.get(other) {
            c.conn.outbox.purge_media_from(id);
        }
    }
}

pub(super) fn log_call_end(t: &Table, parties: &[ClientId]) {
    for &party in parties {
        if let Some(c) = t.clients.get(&party) {
            let s = c.conn.outbox.stats();
            if s.video_dropped + s.audio_dropped > 0 {
                crate::log!(
                    Info,
                    "{party}: received {} video, {} audio; dropped {} video, {} audio; {} keyframe requests",
                    s.video_queued,
                    s.audio_queued,
                    s.video_dropped,
                    s.audio_dropped,
                    s.keyframe_requests
                );
            }
            if s.video_spliced + s.video_spilled > 0 {
                crate::log!(
                    Info,
                    "{party}: {} video frames spliced, {} of them finished by the writer",
                    s.video_spliced + s.video_spilled,
                    s.video_spilled
                );
            }
        }
    }
}
