//! Compiles `po/*.po` into `$OUT_DIR/locale/LANG/LC_MESSAGES/komunikator.mo`
//! so that `cargo run` is translated too; meson installs its own copies.
//! Without `msgfmt` the program still builds, in English only.

use std::path::Path;
use std::process::Command;

fn main() {
    let po = Path::new(env!("CARGO_MANIFEST_DIR")).join("../po");
    println!("cargo:rerun-if-changed={}", po.join("LINGUAS").display());
    let Ok(out) = std::env::var("OUT_DIR") else { return };
    let locale = Path::new(&out).join("locale");
    let linguas = std::fs::read_to_string(po.join("LINGUAS")).unwrap_or_default();
    let domain = option_env!("KOMUNIKATOR_GETTEXT_PACKAGE").unwrap_or("komunikator");
    for lang in linguas.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let source = po.join(format!("{lang}.po"));
        println!("cargo:rerun-if-changed={}", source.display());
        let dir = locale.join(lang).join("LC_MESSAGES");
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        let status =
            Command::new("msgfmt").arg("-o").arg(dir.join(format!("{domain}.mo"))).arg(&source).status();
        if !status.is_ok_and(|s| s.success()) {
            println!(
                "cargo:warning=msgfmt could not compile {}: that language is unavailable",
                source.display()
            );
        }
    }
    println!("cargo:rustc-env=KOMUNIKATOR_BUILD_LOCALEDIR={}", locale.display());
}
