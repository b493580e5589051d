//! The camera through the xdg-desktop-portal Camera interface and PipeWire:
//! asks the portal for access (`AccessCamera`, then the Response signal on
//! its Request object), opens the PipeWire remote it hands out
//! (`OpenPipeWireRemote`, a file descriptor), and lists the cameras PipeWire
//! shows on that remote. The first remote opened is kept, with its device
//! provider, for as long as the process runs ([`super::monitor`] says why);
//! every [`VideoIn`](super::VideoIn) of a portal camera shares it.
//!
//! Runs on the thread that resolves the [`MediaSetup`](super::MediaSetup)
//! (a worker thread in the window, the main thread in headless mode). The
//! D-Bus calls are blocking gio calls with timeouts; the Response signal is
//! dispatched to a private GLib main context this thread iterates until the
//! answer comes or its deadline passes, so nothing here can hang the client.
//!
//! Plain gio instead of the `ashpd` crate: ashpd talks D-Bus through zbus,
//! a second D-Bus stack with its own async executor, while these are three
//! calls and one signal on the gio connection the toolkit already has.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gio::prelude::*;
use gst::prelude::*;

const PORTAL: &str = "org.freedesktop.portal.Desktop";
const PORTAL_PATH: &str = "/org/freedesktop/portal/desktop";
const CAMERA: &str = "org.freedesktop.portal.Camera";
/// How long one D-Bus method call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the user has to answer the portal's "Turn on camera?" dialog.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long PipeWire may take to show the camera nodes on a new remote
/// (the session manager sets the remote's permissions after it connects).
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the portal gave no camera; each falls back to V4L2.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No session bus to find a portal on.
    #[error("no D-Bus session bus")]
    NoBus,
    /// No portal, or one without the Camera interface (a desktop without
    /// a portal backend), or an unreachable session bus.
    #[error("no camera portal on the session bus")]
    Absent,
    /// The portal says no camera is plugged in.
    #[error("the camera portal sees no camera")]
    NoCamera,
    /// The user (or the permission store) refused.
    #[error("the camera portal denied access")]
    Denied,
    /// The portal did not answer in time.
    #[error("the camera portal did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// A D-Bus call failed.
    #[error("the camera portal failed: {0}")]
    Failed(String),
    /// Fewer cameras than the index asks for.
    #[error("PipeWire shows {count} camera(s) through the portal, so there is no camera index {index}")]
    NoSuchCamera {
        /// The camera index asked for.
        index: u32,
        /// How many cameras PipeWire shows.
        count: usize,
    },
}

/// The PipeWire connection the portal opened for this process. Clones share
/// one descriptor, closed when the last clone goes; `pipewiresrc fd=N`
/// duplicates it for each pipeline, so pipelines can be rebuilt while it lives.
#[derive(Debug, Clone)]
pub struct PipeWireRemote(Arc<OwnedFd>);

impl PipeWireRemote {
    /// The descriptor, for `pipewiresrc fd=`.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl PartialEq for PipeWireRemote {
    fn eq(&self, other: &PipeWireRemote) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PipeWireRemote {}

/// A camera PipeWire shows on the portal's remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalCamera {
    /// The remote to capture on.
    pub remote: PipeWireRemote,
    /// The node's `object.serial`, for `pipewiresrc target-object=`.
    pub serial: u64,
    /// The node's description, for people.
    pub name: String,
}

/// Asks the portal for the camera and returns camera number `index` (in
/// PipeWire's order of appearance) on the remote it opens.
///
/// # Errors
/// [`PortalError`] when there is no portal, no camera, no permission, or no
/// answer in time.
pub fn open_camera(index: u32) -> Result<PortalCamera, PortalError> {
    let mut cameras = cameras()?;
    let count = cameras.len();
    if (index as usize) >= count {
        return Err(PortalError::NoSuchCamera { index, count });
    }
    Ok(cameras.swap_remove(index as usize))
}

