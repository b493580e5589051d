//! `komunikator-server`: parses the flags, binds, prints `listening on
//! ADDR:PORT`, and serves until SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use komunikator_server::{Config, Server, log};
use signal_hook::consts::{SIGINT, SIGTERM};

fn main() -> ExitCode {
    let config = Config::parse();
    log::set_level(config.log_level);
    match komunikator_server::fdlimit::raise_nofile_limit() {
        Ok((before, after)) if before != after => {
            komunikator_server::log!(Info, "open-file limit raised from {before} to {after}");
        }
        Ok((_, limit)) => komunikator_server::log!(Info, "open-file limit {limit}"),
        Err(e) => komunikator_server::log!(Warn, "cannot raise the open-file limit: {e}"),
    }
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let local = match server.local_addr() {
        Ok(local) => local,
        Err(e) => {
            eprintln!("error: cannot read the listening address: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = watch_signals(server.shared()) {
        eprintln!("error: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    let shared = server.shared();
    let ready = || {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {local}");
        match &shared.tls {
            Some(tls) => {
                let _ = writeln!(stdout, "TLS certificate SHA-256 fingerprint {}", tls.fingerprint);
                let how = if tls.created { "created" } else { "loaded" };
                komunikator_server::log!(Info, "TLS certificate {how}: {}", tls.source.display());
            }
            None => komunikator_server::log!(Warn, "TLS is off (--no-tls): calls are not encrypted"),
        }
        let _ = stdout.flush();
        komunikator_server::log!(Info, "listening on {local}");
        if shared.config.plaintext_allowed() && shared.tls.is_some() {
            komunikator_server::log!(Info, "plain-text clients are accepted too (--plaintext allow)");
        }
    };
    match server.run(ready) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// On SIGINT or SIGTERM: disconnect everyone, wait briefly for their
/// sessions to end, and exit 0.
fn watch_signals(shared: std::sync::Arc<komunikator_server::Shared>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            komunikator_server::log!(Info, "signal {signal}: closing every connection");
            shared.shutdown(Duration::from_secs(3));
            komunikator_server::log!(Info, "bye");
            std::process::exit(0);
        }
    })?;
    Ok(())
}
