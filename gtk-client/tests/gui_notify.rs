//! Calls while the window is in the background, answered from the
//! notification. With "Run in background" on (komunikator.ini), Ctrl+W only
//! hides the window and the connection stays up. A headless peer then
//! calls: the window is not raised but sends a notification, on the real
//! session bus, to `org.gtk.Notifications`, the interface GNOME Shell
//! serves. No shell runs here, so the test owns that name itself and
//! records what arrives; it then presses the buttons exactly as the shell
//! does, over D-Bus on the application id's bus name and object path:
//!
//! - Answer (`org.freedesktop.Application.ActivateAction`, as GNOME Shell
//!   calls it): both sides are in the call, the window shows again, and the
//!   notification is withdrawn.
//! - Decline (`org.gtk.Actions.Activate`, GIO's own action interface): a
//!   stale button (another caller's id) is ignored; the real one declines.
//! - A caller who gives up (its process is killed) leaves "Missed call".
//! - An invitation into a group call says who else is in it ("Also in the
//!   call: ela"), in place of "Incoming call".
//!
//! Needs an X display and a D-Bus session (the README's test command runs
//! under `xvfb-run` and `dbus-run-session`).

mod gui_support;
mod support;

use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use gio::prelude::*;
use gui_support::{Display, WAIT, Window, exclusive, press};
use support::{Client, Server, args, target_dir, test_media};

const APP_ID: &str = "io.github.komunikator.Komunikator";
const APP_PATH: &str = "/io/github/komunikator/Komunikator";

const NOTIFICATIONS_XML: &str = r#"<node><interface name="org.gtk.Notifications">
<method name="AddNotification"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="a{sv}" direction="in"/></method>
<method name="RemoveNotification"><arg type="s" direction="in"/><arg type="s" direction="in"/></method>
</interface></node>"#;

/// What the stand-in for the shell was asked to do.
#[derive(Debug, Clone)]
enum Seen {
    /// `AddNotification`.
    Add {
        sender: String,
        app: String,
        id: String,
        title: String,
        body: String,
        buttons: Vec<(String, String, String)>,
    },
    /// `RemoveNotification`.
    Remove { app: String, id: String },
}

/// Owns `org.gtk.Notifications` on the session bus and reports each call.
struct Shell {
    bus: gio::DBusConnection,
    seen: Receiver<Seen>,
}

impl Shell {
    fn start() -> Shell {
        let address = std::env::var("DBUS_SESSION_BUS_ADDRESS")
            .expect("this test needs a D-Bus session: run it under dbus-run-session");
        let (tx, seen) = channel();
        let (ready_tx, ready) = channel();
        std::thread::spawn(move || {
            let context = glib::MainContext::new();
            let main_loop = glib::MainLoop::new(Some(&context), false);
            context
                .with_thread_default(|| {
                    let bus = gio::DBusConnection::for_address_sync(
                        &address,
                        gio::DBusConnectionFlags::AUTHENTICATION_CLIENT
                            | gio::DBusConnectionFlags::MESSAGE_BUS_CONNECTION,
                        None,
                        None::<&gio::Cancellable>,
                    )
                    .expect("connect to the session bus");
                    let node = gio::DBusNodeInfo::for_xml(NOTIFICATIONS_XML).expect("interface XML");
                    let iface = node.lookup_interface("org.gtk.Notifications").expect("interface");
                    let _registration = bus
                        .register_object("/org/gtk/Notifications", &iface)
                        .method_call(move |_, sender, _, _, method, params, invocation| {
                            let _ = tx.send(parse(sender.unwrap_or(""), method, &params));
                            invocation.return_value(None);
                        })
                        .build()
                        .expect("register /org/gtk/Notifications");
                    let reply = bus
                        .call_sync(
                            Some("org.freedesktop.DBus"),
                            "/org/freedesktop/DBus",
                            "org.freedesktop.DBus",
                            "RequestName",
                            Some(&("org.gtk.Notifications", 4u32).to_variant()),
                            None,
                            gio::DBusCallFlags::NONE,
                            -1,
                            None::<&gio::Cancellable>,
                        )
                        .expect("RequestName");
                    assert_eq!(reply.get::<(u32,)>(), Some((1,)), "org.gtk.Notifications is taken");
                    ready_tx.send(bus).expect("ready");
                    main_loop.run();
                })
                .expect("a main context for the stand-in shell");
        });
        let bus = ready.recv_timeout(WAIT).expect("the stand-in shell did not start");
        Shell { bus, seen }
    }

