//! Network namespaces and veth pairs made by a scenario and deleted by it
//! (on drop, so also when the scenario fails), through iproute2.
//! A thread may enter a namespace with [`in_ns`]; sockets it creates there
//! stay in that namespace whichever thread uses them later.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Runs `ip ARGS`.
///
/// # Errors
/// When `ip` fails; the error carries its stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run ip {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A network namespace, deleted on drop (with the interfaces inside it).
pub struct Netns {
    /// Its name under /var/run/netns.
    pub name: String,
}

impl Netns {
    /// Creates it, with its loopback up.
    ///
    /// # Errors
    /// When not permitted (no root or CAP_NET_ADMIN) or the name is taken.
    pub fn create(name: &str) -> Result<Netns> {
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.to_owned() };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `ip -n NAME ARGS`.
    ///
    /// # Errors
    /// As [`ip`].
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command run inside the namespace (`ip netns exec NAME PROGRAM`).
    /// `ip netns exec` execs the program, so the child's pid is the program's.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs `f` on a new thread that has entered namespace `ns`.
///
/// # Errors
/// When the namespace cannot be entered.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/var/run/netns/{ns}");
    let file = File::open(&path).with_context(|| format!("open {path}"))?;
    std::thread::spawn(move || -> Result<T> {
        // SAFETY: setns on a descriptor we own; it changes only this thread's namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns: {}", std::io::Error::last_os_error());
        }
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
}

/// Deletes namespaces left by earlier runs that were killed (named
/// `kf<s|c><pid>` with a pid that no longer exists).
pub fn clean_stale() {
    let Ok(dir) = std::fs::read_dir("/var/run/netns") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("kfs").or_else(|| name.strip_prefix("kfc"));
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = ip(&["netns", "del", &name]);
            }
        }
    }
}
