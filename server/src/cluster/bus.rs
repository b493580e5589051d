//! The `cluster` thread: a single-threaded tokio runtime running the NATS
//! client and five tasks: the publisher (what other threads queued), this
//! node's directory (every [`HEARTBEAT`], and at once on a change), the
//! other nodes' directories, this node's tunnel messages, and the expiry
//! of silent nodes. The client reconnects by itself after the broker
//! restarts and subscribes again; until then nothing arrives, and other
//! nodes fall silent and expire.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc::Receiver;

use super::wire::{Bus, MAX_USERS};
use super::{Cluster, DIR_SUBJECT, HEARTBEAT, Outgoing, node_subject};
use crate::config::Config;

/// How often silent nodes are looked for.
const EXPIRY_CHECK: Duration = Duration::from_millis(250);

/// Changes coming together within this are published once.
const SETTLE: Duration = Duration::from_millis(20);

/// Starts the `cluster` thread.
pub(super) fn spawn(cluster: Arc<Cluster>, config: &Config, rx: Receiver<Outgoing>) -> std::io::Result<()> {
    let url = config.cluster.clone().unwrap_or_default();
    let (creds, ca) = (config.cluster_creds.clone(), config.cluster_ca.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || runtime.block_on(run(cluster, url, (creds, ca), rx)))?;
    Ok(())
}

async fn run(
    cluster: Arc<Cluster>,
    url: String,
    (creds, ca): (Option<PathBuf>, Option<PathBuf>),
    rx: Receiver<Outgoing>,
) {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("komunikator-server {}", cluster.node))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(|event| async move { crate::log!(Info, "cluster broker: {event}") });
    if let Some(path) = creds {
        options = match options.credentials_file(&path).await {
            Ok(o) => o,
            Err(e) => return crate::log!(Error, "cluster: cannot read {}: {e}; not joining", path.display()),
        };
    }
    if let Some(path) = ca {
        options = options.add_root_certificates(path).require_tls(true);
    }
    let shown = redact(&url);
    let addr: async_nats::ServerAddr = match url.parse() {
        Ok(addr) => addr,
        Err(e) => return crate::log!(Error, "cluster: bad broker URL {shown}: {e}; not joining"),
    };
    // The client ignores a user and password in the URL: hand them over.
    if let (Some(user), Some(pass)) = (addr.username(), addr.password()) {
        options = options.user_and_password(user.to_owned(), pass.to_owned());
    }
    let client = match options.connect(addr).await {
        Ok(client) => client,
        Err(e) => return crate::log!(Error, "cluster: cannot use the broker at {shown}: {e}; not joining"),
    };
    let subscribed =
        (client.subscribe(DIR_SUBJECT).await, client.subscribe(node_subject(&cluster.node)).await);
    let (Ok(dirs), Ok(inbox)) = subscribed else {
        return crate::log!(Error, "cluster: cannot subscribe at {shown}; not joining");
    };
    crate::log!(Info, "cluster: node {} joins through {shown}", cluster.node);
    tokio::join!(
        publish(client.clone(), rx),
        announce(client.clone(), Arc::clone(&cluster)),
        directories(dirs, Arc::clone(&cluster)),
        tunnels(inbox, Arc::clone(&cluster)),
        expire(Arc::clone(&cluster)),
    );
}

/// `url` without the password it may hold, for the log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Publishes what other threads queued, in order.
async fn publish(client: async_nats::Client, mut rx: Receiver<Outgoing>) {
    while let Some(out) = rx.recv().await {
        if let Err(e) = client.publish(out.subject, out.bytes.into()).await {
            crate::log!(Warn, "cluster: cannot publish: {e}");
        }
    }
}

/// Publishes this node's users every heartbeat, and soon after each change.
async fn announce(client: async_nats::Client, cluster: Arc<Cluster>) {
    let mut first = true;
    loop {
        // The first list goes out at once: other nodes take tunnels only
        // from a node they have heard.
        if !std::mem::take(&mut first) {
            tokio::select! {
                () = cluster.changed.notified() => tokio::time::sleep(SETTLE).await,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
        let Some(shared) = cluster.shared() else { continue };
        let mut users = shared.registry.local_directory();
        users.truncate(MAX_USERS);
        let link = cluster.link.as_ref().map(super::link::Local::addr);
        let msg = Bus::Dir { from: &cluster.node, epoch: cluster.epoch, users, link };
        if let Err(e) = client.publish(DIR_SUBJECT, msg.to_bytes().into()).await {
            crate::log!(Warn, "cluster: cannot publish the directory: {e}");
        }
    }
}

/// Applies the other nodes' directories.
async fn directories(mut sub: async_nats::Subscriber, cluster: Arc<Cluster>) {
    while let Some(msg) = sub.next().await {
        let parsed = Bus::parse(&msg.payload);
        let shared = cluster.shared();
        match parsed {
            Ok(Bus::Dir { from, .. } | Bus::Bye { from }) if from == cluster.node => {}
            Ok(Bus::Dir { from, epoch, users, link }) => {
                let restarted = cluster.directory().epoch(from).is_some_and(|e| e < epoch);
                if restarted {
                    // Its tunnels died with its last run.
                    cluster.node_dead(from);
                }
                let changes = cluster.directory().apply(from, epoch, users, Instant::now());
                if let Some(shared) = shared {
                    shared.registry.remote_presence(&changes, &cluster);
                }
                cluster.node_heard(from);
                cluster.maybe_dial(from, link);
            }
            Ok(Bus::Bye { from }) => {
                let changes = cluster.directory().remove(from);
                cluster.node_dead(from);
                if let Some(shared) = shared {
                    shared.registry.remote_presence(&changes, &cluster);
                }
                crate::log!(Info, "cluster: node {from} left");
            }
            Ok(other) => crate::log!(Warn, "cluster: {other:?} on the directory subject; ignored"),
            Err(e) => crate::log!(Warn, "cluster: {e}; ignored"),
        }
    }
}

/// Handles the messages sent to this node through the broker.
async fn tunnels(mut sub: async_nats::Subscriber, cluster: Arc<Cluster>) {
    while let Some(msg) = sub.next().await {
        match Bus::parse(&msg.payload) {
            Ok(msg) => cluster.on_message(msg, None),
            Err(e) => crate::log!(Warn, "cluster: {e}; ignored"),
        }
    }
}

/// Forgets nodes that fell silent.
async fn expire(cluster: Arc<Cluster>) {
    loop {
        tokio::time::sleep(EXPIRY_CHECK).await;
        cluster.expire_waiting(Instant::now());
        let dead = cluster.directory().expire(Instant::now());
        for (node, changes) in dead {
            crate::log!(Warn, "cluster: node {node} is silent; its users are gone");
            cluster.node_dead(&node);
            if let Some(shared) = cluster.shared() {
                shared.registry.remote_presence(&changes, &cluster);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_the_log() {
        assert_eq!(super::redact("tls://node:s3cret@10.0.0.1:4222"), "tls://node:***@10.0.0.1:4222");
        assert_eq!(super::redact("nats://10.0.0.1:4222"), "nats://10.0.0.1:4222");
    }
}
