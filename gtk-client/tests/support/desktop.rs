//! A private desktop session for the camera portal tests: its own D-Bus
//! session bus, PipeWire, WirePlumber, xdg-permission-store and
//! xdg-desktop-portal, all under a private `XDG_RUNTIME_DIR`, with virtual
//! cameras (SPA's `videotestsrc` nodes inside PipeWire, each a `Video/Source`
//! with `media.role=Camera`, showing colour bars). A client started with
//! [`Desktop::client_env`] is on that session bus. Runs on the test's thread;
//! the daemons are child processes, stopped when the [`Desktop`] is dropped.
//!
//! What the session needs for xdg-desktop-portal 1.16 to serve a host
//! (unsandboxed) process:
//! - an `org.freedesktop.impl.portal.Access` backend listed in a `.portal`
//!   file (`XDG_DESKTOP_PORTAL_DIR`): 1.16 only exports the Camera interface
//!   when one exists. Ours names a bus name nobody owns: it is never called,
//!   because
//! - the permission store already answers: table `devices`, id `camera`, app
//!   `""` (how 1.16 names every host process) set to `yes`, as the backend's
//!   "Allow" would have stored it. With `no` there, the portal denies.
//! - PipeWire and WirePlumber on the same session bus: PipeWire's portal
//!   module marks the portal's remotes, and WirePlumber's access-portal script
//!   gives a host app's remote every node.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gio::prelude::*;

/// How long the session's daemons may take to come up.
const SETTLE: Duration = Duration::from_secs(20);

/// The name (and description) of the first virtual camera.
pub const CAMERA: &str = "komunikator-test-camera";

/// A private desktop session; its daemons are stopped and its files removed
/// when dropped.
pub struct Desktop {
    dir: PathBuf,
    /// `DBUS_SESSION_BUS_ADDRESS` of its bus.
    address: OsString,
    /// Started in order, stopped in reverse.
    children: Vec<(&'static str, Child)>,
}

const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=BUS_PATH</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// Camera nodes inside the PipeWire daemon, one per name, in that order:
/// SPA's videotestsrc (SMPTE colour bars, 640x480 at 30 fps, timestamped),
/// shown as a camera. A `pipewiresink mode=provide` node fed by
/// `gst-launch-1.0` was tried first: its pictures arrived without
/// timestamps, and here it often stopped serving new consumers once one had
/// left.
fn virtual_cameras(names: &[&str]) -> String {
    let objects: String = names
        .iter()
        .map(|name| {
            format!(
                "    {{ factory = adapter
      args = {{
          factory.name = videotestsrc
          node.name = {name}
          node.description = {name}
          media.class = Video/Source
          media.role = Camera
      }}
    }}
"
            )
        })
        .collect();
    format!(
        "context.spa-libs = {{
    videotestsrc = videotestsrc/libspa-videotestsrc
}}
context.objects = [
{objects}]
"
    )
}

const ACCESS_BACKEND: &str = "[portal]
DBusName=org.freedesktop.impl.portal.desktop.komunikatortest
Interfaces=org.freedesktop.impl.portal.Access;
UseIn=komunikator-test
";

impl Desktop {
    /// Starts the session with one camera, [`CAMERA`], and `permission`
    /// (`yes` or `no`) stored for a host app's camera; `None` (with the
    /// reason printed) when a program it needs is not installed.
    pub fn start(name: &str, permission: &str) -> Option<Desktop> {
        Desktop::with_cameras(name, permission, &[CAMERA])
    }

    /// [`Desktop::start`] with a camera per name, in that order (PipeWire's
    /// `object.serial` order, so camera index N is the Nth).
    pub fn with_cameras(name: &str, permission: &str, cameras: &[&str]) -> Option<Desktop> {
        let (portal, store) = programs()?;
        let mut desktop = Desktop::bus(name, cameras);
        desktop.spawn("xdg-permission-store", &mut Command::new(&store));
        let bus = desktop.connect();
        desktop.wait_for("the permission store", || {
            call(
                &bus,
                "org.freedesktop.impl.portal.PermissionStore",
                "/org/freedesktop/impl/portal/PermissionStore",
                "org.freedesktop.impl.portal.PermissionStore",
                "SetPermission",
                &("devices", true, "camera", "", vec![permission]).to_variant(),
            )
            .is_ok()
        });
        desktop.spawn("pipewire", &mut Command::new("pipewire"));
        desktop.wait_for("PipeWire", || desktop.path("run/pipewire-0").exists());
        desktop.spawn("wireplumber", &mut Command::new("wireplumber"));
        desktop.spawn("xdg-desktop-portal", &mut Command::new(&portal));
        desktop.wait_for("the portal to see the camera", || camera_present(&bus));
        Some(desktop)
    }