    /// The next call matching `want`, skipping others.
    fn next(&self, what: &str, want: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.seen.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(s) if want(&s) => return s,
                Ok(other) => eprintln!("shell: {other:?}"),
                Err(_) => panic!("the shell never got {what}"),
            }
        }
    }

    /// Who owns `name` on the bus.
    fn owner(&self, name: &str) -> String {
        let reply = self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetNameOwner",
            &(name,).to_variant(),
        );
        reply.get::<(String,)>().map(|(o,)| o).unwrap_or_default()
    }

    fn call(
        &self,
        dest: &str,
        path: &str,
        iface: &str,
        method: &str,
        params: &glib::Variant,
    ) -> glib::Variant {
        self.bus
            .call_sync(
                Some(dest),
                path,
                iface,
                method,
                Some(params),
                None,
                gio::DBusCallFlags::NONE,
                10_000,
                None::<&gio::Cancellable>,
            )
            .unwrap_or_else(|e| panic!("{iface}.{method} on {dest}: {e}"))
    }

    /// Presses a notification button as GNOME Shell does.
    fn shell_activates(&self, action: &str, target: &str) {
        let params =
            (action, vec![target.to_variant()], std::collections::HashMap::<String, glib::Variant>::new())
                .to_variant();
        self.call(APP_ID, APP_PATH, "org.freedesktop.Application", "ActivateAction", &params);
    }

    /// Activates an action through GIO's own `org.gtk.Actions`.
    fn gtk_activates(&self, action: &str, target: &str) {
        let params =
            (action, vec![target.to_variant()], std::collections::HashMap::<String, glib::Variant>::new())
                .to_variant();
        self.call(APP_ID, APP_PATH, "org.gtk.Actions", "Activate", &params);
    }
}

