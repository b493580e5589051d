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
    for how in [How::Close, How::Reset] {
        for caller_leaves in [true, false] {
            // Ringing.
            let mut a = server.named("ala");
            let mut b = server.named("bob");
            a.send("connect bob");
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
            let (mut a, b) = call_pair(&server, "ala", "bob");
            a.send_bytes(b"video 1 k 1000\nhalf");
            let (gone, mut stays) = if caller_leaves { (a, b) } else { (b, a) };
            leave(gone, how);
            stays.expect("stop disconnected");
            drop(stays);
        }
        // Idle.
        let a = server.named("ala");
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