    /// The session's files (with `cameras` for PipeWire) and its bus.
    fn bus(name: &str, cameras: &[&str]) -> Desktop {
        let dir = super::test_dir(&format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let address = format!("unix:path={}", dir.join("run/bus").display()).into();
        let mut desktop = Desktop { dir, address, children: Vec::new() };
        desktop.prepare(cameras);
        desktop.spawn(
            "dbus-daemon",
            Command::new("dbus-daemon").arg("--nofork").arg("--config-file").arg(desktop.path("bus.conf")),
        );
        desktop.wait_for("the session bus", || desktop.path("run/bus").exists());
        desktop
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The directories and files the daemons read.
    fn prepare(&self, cameras: &[&str]) {
        for sub in ["run", "data", "config", "state", "portals"] {
            std::fs::create_dir_all(self.path(sub)).expect("create the session's directories");
        }
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(self.path("run"), private).expect("chmod the runtime dir");
        let bus_path = self.path("run/bus");
        let config = BUS_CONFIG.replace("BUS_PATH", &bus_path.to_string_lossy());
        std::fs::write(self.path("bus.conf"), config).expect("write bus.conf");
        std::fs::write(self.path("portals/komunikator-test.portal"), ACCESS_BACKEND)
            .expect("write the .portal file");
        let pipewire = self.path("config/pipewire/pipewire.conf.d");
        std::fs::create_dir_all(&pipewire).expect("create pipewire.conf.d");
        std::fs::write(pipewire.join("komunikator-test-cameras.conf"), virtual_cameras(cameras))
            .expect("write the cameras");
    }

    /// What every daemon of the session gets.
    fn env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = vec![
            ("XDG_RUNTIME_DIR", self.path("run").into_os_string()),
            ("XDG_DATA_HOME", self.path("data").into_os_string()),
            ("XDG_CONFIG_HOME", self.path("config").into_os_string()),
            ("XDG_STATE_HOME", self.path("state").into_os_string()),
            ("XDG_DESKTOP_PORTAL_DIR", self.path("portals").into_os_string()),
            ("XDG_CURRENT_DESKTOP", "komunikator-test".into()),
            ("GST_REGISTRY", super::gst_registry().into_os_string()),
        ];
        env.extend(self.client_env().into_iter().map(|(k, v)| (k, v.to_os_string())));
        env
    }

    /// Its `XDG_RUNTIME_DIR`, where its PipeWire socket is.
    pub fn runtime_dir(&self) -> PathBuf {
        self.path("run")
    }

    /// What the client needs to find this session.
    pub fn client_env(&self) -> Vec<(&'static str, &OsStr)> {
        vec![("DBUS_SESSION_BUS_ADDRESS", self.address.as_os_str())]
    }

    fn spawn(&mut self, what: &'static str, command: &mut Command) {
        let log = std::fs::File::create(self.path(&format!("{}.log", what.replace(' ', "-"))))
            .expect("create a daemon log");
        let child = command
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("PIPEWIRE_REMOTE")
            .env_remove("PIPEWIRE_RUNTIME_DIR")
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        self.children.push((what, child));
    }

    fn connect(&self) -> gio::DBusConnection {
        let address = self.address.to_string_lossy();
        let flags = gio::DBusConnectionFlags::AUTHENTICATION_CLIENT
            | gio::DBusConnectionFlags::MESSAGE_BUS_CONNECTION;
        gio::DBusConnection::for_address_sync(&address, flags, None, gio::Cancellable::NONE)
            .expect("connect to the session bus")
    }

    /// Waits for `ready`, or fails with the daemons' logs.
    fn wait_for(&self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            if ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no {what} within {SETTLE:?}; logs:\n{}", self.logs());
    }

    fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(what, _)| {
                let path = self.path(&format!("{}.log", what.replace(' ', "-")));
                format!("== {what}\n{}", std::fs::read_to_string(path).unwrap_or_default())
            })
            .collect()
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        while let Some((_, mut child)) = self.children.pop() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: plain kill(2) on our own child's pid.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while !matches!(child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// xdg-desktop-portal and xdg-permission-store, once every program the
/// session needs is known to be installed; `None`, with the reason printed,
/// when one is not.
fn programs() -> Option<(PathBuf, PathBuf)> {
    let portal = find_program(&[
        "/usr/libexec/xdg-desktop-portal",
        "/usr/lib/xdg-desktop-portal",
        "/usr/lib/xdg-desktop-portal/xdg-desktop-portal",
    ])?;
    let store = find_program(&[
        "/usr/libexec/xdg-permission-store",
        "/usr/lib/xdg-permission-store",
        "/usr/lib/xdg-desktop-portal/xdg-permission-store",
    ])?;
    for program in ["dbus-daemon", "pipewire", "wireplumber", "gst-inspect-1.0"] {
        find_program(&[program])?;
    }
    if !has_gst_element("pipewiresrc") {
        eprintln!("skipped: GStreamer's pipewiresrc is not installed (gstreamer1.0-pipewire)");
        return None;
    }
    Some((portal, store))
}

/// The first of `candidates` that exists (a bare name is looked up in PATH).
fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = candidates.iter().find_map(|c| {
        if c.contains('/') {
            Some(PathBuf::from(c)).filter(|p| p.exists())
        } else {
            std::env::split_paths(&path).map(|d| d.join(c)).find(|p| p.exists())
        }
    });
    if found.is_none() {
        eprintln!("skipped: {} is not installed (scripts/deps installs it)", candidates[0]);
    }
    found
}

fn has_gst_element(name: &str) -> bool {
    Command::new("gst-inspect-1.0")
        .arg(name)
        .env("GST_REGISTRY", super::gst_registry())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn call(
    bus: &gio::DBusConnection,
    name: &str,
    path: &str,
    interface: &str,
    method: &str,
    args: &glib::Variant,
) -> Result<glib::Variant, glib::Error> {
    bus.call_sync(
        Some(name),
        path,
        interface,
        method,
        Some(args),
        None,
        gio::DBusCallFlags::NONE,
        2000,
        gio::Cancellable::NONE,
    )
}

/// Whether the portal is up and its Camera interface sees a camera.
fn camera_present(bus: &gio::DBusConnection) -> bool {
    let args = ("org.freedesktop.portal.Camera", "IsCameraPresent").to_variant();
    let Ok(reply) = call(
        bus,
        "org.freedesktop.portal.Desktop",
        "/org/freedesktop/portal/desktop",
        "org.freedesktop.DBus.Properties",
        "Get",
        &args,
    ) else {
        return false;
    };
    reply.child_value(0).as_variant().and_then(|v| v.get::<bool>()) == Some(true)
}
