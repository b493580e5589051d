//! The real call: two headless GStreamer clients (`komunikator --headless`)
//! calling each other through the server. Measured only when the client
//! binary exists and supports `--headless`; otherwise the report says why not.

use std::path::Path;
use std::process::Command;

/// The outcome of the real-call benchmark.
#[derive(Debug, Clone, Default)]
pub enum RealCall {
    /// Not requested in this run.
    #[default]
    NotRun,
    /// Not measured, and why.
    NotMeasured(String),
    /// The final JSON line of each client, as printed.
    #[allow(dead_code)] // built once the headless driver lands
    Measured {
        /// The caller's and the callee's summaries.
        summaries: Vec<String>,
        /// The client command lines.
        commands: Vec<String>,
    },
}

/// Checks for the client and, when it can run headless, runs the call.
///
/// # Errors
/// When the client supports `--headless` but the call cannot be run.
pub fn run(client: &Path, _server: &Path, _smoke: bool) -> anyhow::Result<RealCall> {
    if !client.exists() {
        return Ok(RealCall::NotMeasured(format!(
            "`{}` does not exist: the GTK client (gtk-client/, built by another engineer) \
             was not built when this report was generated",
            client.display()
        )));
    }
    let help = Command::new(client).arg("--help").output()?;
    let text = String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    if !text.contains("--headless") {
        return Ok(RealCall::NotMeasured(format!(
            "`{}` exists but its --help does not list --headless yet",
            client.display()
        )));
    }
    Ok(RealCall::NotMeasured(format!(
        "`{}` supports --headless, but the bench has no driver for its options yet",
        client.display()
    )))
}
