//! Disconnects of either party in each state: the other party is told, and
//! the server's threads and descriptors return to where they were.

mod support;

use support::{Client, Server, call_pair};

#[derive(Clone, Copy, Debug)]
enum How {
    Close,
    Reset,
}

fn leave(c: Client, how: How) {
    match how {
        How::Close => drop(c),
        How::Reset => c.reset(),
    }
}

#[test]
fn either_party_leaving_in_each_state() {
    let server = Server::start();
    let mut bystander = server.named("widz");
    bystander.sync();
    let baseline = server.counts();
    let mut n = 0;
    let mut nick = || {
        n += 1;
        format!("p{n}")
    };
    for how in [How::Close, How::Reset] {
        for caller_leaves in [true, false] {
            // Ringing.
            let (ala, bob) = (nick(), nick());
            let mut a = server.named(&ala);
            let mut b = server.named(&bob);
            a.send(&format!("connect {bob}"));
            a.expect_prefix("calling");
            b.expect_prefix("ask");
            let (gone, mut stays) = if caller_leaves { (a, b) } else { (b, a) };
            leave(gone, how);
            stays.expect("stop disconnected");
            // The one who stays is free again.
            stays.send("refresh");
            stays.expect_prefix("clients");
            drop(stays);

            // In a call, mid-frame.
            let (mut a, b) = call_pair(&server, &nick(), &nick());
            a.send_bytes(b"video 1 k 1000\nhalf");
            let (gone, mut stays) = if caller_leaves { (a, b) } else { (b, a) };
            leave(gone, how);
            stays.expect("stop disconnected");
            drop(stays);
        }
        // Idle.
        let a = server.named(&nick());
        leave(a, how);
    }
    bystander.sync();
    server.settles_to(baseline);
    bystander.send("refresh");
    bystander.expect("clients 0");
}

#[test]
fn the_bystander_sees_gone() {
    let server = Server::start();
    let mut w = server.client();
    let a = server.named("ala");
    let id = a.id.clone();
    w.sync();
    a.reset();
    loop {
        let m = w.recv();
        if m.line() == format!("presence {id} gone ala") {
            break;
        }
    }
}

/// A client in another process, killed with SIGKILL: what the kernel does
/// for a crashed client, not what a polite one does.
struct Process {
    child: std::process::Child,
}

impl Process {
    /// Runs `script` (lines to send, with `\n` escapes) from a bash process
    /// holding its own connection, then sleeps until killed.
    fn start(server: &Server, script: &str) -> Process {
        let port = server.addr.port();
        let child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}; printf '{script}' >&3; exec sleep 600"))
            .spawn()
            .expect("bash");
        Process { child }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[test]
fn kill_9_of_either_party_in_every_state() {
    let server = Server::start();
    let mut w = server.named("widz");
    w.sync();
    let baseline = server.counts();
    let wait_for = |w: &mut Client, what: &str| loop {
        if w.recv().line().contains(what) {
            break;
        }
    };
    // Idle.
    let p = Process::start(&server, "name idle\\n");
    wait_for(&mut w, "free idle");
    p.kill9();
    wait_for(&mut w, "gone idle");
    // The killed process is the caller (ringing), the callee (asked), or
    // either party in a call, mid-frame.
    for (script, answer) in [
        ("name p1\\nconnect widz\\n", None),
        ("name p2\\nconnect widz\\n", Some("ask yes")),
        ("name p3\\nconnect widz\\nvideo 1 k 9999\\npartial", Some("ask yes")),
    ] {
        let p = Process::start(&server, script);
        w.expect_prefix("ask ");
        if let Some(answer) = answer {
            w.send(answer);
            w.expect_prefix("start ");
        }
        p.kill9();
        w.expect("stop disconnected");
    }
    let mut caller = server.named("caller");
    let p = Process::start(&server, "name p4\\n");
    wait_for(&mut w, "free p4");
    caller.send("connect p4");
    caller.expect_prefix("calling");
    p.kill9();
    caller.expect("stop disconnected");
    drop(caller);
    w.sync();
    server.settles_to(baseline);
}