fn parse(sender: &str, method: &str, params: &glib::Variant) -> Seen {
    let text = |i: usize| params.child_value(i).str().unwrap_or_default().to_owned();
    if method == "RemoveNotification" {
        return Seen::Remove { app: text(0), id: text(1) };
    }
    let n = glib::VariantDict::new(Some(&params.child_value(2)));
    let title = n.lookup::<String>("title").ok().flatten().unwrap_or_default();
    let body = n.lookup::<String>("body").ok().flatten().unwrap_or_default();
    let buttons = n
        .lookup_value("buttons", None)
        .map(|b| {
            b.iter()
                .map(|button| {
                    let d = glib::VariantDict::new(Some(&button));
                    let get = |k: &str| d.lookup::<String>(k).ok().flatten().unwrap_or_default();
                    let target = d.lookup_value("target", None).and_then(|t| t.str().map(str::to_owned));
                    (get("label"), get("action"), target.unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    Seen::Add { sender: sender.to_owned(), app: text(0), id: text(1), title, body, buttons }
}

/// Rings the window from a headless peer `nick` and returns the peer and
/// the incoming-call notification's Answer and Decline targets.
fn ring(shell: &Shell, server: &str, nick: &str) -> (Client, String) {
    let peer = Client::start(
        server,
        &[args(&[&["--name", nick, "--call", "callee"]]), test_media("smpte", 440)].concat(),
    );
    let added = shell.next(
        "an incoming-call notification",
        |s| matches!(s, Seen::Add { id, .. } if id == "incoming-call"),
    );
    let Seen::Add { sender, app, title, buttons, .. } = added else { unreachable!() };
    assert_eq!(app, APP_ID);
    assert!(title.contains(nick) && title.contains("is calling"), "title {title:?}");
    // GNOME Shell activates on the application id's name: this process owns it.
    assert_eq!(shell.owner(APP_ID), sender, "the notifying window does not own {APP_ID}");
    let action = |a: &str| {
        buttons.iter().find(|b| b.1 == a).unwrap_or_else(|| panic!("no {a} in {buttons:?}")).clone()
    };
    let (answer, decline) = (action("app.answer-call"), action("app.decline-call"));
    assert_eq!((answer.0.as_str(), decline.0.as_str()), ("Answer", "Decline"));
    assert!(answer.2.starts_with("127.0.0.1:") && answer.2 == decline.2, "targets {buttons:?}");
    (peer, answer.2)
}

fn withdrawn(shell: &Shell) {
    shell.next(
        "the incoming-call notification withdrawn",
        |s| matches!(s, Seen::Remove { app, id } if app == APP_ID && id == "incoming-call"),
    );
}

/// Ctrl+W with "Run in background" on: the window hides, the app runs on.
fn hide(window: &Window, display: &Display) {
    press(display, "ctrl+w");
    window.wait_for("window hidden; running in the background");
}

#[test]
fn a_hidden_window_rings_as_a_notification_answered_and_declined_over_dbus() {
    let _x = exclusive();
    let display = Display::get();
    let shell = Shell::start();
    let server = Server::start();
    let home = target_dir().join(format!("gui-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let ini = home.join("config/komunikator/komunikator.ini");
    std::fs::create_dir_all(ini.parent().unwrap()).unwrap();
    std::fs::write(&ini, "[client]\nrun-in-background=true\n").unwrap();
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", "callee"], &home.join("shots"), &home);
    window.wait_for(&format!("owns {APP_ID} on the session bus"));
    window.wait_for("name accepted: callee");

    // Answer.
    hide(&window, &display);
    let (ala, target) = ring(&shell, &server.addr, "ala");
    window.wait_for("notification: incoming call from");
    shell.shell_activates("answer-call", &target);
    window.wait_for("view: call");
    ala.wait_for("call started with", WAIT);
    withdrawn(&shell);
    let shown = gui_support::main_window(&display);
    assert!(!shown.is_empty(), "the answered call's window is not shown");
    ala.signal(libc::SIGTERM);
    drop(ala.finish(Duration::from_secs(30)));
    window.wait_for("view: lobby");

    // Decline, after a stale button from another caller is ignored.
    hide(&window, &display);
    let (bob, target) = ring(&shell, &server.addr, "bob");
    shell.gtk_activates("answer-call", "127.0.0.1:1");
    window.wait_for("notification: answer ignored, 127.0.0.1:1 is not calling");
    shell.gtk_activates("decline-call", &target);
    let bob = bob.finish(Duration::from_secs(30));
    assert_eq!(bob.end_reason(), "declined", "{}\nwindow:\n{}", bob.stderr, window.log());
    withdrawn(&shell);

    // A caller who gives up leaves a missed call.
    let (cyd, _) = ring(&shell, &server.addr, "cyd");
    cyd.signal(libc::SIGKILL);
    let missed = shell
        .next("a missed-call notification", |s| matches!(s, Seen::Add { id, .. } if id == "missed-call"));
    assert!(
        matches!(&missed, Seen::Add { title, .. } if title.contains("Missed call from") && title.contains("cyd")),
        "{missed:?}"
    );
    withdrawn(&shell);
    drop(cyd);

    // An invitation into a group call says who else is in it: dawid calls
    // ela and invites the window.
    let ela = Client::start(
        &server.addr,
        &[args(&[&["--name", "ela", "--answer", "--group", "--duration", "20"]]), test_media("smpte", 550)]
            .concat(),
    );
    ela.wait_for("komunikator: ready", WAIT);
    let own = args(&[&["--name", "dawid", "--call", "ela", "--invite", "callee", "--duration", "20"]]);
    let dawid = Client::start(&server.addr, &[own, test_media("smpte", 440)].concat());
    let named = shell.next("the invitation naming ela", |s| {
        matches!(s, Seen::Add { id, body, .. } if id == "incoming-call" && body.contains("Also in the call"))
    });
    assert!(
        matches!(&named, Seen::Add { title, body, .. } if title.contains("dawid") && body.contains("ela")),
        "{named:?}"
    );
    dawid.signal(libc::SIGTERM);
    ela.signal(libc::SIGTERM);
    drop((dawid.finish(Duration::from_secs(30)), ela.finish(Duration::from_secs(30))));
    let _ = std::fs::remove_dir_all(&home);
}
