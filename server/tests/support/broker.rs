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
    /// Its monitoring port, if it has one.
    monitor: Option<u16>,
}

impl Broker {
    /// Starts a broker and waits until it takes connections.
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// Starts a broker with extra `nats-server` flags.
    pub fn start_with(flags: &[&str]) -> Broker {
        let port = free_port();
        let flags = flags.iter().map(|f| (*f).to_owned()).collect();
        let mut broker =
            Broker { child: None, flags, port, url: format!("nats://127.0.0.1:{port}"), monitor: None };
        broker.spawn();
        broker
    }

    /// Starts a broker that also serves its monitoring pages, for
    /// [`Broker::in_bytes`].
    pub fn start_monitored() -> Broker {
        let monitor = free_port();
        let mut broker = Broker::start_with(&["-m", &monitor.to_string()]);
        broker.monitor = Some(monitor);
        broker
    }

    /// The bytes the broker has taken from its clients so far (`in_bytes`
    /// of its `/varz` page).
    pub fn in_bytes(&self) -> u64 {
        use std::io::{Read, Write};
        let port = self.monitor.expect("a broker started with start_monitored");
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the monitoring port");
        s.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("ask /varz");
        let mut page = String::new();
        s.read_to_string(&mut page).expect("read /varz");
        let at = page.find("\"in_bytes\":").expect("in_bytes in /varz") + "\"in_bytes\":".len();
        let digits: String = page[at..].trim_start().chars().take_while(char::is_ascii_digit).collect();
        digits.parse().expect("a number")
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

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}
