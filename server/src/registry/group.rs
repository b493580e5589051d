//! Group calls in the client table: `features`, `invite`, answering an
//! invitation, and leaving a call of any size (a two-party call is a room of
//! two). Like the rest of the registry, these run under the registry lock,
//! on the session thread of the client whose command it is, or on the
//! housekeeping thread for expired invitations.
//!
//! The consent rule is the two-party one: an invited client is asked exactly
//! as a callee is (`ask`, the ring limits, blocks, the ring timeout), and
//! gets nothing of the call before its own `ask yes`.

use std::time::{Duration, Instant};

use komunikator_protocol::{
    ClientId, DeclineReason, ErrorCode, FEATURE_GROUP, ServerMsg, StopReason, Target,
};

use super::{
    Call, Conn, Registry, Table, admit_ring, broadcast_presence, link, log_call_end, resolve_other, unlink,
};
use crate::room::{Invite, RoomId};

/// `features <list>`: group calls on or off. Only outside a call, since the
/// form of what the other parties' lines look like is fixed when they link.
pub(super) fn features(t: &mut Table, conn: &Conn, list: &str) {
    let Some(c) = t.clients.get_mut(&conn.id) else { return };
    if !c.call.is_idle() {
        conn.send_error(ErrorCode::Busy, "features can change only outside a call");
        return;
    }
    c.group = list.split(' ').any(|f| f == FEATURE_GROUP);
    conn.send(&ServerMsg::OkFeatures(if c.group { FEATURE_GROUP } else { "" }));
}

impl Registry {
    /// `invite <target>` from `conn`, a party of a call.
    pub(super) fn invite(&self, t: &mut Table, conn: &Conn, target: Target<'_>) {
        let now = Instant::now();
        let id = conn.id;
        let Some(me) = t.clients.get_mut(&id) else { return };
        if !me.connects.take(now) {
            conn.send_error(ErrorCode::RateLimited, "too many connect or invite commands; wait a second");
            return;
        }
        let (Call::InCall { room }, group) = (me.call, me.group) else {
            conn.send_error(ErrorCode::NotInCall, "invite someone into a call you are in");
            return;
        };
        if let Err((code, text)) = self.room_open_to_invites(t, id, room, group) {
            conn.send_error(code, &text);
            return;
        }
        if super::resolve(t, target).is_err() {
            if let Some(elsewhere) = self.cluster().and_then(|c| c.find(target)) {
                return self.invite_elsewhere(t, conn, room, elsewhere, now);
            }
        }
        let Some(invitee) = resolve_other(t, conn, target, "you cannot invite yourself") else { return };
        if !t.clients.get(&invitee).is_some_and(|c| c.group) {
            conn.send_error(ErrorCode::NotSupported, "that client cannot take part in group calls");
            return;
        }
        if !admit_ring(self.ring_limits(), t, (id, invitee), now) {
            return;
        }
        ring(t, conn, room, invitee, now);
    }

    /// Whether member `id` (with group calls on when `group`) may invite
    /// someone into `room` now; otherwise the error to answer.
    fn room_open_to_invites(
        &self,
        t: &Table,
        id: ClientId,
        room: RoomId,
        group: bool,
    ) -> Result<(), (ErrorCode, String)> {
        let Some(r) = t.rooms.get(room) else {
            return Err((ErrorCode::NotInCall, "invite someone into a call you are in".into()));
        };
        if !group {
            return Err((ErrorCode::NotSupported, "send features group before inviting".into()));
        }
        if r.invites.iter().any(|i| i.inviter == id) {
            return Err((ErrorCode::Busy, "your last invitation is still ringing".into()));
        }
        let max = self.config.max_room as usize;
        if r.seats_taken() >= max {
            return Err((
                ErrorCode::RoomFull,
                format!("a call has at most {max} people, invitations included"),
            ));
        }
        if let Some(old) = r.members.iter().find(|m| !t.clients.get(m).is_some_and(|c| c.group)) {
            return Err((
                ErrorCode::NotSupported,
                format!("{old} in your call cannot take part in group calls"),
            ));
        }
        Ok(())
    }
}

/// Rings `invitee` on behalf of `conn`, a member of `room`: the invitee
/// gets `ask <inviter> <nick>` and a `with` line for every other member, as
/// one unit; the inviter gets `inviting <invitee>`.
pub(super) fn ring(t: &mut Table, conn: &Conn, room: RoomId, invitee: ClientId, now: Instant) {
    let id = conn.id;
    let Some(r) = t.rooms.get_mut(room) else { return };
    r.invites.push(Invite { inviter: id, invitee, since: now });
    let others: Vec<ClientId> = r.others(id).collect();
    let mut lines = Vec::with_capacity(64 * (1 + others.len()));
    let nick_of = |who: &ClientId| t.clients.get(who).and_then(|c| c.nick.as_deref());
    ServerMsg::Ask { id, nick: nick_of(&id) }.encode(&mut lines);
    for other in &others {
        ServerMsg::With { id: *other, nick: nick_of(other) }.encode(&mut lines);
    }
    let Some(c) = t.clients.get_mut(&invitee) else { return };
    c.call = Call::Asked { caller: id, since: now, room: Some(room) };
    c.conn.outbox.push_control(lines);
    conn.send(&ServerMsg::Inviting(invitee));
    crate::log!(Info, "{id} invites {invitee} into a call of {}", others.len() + 1);
    broadcast_presence(t, invitee);
}

