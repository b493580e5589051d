//! Rooms: who is in one call together, and who is being invited into it.
//! A two-party call is a room of two; a group call grows by invitation
//! (`invite`, docs/PROTOCOL.md "Group calls") and ends when one member is
//! left. Plain bookkeeping without I/O: the registry owns the [`Rooms`] in
//! its table and changes them only under its lock (on session threads and
//! the housekeeping thread).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use komunikator_protocol::ClientId;

/// A room's number, unique for the server's lifetime.
pub type RoomId = u64;

/// An invitation that is ringing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invite {
    /// The member who invited.
    pub inviter: ClientId,
    /// The client being asked.
    pub invitee: ClientId,
    /// When it started ringing.
    pub since: Instant,
}

/// One call.
#[derive(Debug, Default)]
pub struct Room {
    /// The parties, in the order they joined.
    pub members: Vec<ClientId>,
    /// Invitations ringing; each holds a seat.
    pub invites: Vec<Invite>,
}

impl Room {
    /// Members and ringing invitations: what the room size limit counts.
    pub fn seats_taken(&self) -> usize {
        self.members.len() + self.invites.len()
    }

    /// The members other than `id`.
    pub fn others(&self, id: ClientId) -> impl Iterator<Item = ClientId> + '_ {
        self.members.iter().copied().filter(move |m| *m != id)
    }

    /// Removes and returns the invitation of `invitee`.
    pub fn take_invite(&mut self, invitee: ClientId) -> Option<Invite> {
        let at = self.invites.iter().position(|i| i.invitee == invitee)?;
        Some(self.invites.remove(at))
    }

    /// Removes and returns the invitations `inviter` made.
    pub fn take_invites_by(&mut self, inviter: ClientId) -> Vec<Invite> {
        let (by, rest) = self.invites.drain(..).partition(|i| i.inviter == inviter);
        self.invites = rest;
        by
    }
}

/// Every call of the server.
#[derive(Debug, Default)]
pub struct Rooms {
    next: RoomId,
    rooms: HashMap<RoomId, Room>,
}

impl Rooms {
    /// Opens a room with these members.
    pub fn open(&mut self, members: Vec<ClientId>) -> RoomId {
        self.next += 1;
        self.rooms.insert(self.next, Room { members, invites: Vec::new() });
        self.next
    }

    /// The room `id`, if it is open.
    pub fn get(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(&id)
    }

    /// The room `id`, if it is open, to change.
    pub fn get_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(&id)
    }

    /// Closes room `id`, returning what was left of it.
    pub fn close(&mut self, id: RoomId) -> Option<Room> {
        self.rooms.remove(&id)
    }

    /// Invitations that have rung for `timeout` or longer by `now`.
    pub fn expired_invites(&self, now: Instant, timeout: Duration) -> Vec<(RoomId, Invite)> {
        let mut out = Vec::new();
        for (id, room) in &self.rooms {
            let old = room.invites.iter().filter(|i| now.duration_since(i.since) >= timeout);
            out.extend(old.map(|i| (*id, *i)));
        }
        out
    }

    /// How many rooms are open.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no room is open.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ClientId {
        ([10, 0, 0, n], 1).into()
    }

    #[test]
    fn invitations_hold_seats_until_taken() {
        let mut rooms = Rooms::default();
        let r = rooms.open(vec![id(1), id(2)]);
        let now = Instant::now();
        let room = rooms.get_mut(r).unwrap();
        room.invites.push(Invite { inviter: id(1), invitee: id(3), since: now });
        room.invites.push(Invite { inviter: id(2), invitee: id(4), since: now });
        assert_eq!(room.seats_taken(), 4);
        assert_eq!(room.others(id(1)).collect::<Vec<_>>(), [id(2)]);
        assert_eq!(room.take_invites_by(id(1)).len(), 1);
        assert_eq!(room.take_invite(id(4)).map(|i| i.inviter), Some(id(2)));
        assert_eq!(room.seats_taken(), 2);
        let later = now + Duration::from_secs(30);
        rooms.get_mut(r).unwrap().invites.push(Invite { inviter: id(1), invitee: id(5), since: now });
        assert_eq!(rooms.expired_invites(later, Duration::from_secs(30)).len(), 1);
        assert_eq!(rooms.expired_invites(now, Duration::from_secs(30)).len(), 0);
        assert!(rooms.close(r).is_some() && rooms.is_empty());
    }
}
