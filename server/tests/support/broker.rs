//! A real `nats-server` on a free 127.0.0.1 port, for the cluster tests
//! (Debian's `nats-server` package; `scripts/deps` installs it).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker process, killed on drop.
pub struct Broker {
    child: Option<Child>,
    /// Extra flags (TLS, a user).
    flags: Vec<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl Broker {
    /// Starts a broker and waits until it takes connections.
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// Starts a broker with extra `nats-server` flags.
    pub fn start_with(flags: &[&str]) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let flags = flags.iter().map(|f| (*f).to_owned()).collect();
        let mut broker = Broker { child: None, flags, port, url: format!("nats://127.0.0.1:{port}") };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (install it with scripts/deps)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
