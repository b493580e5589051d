//! Komunikator's client core: everything a call needs except the window.
//!
//! # Architecture: one-way data flow over message passing
//!
//! ```text
//!  socket ──► net::receive thread ──► Input::Net ──┐
//!                  │ media frames                   │
//!                  ▼                                ▼
//!            media::FrameRoute ─► appsrc    engine control thread ──► Event (async-channel) ──► GUI / headless
//!                                                   │  owns CallState (call.rs) and CallMedia (media/)
//!  appsink ─► send_video / send_audio threads ──► net::Writer (bounded channel) ──► writer thread ──► socket
//! ```
//!
//! * [`net`] owns the socket: one `receive` thread that splits the stream with
//!   `komunikator-protocol`'s [`Decoder`](komunikator_protocol::Decoder), and one
//!   writer thread fed by a bounded channel, so lines and frames never interleave.
//! * [`media`] owns the GStreamer pipelines and imports no widgets. Encoded frames
//!   go from the sending appsinks straight to the writer; received frames go from
//!   the receive thread straight into the receiving appsrcs.
//! * [`call`] is the call state machine as this client sees it: pure, no I/O.
//! * [`engine`] runs the control thread, the only consumer of network and media
//!   events, and publishes [`engine::Event`]s on an async-channel that a GTK main
//!   loop can `recv().await`, or that [`headless`] reads with `recv_blocking`.
//!   When the control thread or the reader of that channel falls behind, the
//!   receive thread stops reading the socket ([`engine::bounds`]), so no queue
//!   grows with the server's rate.
//! * [`text`] escapes the bidi and invisible characters of peer-controlled text
//!   for display.
//!
//! No GObject crosses into the event channel: events carry plain Rust data.

pub mod call;
pub mod cli;
pub mod config;
pub mod engine;
pub mod headless;
pub mod history;
pub mod media;
pub mod net;
pub mod text;
pub mod ui;

pub use call::{CallState, EndReason};
pub use engine::{Engine, EngineError, EngineHandle, EngineOptions, Event};
pub use media::{MediaOptions, SinkFactory, StatsSnapshot};