/// Asks the portal for the camera and lists every camera on the remote it
/// opens, in the order [`open_camera`] numbers them. Each clone shares one
/// remote. The portal may ask the user first. The remote, once opened, is
/// kept for the process with its device provider (see [`super::monitor`]):
/// later calls list its cameras as they are now, without asking again.
///
/// # Errors
/// As [`open_camera`], without [`PortalError::NoSuchCamera`].
pub fn cameras() -> Result<Vec<PortalCamera>, PortalError> {
    if !session_bus_configured() {
        return Err(PortalError::NoBus);
    }
    super::monitor::with_portal_provider(|slot| {
        if let Some(open) = slot {
            return Ok(cameras_of(&open.provider, &open.remote));
        }
        let context = glib::MainContext::new();
        let remote = context
            .with_thread_default(|| open_remote(&context))
            .map_err(|e| PortalError::Failed(e.to_string()))??;
        let provider = start_provider(&remote)?;
        let deadline = Instant::now() + LIST_TIMEOUT;
        let mut cameras = cameras_of(&provider, &remote);
        while cameras.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            cameras = cameras_of(&provider, &remote);
        }
        *slot = Some(super::monitor::RemoteProvider { remote, provider });
        Ok(cameras)
    })
}

/// Whether gio would find a session bus without autolaunching one.
fn session_bus_configured() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists())
}

/// `IsCameraPresent`, `AccessCamera` and its answer, then `OpenPipeWireRemote`.
/// Runs with `context` as this thread's default, so the Response signal
/// arrives there.
fn open_remote(context: &glib::MainContext) -> Result<PipeWireRemote, PortalError> {
    let bus =
        gio::bus_get_sync(gio::BusType::Session, gio::Cancellable::NONE).map_err(|_| PortalError::Absent)?;
    let present =
        call(&bus, "org.freedesktop.DBus.Properties", "Get", &(CAMERA, "IsCameraPresent").to_variant())
            .map_err(|e| match dbus_error(&e) {
                timeout @ PortalError::Timeout(_) => timeout,
                _ => PortalError::Absent,
            })?;
    let present = present.child_value(0).as_variant().and_then(|v| v.get::<bool>());
    if present != Some(true) {
        return Err(PortalError::NoCamera);
    }
    access_camera(&bus, context)?;
    let options = glib::VariantDict::new(None).end();
    let (reply, fds) = bus
        .call_with_unix_fd_list_sync(
            Some(PORTAL),
            PORTAL_PATH,
            CAMERA,
            "OpenPipeWireRemote",
            Some(&glib::Variant::tuple_from_iter([options])),
            None,
            gio::DBusCallFlags::NONE,
            millis(CALL_TIMEOUT),
            gio::UnixFDList::NONE,
            gio::Cancellable::NONE,
        )
        .map_err(|e| dbus_error(&e))?;
    let handle = reply.child_value(0).get::<glib::variant::Handle>().map(|h| h.0);
    let fd = match (handle, fds) {
        (Some(h), Some(fds)) => fds.get(h).map_err(|e| PortalError::Failed(e.to_string()))?,
        _ => return Err(PortalError::Failed("OpenPipeWireRemote returned no descriptor".into())),
    };
    Ok(PipeWireRemote(Arc::new(fd)))
}

