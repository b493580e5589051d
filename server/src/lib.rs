//! Komunikator's call server, in the shape of the original brief: an accept
//! loop, one thread per client running `handle_client`, the `clients` table
//! behind a `Mutex`, and `handle_connection` relaying a call's media.
//!
//! Data flows one way. Bytes come in on a client's session thread
//! ([`session`]), the protocol crate turns them into commands, the
//! [`registry`] turns commands into state changes and queued replies, and only
//! each client's own writer thread ([`outbox`]) touches its socket for
//! writing. Media takes a shorter path: [`relay`] queues it straight on the
//! peer's outbox, where the drop policy keeps latency bounded.

pub mod auth;
pub mod call;
pub mod cluster;
pub mod config;
pub mod fdlimit;
pub mod feedback;
pub mod floods;
pub mod gate;
pub mod listener;
pub mod log;
pub mod outbox;
pub mod pacing;
pub mod registry;
pub mod relay;
pub mod room;
pub mod session;
pub mod splice;
pub mod throttle;
pub mod transport;

pub use config::Config;
pub use listener::{Server, Shared, StartError};

/// Stack size of every per-client thread. They parse lines and copy frames,
/// nothing deep; a small stack keeps thousands of idle clients cheap.
pub const THREAD_STACK: usize = 128 << 10;
