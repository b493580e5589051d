//! Rates of a live call over TCP: what the kernel says about a socket
//! ([`tcp`]), how fast the far end drains it ([`drain`]), and which video
//! bitrate and picture size a sender should use ([`controller`]).
//!
//! Nothing here starts a thread. [`tcp::sample`] is one non-blocking
//! `getsockopt`; the estimator and the controller are plain state machines
//! fed with samples and instants by their owner: the server's writer thread
//! for a receiver (its pacer), the client's writer thread for its own uplink.
//! That keeps them unit-testable with made-up clocks.

pub mod controller;
pub mod drain;
pub mod tcp;

pub use controller::{Controller, Decision, Limit, Observation, Rung, ladder};
pub use drain::DrainEstimator;
pub use tcp::{Sample, sample, set_notsent_lowat};
