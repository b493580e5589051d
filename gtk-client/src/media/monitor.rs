//! The process's device listings, each started once and never stopped: one
//! `GstDeviceMonitor` for cameras, microphones and speakers, and one
//! PipeWire device provider on the camera portal's remote.
//!
//! Why never stopped: stopping GStreamer's PipeWire device provider (the
//! PipeWire 0.3.65 plugin of Debian 12) lets its loop thread write into
//! memory the stop has freed. The heap is corrupted, and glibc aborts the
//! process later, anywhere ("corrupted size vs. prev_size in fastbins", or
//! "unaligned tcache chunk" when the thread that stopped it ends). Every
//! desktop with PipeWire has that provider in its device monitor, so a
//! monitor started and stopped per listing (as Preferences and the media
//! setup did) risked the window at every connection and every opening of
//! Preferences. A running monitor also keeps its list current, so a later
//! listing sees a camera plugged in meanwhile.
//!
//! Any thread may call these; the first call starts what it needs. Device
//! messages on the monitor's bus are dropped unread (nobody waits for
//! them, and they would pile up).

use std::sync::{Mutex, OnceLock, PoisonError};

use gst::prelude::*;

/// The device classes the monitor watches.
const CLASSES: [&str; 3] = ["Video/Source", "Audio/Source", "Audio/Sink"];

static MONITOR: OnceLock<Option<gst::DeviceMonitor>> = OnceLock::new();

/// The devices of `class` (one of "Video/Source", "Audio/Source",
/// "Audio/Sink") GStreamer's device monitor lists now; empty when
/// GStreamer cannot start one.
pub fn devices(class: &str) -> Vec<gst::Device> {
    let monitor = MONITOR.get_or_init(start_monitor);
    let Some(monitor) = monitor else { return Vec::new() };
    monitor.devices().into_iter().filter(|d| d.has_classes(class)).collect()
}

fn start_monitor() -> Option<gst::DeviceMonitor> {
    super::init().ok()?;
    let monitor = gst::DeviceMonitor::new();
    for class in CLASSES {
        monitor.add_filter(Some(class), None)?;
    }
    monitor.bus().set_sync_handler(|_, _| gst::BusSyncReply::Drop);
    monitor.start().ok()?;
    Some(monitor)
}

/// A PipeWire device provider on one remote: kept for as long as the
/// process runs (see the module's documentation).
pub(super) struct RemoteProvider {
    /// The remote it lists (and the pipelines capture on).
    pub remote: super::portal::PipeWireRemote,
    /// Started on `remote`, never stopped.
    pub provider: gst::DeviceProvider,
}

/// The provider on the portal's remote, once one was opened.
static PORTAL: Mutex<Option<RemoteProvider>> = Mutex::new(None);

/// Runs `f` on the portal remote's provider, `None` when there is none yet,
/// holding the lock (so two listings never open two remotes).
pub(super) fn with_portal_provider<T>(f: impl FnOnce(&mut Option<RemoteProvider>) -> T) -> T {
    let mut slot = PORTAL.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut slot)
}
