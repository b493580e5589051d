//! What a server can make the engine hold: the backlogs between the
//! `receive` thread, the control thread and the user interface, and their caps.
//!
//! A server may send lines faster than the client handles them (a flood of
//! `presence`, `msg` or unreadable lines), and a user interface may fall
//! behind. Nothing between the socket and the interface may then grow without
//! bound:
//! * [`NetGate`] makes the `receive` thread wait before it hands over a
//!   server message while [`NET_BACKLOG`] of them are still unhandled by the
//!   control thread, or while [`EVENT_BACKLOG`] events wait for the interface.
//!   While it waits it does not read the socket, so TCP flow control slows the
//!   server down. Nothing is dropped: call-state lines (`ask`, `start`,
//!   `stop`) are delayed behind the flood, never lost. A `clients` list may
//!   hold 10,000 entries, so it counts as more: it waits until the control
//!   thread has nothing left and at most [`LIST_BACKLOG`] events wait for the
//!   interface, so that only a few lists are ever held at once.
//! * [`Outbox`] is the control thread's side of the event channel. Events
//!   that do not come from server lines (media warnings, which a peer's bad
//!   video can cause on every frame) are not gated, so past [`EVENT_CAP`]
//!   waiting events it drops notices and media problems, counts them, and
//!   says how many once the interface has caught up. Every other event
//!   (call state, presence, chat, the end of the connection) is always sent.
//!
//! The gate is used from the `receive` thread ([`NetGate::admit`]) and the
//! control thread ([`NetGate::taken`], [`NetGate::close`]); the outbox only
//! from the control thread.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::Event;
use crate::net::NetEvent;

/// Server messages handed to the control thread and not yet handled.
pub const NET_BACKLOG: usize = 64;
/// Events waiting for the user interface above which the socket is not read.
pub const EVENT_BACKLOG: usize = 256;
/// Events waiting for the user interface above which a `clients` list is not
/// handed over.
pub const LIST_BACKLOG: usize = 8;
/// Events waiting for the user interface above which notices and media
/// problems are dropped (and counted).
pub const EVENT_CAP: usize = 4096;
/// How often a waiting `receive` thread looks at the interface's backlog,
/// which drains without telling it.
const RECHECK: Duration = Duration::from_millis(20);

/// Backpressure from the control thread and the interface to the `receive` thread.
#[derive(Debug)]
pub struct NetGate {
    state: Mutex<GateState>,
    changed: Condvar,
    events: async_channel::Sender<Event>,
}

#[derive(Debug)]
struct GateState {
    in_flight: usize,
    open: bool,
}

impl NetGate {
    /// A gate that watches the backlog of `events`.
    pub fn new(events: async_channel::Sender<Event>) -> NetGate {
        NetGate { state: Mutex::new(GateState { in_flight: 0, open: true }), changed: Condvar::new(), events }
    }

    /// Waits until `event` may be handed to the control thread, and counts it.
    /// The end of the connection never waits: the `writer` thread reports it
    /// too, and the control thread may be waiting for that thread.
    pub fn admit(&self, event: &NetEvent) {
        if matches!(event, NetEvent::Closed(_)) {
            return;
        }
        let (net, ui) = match event {
            NetEvent::Clients(_) => (1, LIST_BACKLOG),
            _ => (NET_BACKLOG, EVENT_BACKLOG),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.open && (state.in_flight >= net || self.ui_behind(ui)) {
            state = match self.changed.wait_timeout(state, RECHECK) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.in_flight += 1;
    }

    fn ui_behind(&self, backlog: usize) -> bool {
        !self.events.is_closed() && self.events.len() >= backlog
    }

    /// The control thread took one server message off its queue.
    pub fn taken(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_flight = state.in_flight.saturating_sub(1);
        self.changed.notify_one();
    }

    /// The control thread stops: from now on nothing waits.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).open = false;
        self.changed.notify_all();
    }
}

/// The control thread's sending half of the event channel.
#[derive(Debug)]
pub struct Outbox {
    events: async_channel::Sender<Event>,
    gate: Arc<NetGate>,
    dropped: std::cell::Cell<u64>,
}

impl Outbox {
    /// Sends on `events`; `gate` is the gate of the same connection.
    pub fn new(events: async_channel::Sender<Event>, gate: Arc<NetGate>) -> Outbox {
        Outbox { events, gate, dropped: std::cell::Cell::new(0) }
    }

