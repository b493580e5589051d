//! `komunikator`: the client binary. Without `--headless` it opens the
//! window ([`komunikator::ui`]); with it, it runs one call from the command
//! line; `--print-pipelines` prints the pipelines. Both drive the same
//! [`komunikator::Engine`].

use std::process::ExitCode;

use anyhow::{Context, bail};
use komunikator::cli::{self, Args};
use komunikator::config;
use komunikator::engine::Engine;
use komunikator::headless::{self, EXIT_CONNECTION};
use komunikator::media::MediaSetup;

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // The error may quote the server (a TLS alert, a certificate name).
            let text = format!("{e:#}");
            eprintln!("komunikator: {}", komunikator::text::escape(&text, komunikator::text::Kind::Chat));
            ExitCode::from(EXIT_CONNECTION)
        }
    }
}

fn run() -> anyhow::Result<u8> {
    komunikator::media::clock::start();
    let args = cli::parse(std::env::args().skip(1))?;
    if args.help {
        print!("{}", cli::USAGE);
        return Ok(0);
    }
    if args.version {
        println!("komunikator {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    komunikator::net::security::configure(args.security()?);
    let file = config::load(args.config.as_deref()).context("reading conf.txt")?;
    let camera_index = file.as_ref().map_or(0, |(_, c)| c.camera_index);
    let media = args.media_options(camera_index);
    if args.print_pipelines {
        return print_pipelines(MediaSetup::resolve(media)?);
    }
    if !args.headless {
        // The window asks for the server itself when none is configured.
        return Ok(komunikator::ui::run(args, file));
    }
    let server = server_address(&args, file.as_ref().map(|(p, c)| (p.as_path(), c)))?;
    let setup = MediaSetup::resolve(media).context("setting up media")?;
    let plan = headless::Plan {
        call: args.call.clone(),
        answer: args.answer,
        duration: args.duration,
        mute: args.mute,
        camera_off: args.camera_off,
        camera_off_after: args.camera_off_after,
        wait_for_name: args.name.is_some(),
        invite: args.invite.clone(),
        reconnect: args.reconnect.then(|| headless::Reconnect {
            server: server.clone(),
            nick: args.name.clone(),
            setup: setup.clone(),
        }),
    };
    let engine = Engine::start_with_setup(&server, args.name.clone(), setup)
        .with_context(|| format!("starting a connection to {server}"))?;
    let (summary, code) = headless::run(engine, &plan);
    println!("{}", serde_json::to_string(&summary).context("writing the summary")?);
    Ok(code)
}

/// `--server`, or the address in conf.txt.
fn server_address(
    args: &Args,
    file: Option<(&std::path::Path, &config::FileConfig)>,
) -> anyhow::Result<String> {
    if let Some(server) = &args.server {
        return Ok(server.clone());
    }
    match file {
        Some((_, c)) if c.server_host.contains(':') => Ok(format!("[{}]:{}", c.server_host, c.port)),
        Some((_, c)) => Ok(format!("{}:{}", c.server_host, c.port)),
        None => bail!(
            "no server: give --server HOST:PORT or write conf.txt (server IP, port, camera index; \
             searched --config, $XDG_CONFIG_HOME/komunikator/conf.txt, ./conf.txt)"
        ),
    }
}

fn print_pipelines(setup: MediaSetup) -> anyhow::Result<u8> {
    for notice in &setup.notices {
        eprintln!("komunikator: {notice}");
    }
    let set = setup.pipelines()?;
    let none = "(not run: no source or no codec)".to_owned();
    println!("# send-video");
    println!("{}", set.send_video.as_ref().unwrap_or(&none));
    println!("# send-audio");
    println!("{}", set.send_audio.as_ref().unwrap_or(&none));
    println!("# receive-video");
    println!("{}", set.receive_video.as_ref().unwrap_or(&none));
    println!("# receive-audio");
    println!("{}", set.receive_audio);
    Ok(0)
}
