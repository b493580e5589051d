//! The round picture with initials that stands for a person (AdwAvatar) in
//! the list of people and on the incoming-call prompt. Main thread.

use adw::prelude::*;

use crate::text::{Kind, escape};

/// An avatar `size` pixels wide for `nick`: its initials on a colour chosen
/// from the nick, or the generic person icon for a client without a nick.
/// The nick is escaped first ([`crate::text`]), so an invisible or bidi
/// character cannot become an initial.
pub fn avatar(nick: Option<&str>, size: i32) -> adw::Avatar {
    let text = nick.map(|n| escape(n, Kind::Nick).into_owned());
    let avatar = adw::Avatar::new(size, text.as_deref(), text.is_some());
    avatar.set_valign(gtk::Align::Center);
    avatar
}
