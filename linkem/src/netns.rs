//! Network namespaces through iproute2, deleted on drop (so also when a
//! test or scenario fails), and threads that run inside one. Used by the
//! netns back end ([`crate::Backend::Netns`]) and by the fault suite.
//! A thread may enter a namespace with [`in_ns`]; sockets it creates there
//! stay in that namespace whichever thread uses them later.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// Why a namespace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The program (`ip`, `tc`) could not be run at all.
    #[error("run {cmd}: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why it did not start.
        source: io::Error,
    },
    /// The program ran and failed (not root, no such qdisc, name taken...).
    #[error("{cmd}: {stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `setns` into the namespace failed.
    #[error("enter network namespace {name}: {source}")]
    Enter {
        /// The namespace.
        name: String,
        /// The system's reason.
        source: io::Error,
    },
    /// The closure run inside the namespace panicked.
    #[error("the thread inside the namespace panicked")]
    Panicked,
}

/// Runs `program ARGS` and returns its stdout.
fn run(program: &str, args: &[&str]) -> Result<String, NetnsError> {
    let cmd = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetnsError::Spawn { cmd: cmd.clone(), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(NetnsError::Failed { cmd, stderr });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip ARGS`.
///
/// # Errors
/// When `ip` cannot run or fails; the error carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), NetnsError> {
    run("ip", args).map(drop)
}

/// Runs `tc ARGS` and returns its stdout.
///
/// # Errors
/// When `tc` cannot run or fails; the error carries its stderr.
pub fn tc(args: &[&str]) -> Result<String, NetnsError> {
    run("tc", args)
}

/// A network namespace, deleted on drop (with the interfaces inside it).
#[derive(Debug)]
pub struct Netns {
    /// Its name under /var/run/netns.
    pub name: String,
}

impl Netns {
    /// Creates it, with its loopback up.
    ///
    /// # Errors
    /// When not permitted (no root or CAP_NET_ADMIN) or the name is taken.
    pub fn create(name: &str) -> Result<Netns, NetnsError> {
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.to_owned() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `ip -n NAME ARGS`.
    ///
    /// # Errors
    /// As [`ip`].
    pub fn ip(&self, args: &[&str]) -> Result<(), NetnsError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `tc -n NAME ARGS` and returns its stdout.
    ///
    /// # Errors
    /// As [`tc`].
    pub fn tc(&self, args: &[&str]) -> Result<String, NetnsError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        tc(&all)
    }

    /// The words that run a program inside the namespace: `ip netns exec NAME`.
    pub fn command_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name].map(str::to_owned).to_vec()
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

/// One end of a veth pair for [`veth_pair`].
#[derive(Debug, Clone, Copy)]
pub struct VethEnd<'a> {
    /// The interface's name (at most 15 bytes).
    pub name: &'a str,
    /// Where it lives (`None`: the root namespace).
    pub ns: Option<&'a Netns>,
    /// Its IPv4 address with prefix length, e.g. `10.199.0.1/24`.
    pub addr: &'a str,
}

impl VethEnd<'_> {
    fn ip(&self, args: &[&str]) -> Result<(), NetnsError> {
        match self.ns {
            Some(ns) => ns.ip(args),
            None => ip(args),
        }
    }
}

/// Creates a veth pair between `a` and `b`, gives each end its address and
/// sets both up. Deleting either end (or its namespace) deletes both.
///
/// # Errors
/// As [`ip`]; an end made before the failure is left to its namespace's drop.
pub fn veth_pair(a: VethEnd<'_>, b: VethEnd<'_>) -> Result<(), NetnsError> {
    let mut add = vec!["link", "add", a.name, "type", "veth", "peer", "name", b.name];
    if let Some(ns) = b.ns {
        add.extend_from_slice(&["netns", ns.name.as_str()]);
    }
    a.ip(&add)?;
    for end in [a, b] {
        end.ip(&["addr", "add", end.addr, "dev", end.name])?;
        end.ip(&["link", "set", end.name, "up"])?;
    }
    Ok(())
}

/// Runs `f` on a new thread that has entered namespace `ns`, and returns
/// what it returned.
///
/// # Errors
/// When the namespace cannot be entered, or `f` panicked.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, NetnsError> {
    let path = format!("/var/run/netns/{ns}");
    let enter = |source| NetnsError::Enter { name: ns.to_owned(), source };
    let file = File::open(&path).map_err(enter)?;
    std::thread::spawn(move || -> Result<T, io::Error> {
        // SAFETY: setns on a descriptor we own; it changes only this thread's namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f())
    })
    .join()
    .map_err(|_| NetnsError::Panicked)?
    .map_err(enter)
}

/// Deletes namespaces left by earlier runs that were killed: those named
/// PREFIX followed by the pid of a process that no longer exists (and
/// anything after the digits), for each of `prefixes`.
pub fn clean_stale(prefixes: &[&str]) {
    let Ok(dir) = std::fs::read_dir("/var/run/netns") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = prefixes.iter().find_map(|p| name.strip_prefix(p)).and_then(|rest| {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            rest[..digits].parse::<u32>().ok()
        });
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = ip(&["netns", "del", &name]);
            }
        }
    }
}
