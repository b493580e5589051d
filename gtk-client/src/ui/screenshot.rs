//! Screenshots of the window's own widgets, for the GUI test and the README.
//! Enabled only when `KOMUNIKATOR_SCREENSHOT_DIR` names a directory: the
//! window then saves a picture of each stage of a call there, and of
//! whatever it shows on SIGUSR1 ([`on_request`]), and logs
//! `screenshot saved: PATH`. Main thread.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gtk::prelude::*;
use gtk::{gdk, graphene};

/// The directory screenshots go to, when enabled.
pub fn dir() -> Option<PathBuf> {
    std::env::var_os("KOMUNIKATOR_SCREENSHOT_DIR").filter(|d| !d.is_empty()).map(PathBuf::from)
}

/// Renders `widget` as it is now and saves it as a PNG.
///
/// # Errors
/// When the widget is not on screen, has no size, or the file cannot be written.
pub fn save(widget: &impl IsA<gtk::Widget>, path: &Path) -> anyhow::Result<()> {
    let widget = widget.as_ref();
    let (w, h) = (widget.width(), widget.height());
    anyhow::ensure!(w > 0 && h > 0, "the widget has no size yet");
    let paintable = gtk::WidgetPaintable::new(Some(widget));
    let snapshot = gtk::Snapshot::new();
    paintable.snapshot(&snapshot, f64::from(w), f64::from(h));
    let node = snapshot.to_node().context("the widget drew nothing")?;
    let native = widget.native().context("the widget is not in a window")?;
    let renderer = native.renderer().context("the window has no renderer")?;
    let bounds = graphene::Rect::new(0.0, 0.0, w as f32, h as f32);
    let texture: gdk::Texture = renderer.render_texture(&node, Some(&bounds));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    texture.save_to_png(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Saves `widget` as `NAME.png` in [`dir`], if enabled, and logs the outcome.
///
/// The picture is taken right after the next frame is painted, when every
/// widget's render node is fresh: between frames a widget showing video has
/// none, and would be photographed as nothing.
pub fn take(widget: &impl IsA<gtk::Widget>, name: &'static str) {
    take_as(widget.as_ref(), name.to_owned());
}

fn take_as(widget: &gtk::Widget, name: String) {
    let Some(dir) = dir() else { return };
    let path = dir.join(format!("{name}.png"));
    let widget = widget.clone();
    let Some(clock) = widget.frame_clock() else {
        return eprintln!("komunikator: screenshot {name} failed: the widget is not on screen");
    };
    let handler = std::rc::Rc::new(std::cell::Cell::new(None::<glib::SignalHandlerId>));
    let slot = handler.clone();
    let target = widget.clone();
    let id = clock.connect_after_paint(move |clock| {
        if let Some(id) = slot.take() {
            clock.disconnect(id);
        }
        match save(&target, &path) {
            Ok(()) => eprintln!("komunikator: screenshot saved: {}", path.display()),
            Err(e) => eprintln!("komunikator: screenshot {name} failed: {e:#}"),
        }
    });
    handler.set(Some(id));
    widget.queue_draw();
}

/// When screenshots are enabled, makes SIGUSR1 save every visible window of
/// the process, after its next frame: `now-N-main.png` for the main window
/// and `now-N-dialog.png` for a dialog over it (such as Preferences), N
/// counting the signals from 1, each logged as `screenshot saved: PATH`.
/// For pictures at moments the window does not choose itself
/// (`scripts/screenshots`).
pub fn on_request() {
    if dir().is_none() {
        return;
    }
    let count = std::cell::Cell::new(0u32);
    glib::unix_signal_add_local(libc::SIGUSR1, move || {
        count.set(count.get() + 1);
        for win in gtk::Window::list_toplevels() {
            let Ok(win) = win.downcast::<gtk::Window>() else { continue };
            if win.is_visible() {
                let role = if win.transient_for().is_some() { "dialog" } else { "main" };
                take_as(win.upcast_ref(), format!("now-{}-{role}", count.get()));
            }
        }
        glib::ControlFlow::Continue
    });
}

/// What `widget` shows in words: the text of every label on screen inside
/// it, and `[avatar NAME]` for each avatar (its initials are drawn from that
/// name), in tree order. Hidden pages, closed revealers and tooltips are not
/// on screen and are left out.
pub fn visible_texts(widget: &gtk::Widget) -> Vec<String> {
    let mut out = Vec::new();
    collect_texts(widget, &mut out);
    out
}

fn collect_texts(widget: &gtk::Widget, out: &mut Vec<String>) {
    if !widget.is_drawable() {
        return;
    }
    if let Some(avatar) = widget.downcast_ref::<adw::Avatar>() {
        out.push(format!("[avatar {}]", avatar.text().unwrap_or_default()));
        return;
    }
    if let Some(label) = widget.downcast_ref::<gtk::Label>()
        && !label.text().is_empty()
    {
        out.push(label.text().to_string());
    }
    let mut child = widget.first_child();
    while let Some(c) = child {
        collect_texts(&c, out);
        child = c.next_sibling();
    }
}

/// When screenshots are enabled, logs `shows NAME: TEXT | TEXT…` with
/// [`visible_texts`] of `widget` once the next frame is painted, so the GUI
/// tests can read what a page says.
pub fn log_texts(widget: &impl IsA<gtk::Widget>, name: &'static str) {
    if dir().is_none() {
        return;
    }
    let widget = widget.as_ref().clone();
    glib::timeout_add_local_once(std::time::Duration::from_millis(300), move || {
        let texts = visible_texts(&widget).join(" | ");
        super::window::log(&format!("shows {name}: {texts}"));
    });
}
