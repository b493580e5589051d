//! Invitations across nodes. A call lives on one node; to invite a user of
//! another, that node asks the user's home node to carry the user to it
//! (`pull`). The home node checks what it alone knows (the user is free,
//! has group calls on, has not blocked the inviter, is within its ring
//! limits), carries the user there as for a call (`open`), and answers
//! `pulled`; the invitation then rings on the stand-in like any other.
//! Otherwise it answers `refuse`. The inviter's session thread asks; the
//! cluster thread handles the answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use komunikator_protocol::ClientId;

use super::wire::{Bus, Refusal};
use super::{Cluster, lock};
use crate::room::RoomId;

/// Requests kept waiting for an answer at most; older ones are forgotten
/// (the invitation itself ends with the ring timeout).
const MAX_PULLS: usize = 256;
const PULL_KEPT: Duration = Duration::from_secs(120);

/// An invitation waiting for the invitee's node: inviter, call, invitee.
pub(super) type Pending = (ClientId, RoomId, ClientId, Instant);

impl Cluster {
    /// Asks `node` to carry `invitee` here for `inviter` (called `nick`)'s
    /// invitation into `room`. `false` when nothing more can be asked now.
    pub fn pull(
        &self,
        node: &str,
        invitee: ClientId,
        (inviter, nick): (ClientId, Option<&str>),
        room: RoomId,
    ) -> bool {
        let pid = self.tid();
        {
            let mut pulls = lock(&self.pulls);
            pulls.retain(|_, p| p.3.elapsed() < PULL_KEPT);
            if pulls.len() >= MAX_PULLS {
                return false;
            }
            pulls.insert(pid, (inviter, room, invitee, Instant::now()));
        }
        self.send_to(node, &Bus::Pull { from: &self.node, pid, user: invitee, inviter, nick })
    }

    /// `pull`: node `from` invites our `user` into a call there.
    pub(super) fn on_pull(
        self: &Arc<Self>,
        from: &str,
        pid: u64,
        user: ClientId,
        (inviter, nick): (ClientId, Option<&str>),
    ) {
        let Some(shared) = self.shared() else { return };
        let why = match shared.registry.carry_for_invite(user, (inviter, nick)) {
            Ok((conn, nick, group)) => match self.tunnel_out(&conn, from, (nick.as_deref(), group), None) {
                Some(tid) => {
                    // The way its `open` went, so that it comes first.
                    self.send_via(from, self.route_of(tid), &Bus::Pulled { from: &self.node, pid, tid });
                    return;
                }
                None => {
                    shared.registry.tunnel_ended(user, 0, false);
                    Refusal::Busy
                }
            },
            Err(why) => why,
        };
        self.send_to(from, &Bus::Refuse { from: &self.node, pid, why });
    }

    /// `pulled`: the invitee of request `pid` is carried here; ring it.
    pub(super) fn on_pulled(&self, pid: u64) {
        let Some((inviter, room, invitee, _)) = lock(&self.pulls).remove(&pid) else { return };
        if let Some(shared) = self.shared() {
            shared.registry.invite_carried(inviter, room, invitee);
        }
    }

    /// `refuse`: the invitee of request `pid` cannot come.
    pub(super) fn on_refuse(&self, pid: u64, why: Refusal) {
        let Some((inviter, room, invitee, _)) = lock(&self.pulls).remove(&pid) else { return };
        if let Some(shared) = self.shared() {
            shared.registry.invite_refused(inviter, room, invitee, why);
        }
    }
}