    /// The gate of this connection.
    pub fn gate(&self) -> &NetGate {
        &self.gate
    }

    /// Sends `event`, or drops it if it is a notice or a media problem and
    /// [`EVENT_CAP`] events are waiting already.
    pub fn send(&self, event: Event) {
        let waiting = self.events.len();
        if waiting >= EVENT_CAP && matches!(event, Event::Notice(_) | Event::MediaProblem(_)) {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        let dropped = self.dropped.take();
        if dropped > 0 {
            let text = format!("{dropped} notices were dropped: the user interface fell behind");
            let _ = self.events.try_send(Event::Notice(text));
        }
        // Fails only when every receiver is gone: nobody is left to tell.
        let _ = self.events.try_send(event);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn the_gate_waits_for_the_control_thread_and_the_interface() {
        let (tx, rx) = async_channel::unbounded();
        let gate = Arc::new(NetGate::new(tx.clone()));
        for _ in 0..NET_BACKLOG {
            gate.admit(&NetEvent::Pong);
        }
        let g = gate.clone();
        let admitted = std::thread::spawn(move || {
            g.admit(&NetEvent::Pong);
            Instant::now()
        });
        std::thread::sleep(Duration::from_millis(100));
        let freed = Instant::now();
        gate.taken();
        assert!(admitted.join().unwrap() >= freed, "admitted before the control thread took one");
        // The interface is behind: wait until it reads.
        gate.taken();
        for _ in 0..EVENT_BACKLOG {
            tx.try_send(Event::Notice(String::new())).unwrap();
        }
        let g = gate.clone();
        let admitted = std::thread::spawn(move || {
            g.admit(&NetEvent::Pong);
            Instant::now()
        });
        std::thread::sleep(Duration::from_millis(100));
        let freed = Instant::now();
        rx.try_recv().unwrap();
        assert!(admitted.join().unwrap() >= freed, "admitted while the interface was behind");
        // A list waits until the control thread has taken everything.
        let g = gate.clone();
        let (t0, list) =
            (Instant::now(), std::thread::spawn(move || g.admit(&NetEvent::Clients(Vec::new()))));
        while !list.is_finished() && t0.elapsed() < Duration::from_millis(200) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!list.is_finished(), "a list was handed over while messages were in flight");
        for _ in 0..NET_BACKLOG {
            gate.taken();
        }
        while rx.len() >= LIST_BACKLOG {
            assert!(!list.is_finished(), "a list was handed over while the interface was behind");
            rx.try_recv().unwrap();
        }
        list.join().unwrap();
        // The end of the connection, and a closed gate, never wait.
        gate.admit(&NetEvent::Closed(String::new()));
        gate.close();
        for _ in 0..2 * NET_BACKLOG {
            gate.admit(&NetEvent::Pong);
        }
    }

    #[test]
    fn the_outbox_drops_only_notices_and_counts_them() {
        let (tx, rx) = async_channel::unbounded();
        let outbox = Outbox::new(tx.clone(), Arc::new(NetGate::new(tx)));
        for _ in 0..EVENT_CAP + 10 {
            outbox.send(Event::Notice("n".into()));
        }
        outbox.send(Event::MediaProblem("m".into()));
        outbox.send(Event::Message { from: None, text: "chat".into() });
        assert_eq!(rx.len(), EVENT_CAP + 2, "the count and the chat line are kept");
        let events: Vec<Event> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            events[EVENT_CAP],
            Event::Notice(format!("11 notices were dropped: {}", "the user interface fell behind"))
        );
        assert_eq!(events[EVENT_CAP + 1], Event::Message { from: None, text: "chat".into() });
    }
}
