//! A real TLS 1.3 connection over loopback TCP: handshake, both halves of
//! the split used from two threads each side, and pinning.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use komunikator_tls::{TofuVerifier, server, split};
use rustls::{ClientConnection, Connection, ServerConnection};

fn pair(expected: Option<String>) -> (std::io::Result<(Connection, TcpStream)>, Arc<TofuVerifier>, String) {
    let dir = tempfile::tempdir().unwrap();
    let id = server::load_or_create(None, None, dir.path()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::clone(&id.config);
    let server_thread = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut conn = Connection::from(ServerConnection::new(config).unwrap());
        split::handshake(&mut conn, &mut sock).map(|()| (conn, sock))
    });
    let verifier = Arc::new(TofuVerifier::new(expected));
    let config = Arc::new(verifier.client_config().unwrap());
    let mut sock = TcpStream::connect(addr).unwrap();
    let mut conn =
        Connection::from(ClientConnection::new(config, "komunikator".try_into().unwrap()).unwrap());
    let client = split::handshake(&mut conn, &mut sock).map(|()| (conn, sock));
    let _ = server_thread.join().unwrap();
    (client, verifier, id.fingerprint)
}

#[test]
fn first_use_trusts_and_records_the_fingerprint() {
    let (client, verifier, fp) = pair(None);
    assert!(client.is_ok());
    assert_eq!(verifier.seen(), Some(fp));
    assert_eq!(verifier.mismatch(), None);
}

#[test]
fn a_different_certificate_is_refused_and_both_fingerprints_known() {
    let wrong = komunikator_tls::fingerprint(b"some other certificate");
    let (client, verifier, fp) = pair(Some(wrong.clone()));
    assert!(client.is_err());
    assert_eq!(verifier.mismatch(), Some((wrong, fp)));
}

#[test]
fn halves_carry_data_both_ways_from_separate_threads() {
    let dir = tempfile::tempdir().unwrap();
    let id = server::load_or_create(None, None, dir.path()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::clone(&id.config);
    // The server echoes everything back, reading and writing on two threads.
    let echo = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut conn = Connection::from(ServerConnection::new(config).unwrap());
        split::handshake(&mut conn, &mut sock).unwrap();
        let (mut r, mut w) = split::split(conn, sock.try_clone().unwrap(), sock);
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let writer = std::thread::spawn(move || {
            for chunk in rx {
                w.write_all(&chunk).unwrap();
            }
            w.close().unwrap();
        });
        let mut buf = vec![0; 5000];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            tx.send(buf[..n].to_vec()).unwrap();
        }
        drop(tx);
        writer.join().unwrap();
    });
    let verifier = Arc::new(TofuVerifier::new(Some(id.fingerprint.clone())));
    let mut sock = TcpStream::connect(addr).unwrap();
    let mut conn = Connection::from(
        ClientConnection::new(Arc::new(verifier.client_config().unwrap()), "localhost".try_into().unwrap())
            .unwrap(),
    );
    split::handshake(&mut conn, &mut sock).unwrap();
    let (mut r, mut w) = split::split(conn, sock.try_clone().unwrap(), sock);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let to_send = data.clone();
    let sender = std::thread::spawn(move || {
        for chunk in to_send.chunks(70_000) {
            w.write_all(chunk).unwrap();
        }
        w.close().unwrap();
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    echo.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
}
