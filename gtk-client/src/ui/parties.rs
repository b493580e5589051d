//! The other parties of a group call on the call page: a tile (picture,
//! name, muted badge, and an avatar while its camera is off) for each party
//! after the first, laid out with the first party's picture, and the "Add
//! person" button that invites someone into the call. Everyone has an equal
//! place in a grid until someone speaks; from then on the speaker (the
//! engine's choice, which changes at most every two seconds) is shown large
//! on top and the others in a strip below, in the order they joined. Main
//! thread; the window feeds it the engine's `Joined`, `Left`, `Speaker` and
//! `PartyMedia` events.

use std::cell::{Cell, RefCell};

use adw::prelude::*;
use gtk::gdk;
use komunikator_protocol::ClientId;

use super::i18n::i18n;
use super::switches::PeerSwitches;
use super::window::log;
use crate::engine::PeerMedia;

/// One party's tile.
struct Tile {
    root: gtk::Overlay,
    picture: gtk::Picture,
    name: gtk::Label,
    /// Whom it shows, while it is in use.
    party: RefCell<Option<ClientId>>,
    /// The watch for its first picture since it was last shown.
    watch: RefCell<Option<glib::SignalHandlerId>>,
    /// Its muted badge and camera-off avatar.
    switches: PeerSwitches,
}

/// The grid of pictures: the first party's, then one tile per further party.
pub struct Parties {
    /// The grid (the call page's video area).
    pub grid: gtk::Grid,
    main: gtk::Widget,
    /// The first party left a call that goes on: its last picture is not shown.
    main_gone: Cell<bool>,
    /// The first party and its name, while a call is on.
    main_party: RefCell<Option<(ClientId, String)>>,
    /// The party shown large, if anyone has spoken.
    speaker: Cell<Option<ClientId>>,
    tiles: Vec<Tile>,
}

/// A picture being laid out: whose, and its name.
struct Shown {
    id: Option<ClientId>,
    name: String,
    widget: gtk::Widget,
}

/// Columns of the speaker layout's grid: a strip of 1, 2, 3, 4 or 6 tiles
/// fills a row with tiles of one width.
const STRIP_COLUMNS: usize = 12;

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
        let parties = Parties {
            grid,
            main: main.clone().upcast(),
            main_gone: Default::default(),
            main_party: Default::default(),
            speaker: Default::default(),
            tiles,
        };
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
        t.switches.clear();
        *t.party.borrow_mut() = Some(id);
        self.layout();
    }

    /// A call began with party `id`, called `name` (the first party's picture).
    pub fn set_main(&self, id: ClientId, name: &str) {
        *self.main_party.borrow_mut() = Some((id, name.to_owned()));
    }

    /// Shows party `id`'s switches on its tile (muted badge, avatar while
    /// its camera is off).
    pub fn show_media(&self, id: ClientId, media: PeerMedia) {
        for t in self.tiles.iter().filter(|t| *t.party.borrow() == Some(id)) {
            t.switches.show(media, &t.name.label());
        }
    }

    /// Shows `speaker` large (`None`: everyone equal until someone speaks).
    pub fn set_speaker(&self, speaker: Option<ClientId>) {
        if self.speaker.replace(speaker) != speaker {
            self.layout();
        }
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
        self.main_party.replace(None);
        self.speaker.set(None);
        self.layout();
    }

    /// Tiles in use.
    pub fn shown(&self) -> usize {
        self.tiles.iter().filter(|t| t.party.borrow().is_some()).count()
    }

    /// Places the first party's picture and the tiles in use: the speaker
    /// large on top and the others in a strip below, or, until someone
    /// speaks, one picture alone, up to four in two columns, more in three.
    /// The layout is logged ("layout: ...": the GUI tests read it).
    fn layout(&self) {
        while let Some(child) = self.grid.first_child() {
            self.grid.remove(&child);
        }
        let used = self.tiles.iter().filter_map(|t| {
            let id = (*t.party.borrow())?;
            Some(Shown { id: Some(id), name: t.name.label().into(), widget: t.root.clone().upcast() })
        });
        // With nobody else left, the first party's last picture stays rather
        // than an empty page (the call is ending).
        let main_party = self.main_party.borrow().clone();
        let main = Shown {
            id: main_party.as_ref().map(|p| p.0),
            name: main_party.map(|p| p.1).unwrap_or_default(),
            widget: self.main.clone(),
        };
        let mut shown: Vec<Shown> = used.collect();
        if !self.main_gone.get() || shown.is_empty() {
            shown.insert(0, main);
        }
        let speaker = self.speaker.get().filter(|_| shown.len() > 1);
        let speaker = speaker.and_then(|s| shown.iter().position(|p| p.id == Some(s)));
        match speaker {
            Some(i) => self.speaker_layout(&shown, i),
            None => self.equal_layout(&shown),
        }
    }

    fn equal_layout(&self, shown: &[Shown]) {
        let columns = match shown.len() {
            0 | 1 => 1,
            2..=4 => 2,
            _ => 3,
        };
        for (i, p) in shown.iter().enumerate() {
            let (column, row) = (i % columns, i / columns);
            self.grid.attach(&p.widget, column as i32, row as i32, 1, 1);
        }
        if shown.len() > 1 {
            log(&format!("layout: {} pictures, equal", shown.len()));
        }
    }

    /// The speaker (`shown[speaker]`) over the full width and two thirds of
    /// the height, the others below in one row (two from five on).
    fn speaker_layout(&self, shown: &[Shown], speaker: usize) {
        let others: Vec<&gtk::Widget> =
            shown.iter().enumerate().filter(|(i, _)| *i != speaker).map(|(_, p)| &p.widget).collect();
        let rows = if others.len() <= 4 { 1 } else { 2 };
        let per_row = others.len().div_ceil(rows);
        let span = (STRIP_COLUMNS / per_row.max(1)) as i32;
        let top = 2 * rows as i32;
        self.grid.attach(&shown[speaker].widget, 0, 0, STRIP_COLUMNS as i32, top);
        for (i, w) in others.iter().enumerate() {
            let (column, row) = ((i % per_row) as i32 * span, (i / per_row) as i32);
            self.grid.attach(*w, column, top + row, span, 1);
        }
        log(&format!("layout: {} larger, {} below", shown[speaker].name, others.len()));
    }
}

fn tile(paintable: &gdk::Paintable) -> Tile {
    let picture = gtk::Picture::builder().hexpand(true).vexpand(true).can_shrink(true).build();
    picture.set_paintable(Some(paintable));
    picture.add_css_class("komunikator-video");
    // Above the call controls, which float over the bottom of the page.
    let name = gtk::Label::new(None);
    name.add_css_class("komunikator-osd-label");
    let switches = PeerSwitches::new(&picture);
    let label = gtk::Box::builder()
        .spacing(6)
        .halign(gtk::Align::Start)
        .valign(gtk::Align::End)
        .margin_start(12)
        .margin_bottom(96)
        .build();
    label.append(&name);
    label.append(&switches.muted);
    let root = gtk::Overlay::builder().child(&picture).build();
    root.add_overlay(&switches.placeholder);
    root.add_overlay(&label);
    Tile { root, picture, name, party: RefCell::new(None), watch: RefCell::new(None), switches }
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
