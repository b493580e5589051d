//! The other parties of a group call on the call page: a tile (picture and
//! name) for each party after the first, laid out in a grid with the first
//! party's picture, and the "Add person" button that invites someone into
//! the call. Main thread; the window feeds it the engine's `Joined` and
//! `Left` events.

use std::cell::RefCell;

use adw::prelude::*;
use gtk::gdk;
use komunikator_protocol::ClientId;

use super::i18n::i18n;
use super::window::log;

/// One party's tile.
struct Tile {
    root: gtk::Overlay,
    picture: gtk::Picture,
    name: gtk::Label,
    /// Whom it shows, while it is in use.
    party: RefCell<Option<ClientId>>,
    /// The watch for its first picture since it was last shown.
    watch: RefCell<Option<glib::SignalHandlerId>>,
}

/// The grid of pictures: the first party's, then one tile per further party.
pub struct Parties {
    /// The grid (the call page's video area).
    pub grid: gtk::Grid,
    main: gtk::Widget,
    /// The first party left a call that goes on: its last picture is not shown.
    main_gone: std::cell::Cell<bool>,
    tiles: Vec<Tile>,
}

impl Parties {
    /// A grid showing `main` alone, with a hidden tile for each of `paintables`.
    pub fn new(main: &impl IsA<gtk::Widget>, paintables: &[gdk::Paintable]) -> Parties {
        let grid = gtk::Grid::builder()
            .row_homogeneous(true)
            .column_homogeneous(true)
            .row_spacing(2)
            .column_spacing(2)
            .hexpand(true)
            .vexpand(true)
            .build();
        let tiles = paintables.iter().map(tile).collect();
        let parties = Parties { grid, main: main.clone().upcast(), main_gone: Default::default(), tiles };
        parties.layout();
        parties
    }

    /// Shows party `id`, called `name`, in tile `tile` (the engine chose it).
    /// Its first picture is logged ("party tile N shows a picture").
    pub fn show(&self, tile: usize, id: ClientId, name: &str) {
        let Some(t) = self.tiles.get(tile) else { return };
        if let Some(paintable) = t.picture.paintable() {
            if let Some(old) = t.watch.take() {
                paintable.disconnect(old);
            }
            let logged = std::cell::Cell::new(false);
            let watch = paintable.connect_invalidate_contents(move |p| {
                if p.intrinsic_width() > 0 && !logged.replace(true) {
                    log(&format!("party tile {tile} shows a picture"));
                }
            });
            t.watch.replace(Some(watch));
        }
        t.name.set_label(name);
        t.picture.set_tooltip_text(Some(name));
        *t.party.borrow_mut() = Some(id);
        self.layout();
    }

    /// Hides party `id`, which left a call that goes on: its tile, or the
    /// first party's picture when it has none.
    pub fn hide(&self, id: ClientId) {
        let mut had_tile = false;
        for t in self.tiles.iter().filter(|t| *t.party.borrow() == Some(id)) {
            *t.party.borrow_mut() = None;
            had_tile = true;
        }
        if !had_tile {
            self.main_gone.set(true);
        }
        self.layout();
    }

    /// Hides every tile and shows the first party's picture again (the call ended).
    pub fn clear(&self) {
        for t in &self.tiles {
            *t.party.borrow_mut() = None;
        }
        self.main_gone.set(false);
        self.layout();
    }

    /// Tiles in use.
    pub fn shown(&self) -> usize {
        self.tiles.iter().filter(|t| t.party.borrow().is_some()).count()
    }