/// `AccessCamera`, and waits for the Request's Response: 0 is granted.
fn access_camera(bus: &gio::DBusConnection, context: &glib::MainContext) -> Result<(), PortalError> {
    let token = format!("komunikator_{}_{}", std::process::id(), super::next_generation());
    let (tx, rx) = mpsc::channel::<(String, u32)>();
    // Subscribed before the call, for every Request path: the portal may
    // answer before the call returns the path it used.
    let _subscription = bus.subscribe_to_signal(
        Some(PORTAL),
        Some("org.freedesktop.portal.Request"),
        Some("Response"),
        None,
        None,
        gio::DBusSignalFlags::NONE,
        move |signal| {
            if let Some(code) = signal.parameters.child_value(0).get::<u32>() {
                let _ = tx.send((signal.object_path.to_string(), code));
            }
        },
    );
    let options = glib::VariantDict::new(None);
    options.insert("handle_token", &token);
    let args = glib::Variant::tuple_from_iter([options.end()]);
    let reply = call(bus, CAMERA, "AccessCamera", &args).map_err(|e| dbus_error(&e))?;
    let Some(path) = reply.child_value(0).get::<glib::variant::ObjectPath>() else {
        return Err(PortalError::Failed("AccessCamera returned no request path".into()));
    };
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while Instant::now() < deadline {
        while context.iteration(false) {}
        while let Ok((from, code)) = rx.try_recv() {
            if from == path.as_str() {
                return if code == 0 { Ok(()) } else { Err(PortalError::Denied) };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Take the unanswered question off the screen.
    let _ = bus.call_sync(
        Some(PORTAL),
        path.as_str(),
        "org.freedesktop.portal.Request",
        "Close",
        None,
        None,
        gio::DBusCallFlags::NONE,
        millis(CALL_TIMEOUT),
        gio::Cancellable::NONE,
    );
    Err(PortalError::Timeout(ANSWER_TIMEOUT))
}

/// One method call on the portal object.
fn call(
    bus: &gio::DBusConnection,
    interface: &str,
    method: &str,
    args: &glib::Variant,
) -> Result<glib::Variant, glib::Error> {
    bus.call_sync(
        Some(PORTAL),
        PORTAL_PATH,
        interface,
        method,
        Some(args),
        None,
        gio::DBusCallFlags::NONE,
        millis(CALL_TIMEOUT),
        gio::Cancellable::NONE,
    )
}

fn dbus_error(e: &glib::Error) -> PortalError {
    if e.matches(gio::IOErrorEnum::TimedOut) {
        return PortalError::Timeout(CALL_TIMEOUT);
    }
    let text = e.to_string();
    if text.contains("NotAllowed") || text.contains("Permission denied") {
        PortalError::Denied
    } else {
        PortalError::Failed(text)
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// GStreamer's PipeWire device provider, started on `remote`; never to be
/// stopped (see [`super::monitor`]).
fn start_provider(remote: &PipeWireRemote) -> Result<gst::DeviceProvider, PortalError> {
    super::init().map_err(|e| PortalError::Failed(e.to_string()))?;
    let provider = gst::DeviceProviderFactory::by_name("pipewiredeviceprovider")
        .ok_or_else(|| PortalError::Failed("GStreamer's PipeWire plugin is not installed".into()))?;
    if provider.find_property("fd").is_none() {
        return Err(PortalError::Failed("GStreamer's PipeWire device provider takes no fd".into()));
    }
    provider.set_property("fd", remote.fd());
    provider.start().map_err(|e| PortalError::Failed(format!("PipeWire: {e}")))?;
    Ok(provider)
}

/// The cameras (`media.class` Video/Source, `media.role` Camera) `provider`
/// shows on `remote`, oldest node first.
fn cameras_of(provider: &gst::DeviceProvider, remote: &PipeWireRemote) -> Vec<PortalCamera> {
    let mut cameras: Vec<PortalCamera> = provider
        .devices()
        .iter()
        .filter(|d| d.has_classes("Video/Source"))
        .filter_map(|d| {
            let props = d.properties()?;
            let role = props.get::<&str>("media.role").ok()?;
            if role != "Camera" {
                return None;
            }
            let serial = d.property_value("serial").get::<u64>().ok()?;
            Some(PortalCamera { remote: remote.clone(), serial, name: d.display_name().to_string() })
        })
        .collect();
    cameras.sort_by_key(|c| c.serial);
    cameras
}

/// Stamps what `pipewiresrc` captures with the pipeline's clock. PipeWire
/// 0.3.65's source subtracts the pipeline's base time from PipeWire's own
/// (monotonic) timestamps, which under a real-time pipeline clock gives
/// every picture time 0, so all but the first would be dropped as
/// duplicates. The arrival time on the pipeline's clock is the capture time
/// a V4L2 source would give, whichever clock the pipeline runs on.
pub(super) fn stamp_pipewire_sources(pipeline: &gst::Pipeline) {
    let sources = pipeline
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.factory().is_some_and(|f| f.name() == "pipewiresrc"));
    for source in sources {
        let Some(pad) = source.static_pad("src") else { continue };
        pad.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
            let element = pad.parent_element();
            let clock = element.as_ref().and_then(|e| e.clock());
            let base = element.as_ref().and_then(|e| e.base_time());
            if let (Some(clock), Some(base), Some(buffer)) = (clock, base, info.buffer_mut()) {
                let now = clock.time().saturating_sub(base);
                let buffer = buffer.make_mut();
                buffer.set_pts(now);
                buffer.set_dts(now);
            }
            gst::PadProbeReturn::Ok
        });
    }
}