/// `ask yes` or `ask no` from `conn`, invited into `room`.
pub(super) fn answer_invite(t: &mut Table, conn: &Conn, room: RoomId, yes: bool) {
    if !yes {
        decline(t, conn.id, room, DeclineReason::No);
        return;
    }
    let invitee = conn.id;
    let Some(r) = t.rooms.get_mut(room) else { return };
    let Some(invite) = r.take_invite(invitee) else { return };
    // The inviter first: the newcomer's `start` names it.
    let mut members = vec![invite.inviter];
    members.extend(r.others(invite.inviter));
    r.members.push(invitee);
    if let Some(c) = t.clients.get_mut(&invitee) {
        c.call = Call::InCall { room };
        c.conn.outbox.start_call();
    }
    link(t, conn, &members);
    crate::log!(Info, "{invitee} joined a call of {} on {}'s invitation", members.len(), invite.inviter);
}

/// The invitation of `invitee` into `room` ends without a join: it said no
/// (or `stop`), or its connection ended. The inviter gets `declined`.
pub(super) fn decline(t: &mut Table, invitee: ClientId, room: RoomId, why: DeclineReason) {
    let invite = t.rooms.get_mut(room).and_then(|r| r.take_invite(invitee));
    if let Some(c) = t.clients.get_mut(&invitee) {
        c.call = Call::Idle;
    }
    if let Some(inviter) = invite.and_then(|i| t.clients.get(&i.inviter)) {
        inviter.conn.send(&ServerMsg::Declined { id: invitee, reason: why });
    }
    crate::log!(Info, "{invitee}: invitation declined ({why})");
    broadcast_presence(t, invitee);
}

/// Ends every invitation that has rung for `timeout`: the invitee gets
/// `stop timeout`, the inviter `declined <invitee> timeout`.
pub(super) fn expire_invites(t: &mut Table, now: Instant, timeout: Duration) {
    for (room, invite) in t.rooms.expired_invites(now, timeout) {
        if let Some(c) = t.clients.get(&invite.invitee) {
            c.conn.send(&ServerMsg::Stop(StopReason::Timeout));
        }
        decline(t, invite.invitee, room, DeclineReason::Timeout);
    }
}

/// Member `id` leaves `room` (`stop`, or its connection ended). With two
/// or more members left the call goes on and they get `left <id>
/// <reason>`; with one, the call ends and it gets `stop <reason>`.
/// Invitations `id` made (all of them, if the call ends) are cancelled:
/// their invitees get `stop cancelled`.
pub(super) fn leave_room(t: &mut Table, id: ClientId, room: RoomId, reason: StopReason) {
    let (others, mut cancelled, ends) = match t.rooms.get_mut(room) {
        Some(r) => {
            r.members.retain(|m| *m != id);
            let cancelled = r.take_invites_by(id);
            (r.members.clone(), cancelled, r.members.len() < 2)
        }
        None => (Vec::new(), Vec::new(), true),
    };
    if ends {
        cancelled.extend(t.rooms.close(room).into_iter().flat_map(|r| r.invites));
    }
    unlink(t, id, &others);
    if let Some(c) = t.clients.get_mut(&id) {
        c.call = Call::Idle;
    }
    for other in &others {
        let Some(c) = t.clients.get_mut(other) else { continue };
        if ends {
            c.call = Call::Idle;
            c.conn.send(&ServerMsg::Stop(reason));
        } else {
            c.conn.send(&ServerMsg::Left { id, reason });
        }
    }
    if ends {
        for other in &others {
            unlink(t, *other, &[]);
            crate::log!(Info, "{id} -> {other}: call ended ({})", reason.as_str());
        }
        log_call_end(t, &[[id].as_slice(), &others].concat());
    } else {
        crate::log!(Info, "{id} left a call, {} go on ({})", others.len(), reason.as_str());
    }
    for invite in cancelled {
        if let Some(c) = t.clients.get_mut(&invite.invitee) {
            c.call = Call::Idle;
            c.conn.send(&ServerMsg::Stop(StopReason::Cancelled));
        }
        broadcast_presence(t, invite.invitee);
    }
    broadcast_presence(t, id);
    if ends {
        others.iter().for_each(|o| broadcast_presence(t, *o));
    }
}