    /// Places the first party's picture and the tiles in use: one picture
    /// alone, up to four in two columns, more in three.
    fn layout(&self) {
        while let Some(child) = self.grid.first_child() {
            self.grid.remove(&child);
        }
        let used: Vec<&gtk::Overlay> =
            self.tiles.iter().filter(|t| t.party.borrow().is_some()).map(|t| &t.root).collect();
        // With nobody else left, the first party's last picture stays rather
        // than an empty page (the call is ending).
        let main = (!self.main_gone.get() || used.is_empty()).then_some(&self.main);
        let n = usize::from(main.is_some()) + used.len();
        let columns = match n {
            0 | 1 => 1,
            2..=4 => 2,
            _ => 3,
        };
        let widgets = main.into_iter().chain(used.into_iter().map(|o| o.upcast_ref()));
        for (i, w) in widgets.enumerate() {
            let (column, row) = (i % columns, i / columns);
            self.grid.attach(w, column as i32, row as i32, 1, 1);
        }
    }
}

fn tile(paintable: &gdk::Paintable) -> Tile {
    let picture = gtk::Picture::builder().hexpand(true).vexpand(true).can_shrink(true).build();
    picture.set_paintable(Some(paintable));
    picture.add_css_class("komunikator-video");
    // Above the call controls, which float over the bottom of the page.
    let name = gtk::Label::builder()
        .halign(gtk::Align::Start)
        .valign(gtk::Align::End)
        .margin_start(12)
        .margin_bottom(96)
        .build();
    name.add_css_class("komunikator-osd-label");
    let root = gtk::Overlay::builder().child(&picture).build();
    root.add_overlay(&name);
    Tile { root, picture, name, party: RefCell::new(None), watch: RefCell::new(None) }
}

/// The "Add person" button and the bar it opens over the top of the call
/// page: an entry asking whom to invite (a nick, an IP or IP:PORT); Enter
/// gives what was typed to `invite`, Escape closes the bar. (An inline bar,
/// not a popover: on X11, GTK 4.8 kept sending keys to a closed popover's
/// entry, so Escape no longer hung up.)
pub fn add_person(invite: impl Fn(&str) + 'static) -> (gtk::ToggleButton, gtk::Revealer) {
    let entry = gtk::Entry::builder().placeholder_text(i18n("Nick or address")).width_chars(20).build();
    let title = gtk::Label::new(Some(&i18n("Invite someone into this call")));
    title.add_css_class("heading");
    let content = gtk::Box::builder().orientation(gtk::Orientation::Horizontal).spacing(12).build();
    content.add_css_class("osd");
    content.add_css_class("toolbar");
    content.append(&title);
    content.append(&entry);
    let bar = gtk::Revealer::builder()
        .child(&content)
        .halign(gtk::Align::Center)
        .valign(gtk::Align::Start)
        .margin_top(56)
        .transition_type(gtk::RevealerTransitionType::SlideDown)
        .build();
    let button = super::call_view::round_toggle("contact-new-symbolic", &i18n("Add person (Ctrl+I)"));
    button.bind_property("active", &bar, "reveal-child").sync_create().build();
    let e = entry.clone();
    button.connect_toggled(move |b| {
        if b.is_active() {
            e.grab_focus();
        } else {
            e.set_text("");
        }
        log(&format!("add person: {}", if b.is_active() { "open" } else { "closed" }));
    });
    let b = button.downgrade();
    entry.connect_activate(move |e| {
        let target = e.text().trim().to_owned();
        if target.is_empty() {
            return;
        }
        invite(&target);
        if let Some(b) = b.upgrade() {
            close(&b);
        }
    });
    // Escape in the entry closes the bar (the window leaves keys to text fields).
    let keys = gtk::EventControllerKey::new();
    let b = button.downgrade();
    keys.connect_key_pressed(move |_, key, _, _| {
        if key != gtk::gdk::Key::Escape {
            return glib::Propagation::Proceed;
        }
        if let Some(b) = b.upgrade() {
            close(&b);
        }
        glib::Propagation::Stop
    });
    entry.add_controller(keys);
    (button, bar)
}

/// Closes the bar and leaves the window with no focused widget: the entry
/// would keep taking keys, and a focused control inside the page's chat
/// flap loses Escape to the flap, so Escape would no longer hang up.
fn close(button: &gtk::ToggleButton) {
    button.set_active(false);
    if let Some(root) = button.root() {
        root.set_focus(gtk::Widget::NONE);
    }
}
