//! Translations: gettext bound to the installed locale directory, or to the
//! `.mo` files `build.rs` compiles from `po/` when run from cargo. Main thread.
//!
//! Strings are marked with [`i18n`] (and [`i18n_f`] for `{}` placeholders),
//! the keywords `po/meson.build` hands to xgettext.

use std::path::{Path, PathBuf};

use gettextrs::LocaleCategory;

/// The gettext domain: meson's `gettext_package`, or `komunikator`.
pub const GETTEXT_PACKAGE: &str = match option_env!("KOMUNIKATOR_GETTEXT_PACKAGE") {
    Some(p) => p,
    None => "komunikator",
};

/// Where meson installs the `.mo` files (`KOMUNIKATOR_LOCALEDIR` at build time).
const INSTALLED_LOCALEDIR: Option<&str> = option_env!("KOMUNIKATOR_LOCALEDIR");

/// Where `build.rs` compiled `po/*.po`, for `cargo run`.
const BUILD_LOCALEDIR: Option<&str> = option_env!("KOMUNIKATOR_BUILD_LOCALEDIR");

/// Sets the locale from the environment and binds the text domain.
/// Failures only mean English: they are logged, never fatal.
pub fn init() {
    if gettextrs::setlocale(LocaleCategory::LcAll, "").is_none() {
        eprintln!("komunikator: the locale from the environment is not available; using English");
    }
    let dir = locale_dir();
    let bound = gettextrs::bindtextdomain(GETTEXT_PACKAGE, dir.clone())
        .and_then(|_| gettextrs::bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8"))
        .and_then(|_| gettextrs::textdomain(GETTEXT_PACKAGE));
    if let Err(e) = bound {
        eprintln!("komunikator: translations from {} unavailable: {e}", dir.display());
    }
}

/// The first of `$KOMUNIKATOR_LOCALEDIR`, the installed directory and the
/// build tree's that holds a catalogue of ours.
fn locale_dir() -> PathBuf {
    let runtime = std::env::var("KOMUNIKATOR_LOCALEDIR").ok();
    let candidates = [runtime.as_deref(), INSTALLED_LOCALEDIR, BUILD_LOCALEDIR];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|d| has_catalogue(d))
        .unwrap_or_else(|| PathBuf::from(INSTALLED_LOCALEDIR.unwrap_or("/usr/share/locale")))
}

fn has_catalogue(dir: &Path) -> bool {
    let file = format!("{GETTEXT_PACKAGE}.mo");
    std::fs::read_dir(dir)
        .is_ok_and(|langs| langs.flatten().any(|lang| lang.path().join("LC_MESSAGES").join(&file).is_file()))
}

/// The translation of `msgid`.
pub fn i18n(msgid: &str) -> String {
    gettextrs::gettext(msgid)
}

/// The translation of `format`, with each `{}` replaced by the next argument
/// in turn. Translators may not reorder the placeholders.
pub fn i18n_f(format: &str, args: &[&str]) -> String {
    fill(&gettextrs::gettext(format), args)
}

fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        out.push_str(args.next().copied().unwrap_or(""));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_in_order() {
        assert_eq!(fill("Calling {}… at {}", &["ala", "1.2.3.4"]), "Calling ala… at 1.2.3.4");
        assert_eq!(fill("{} {}", &["a"]), "a ");
        assert_eq!(fill("no args", &["x"]), "no args");
    }
}
