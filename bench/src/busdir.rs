//! The directory half of the message-bus benchmark (issue 16): presence
//! entries that expire when their node stops refreshing them. NATS runs a
//! JetStream key-value bucket whose `max_age` is the TTL (nats-server 2.9
//! has no per-key TTL); Redis runs `SET key value PX ttl` with keyspace
//! events on. Each broker is started for this alone. Measured: the round
//! trip of one presence write; then, with nobody reading the keys, how many
//! expiries a second connection is told of (a KV watcher; a subscriber to
//! `__keyevent@0__:expired`) and how late; then, for fresh keys, how late
//! a `get` first finds each one gone.
//!
//! Threads: runs on the tokio runtime the caller blocks on; one task
//! listens for expiry notices.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;

use crate::busclient::{Broker, Kind};
use crate::runs::Lat;
use crate::stats::Samples;

/// Keys written per round, and how long past the TTL the bench waits for them to go.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Keys per round.
    pub keys: usize,
    /// The entries' time to live.
    pub ttl: Duration,
    /// How long past the TTL the bench waits.
    pub wait: Duration,
}

/// What one broker did with a directory.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Which broker.
    pub kind: Kind,
    /// Its command line.
    pub command: String,
    /// The plan it ran.
    pub plan: Plan,
    /// One presence write, round trip, µs (its `p99` is the p99).
    pub put: Lat,
    /// Expiries another connection was told of (`n`), and how late past the TTL, µs
    /// (here `p99` holds the largest).
    pub noticed: Lat,
    /// Keys a `get` found gone (`n`), and how late past the TTL, µs (`p99`: the largest).
    pub gone: Lat,
}

const BUCKET: &str = "directory";

/// Who was told of which key's expiry, and when.
type Notices = Arc<Mutex<HashMap<String, Instant>>>;

enum Store {
    Nats(Box<kv::Store>),
    Redis(redis::aio::MultiplexedConnection, Duration),
}

impl Store {
    async fn put(&mut self, key: &str) -> anyhow::Result<()> {
        match self {
            Store::Nats(s) => drop(s.put(key, "node-a".into()).await?),
            Store::Redis(c, ttl) => {
                let ms = ttl.as_millis() as u64;
                let () = redis::cmd("SET").arg(key).arg("node-a").arg("PX").arg(ms).query_async(c).await?;
            }
        }
        Ok(())
    }

    async fn present(&mut self, key: &str) -> anyhow::Result<bool> {
        Ok(match self {
            Store::Nats(s) => s.get(key).await?.is_some(),
            Store::Redis(c, _) => {
                redis::cmd("GET").arg(key).query_async::<Option<Vec<u8>>>(c).await?.is_some()
            }
        })
    }
}

/// Opens the store on one connection and listens for expiry notices on another.
async fn open(broker: &Broker, ttl: Duration, notices: &Notices) -> anyhow::Result<Store> {
    let url = format!("127.0.0.1:{}", broker.port);
    match broker.kind {
        Kind::Nats => {
            let js = jetstream::new(async_nats::connect(&url).await?);
            // What `create_key_value` sends, by hand: async-nats 0.51 first asks for the
            // account's info, and cannot parse nats-server 2.9's answer.
            let config = jetstream::stream::Config {
                name: format!("KV_{BUCKET}"),
                subjects: vec![format!("$KV.{BUCKET}.>")],
                max_messages_per_subject: 1,
                max_age: ttl,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                num_replicas: 1,
                ..jetstream::stream::Config::default()
            };
            js.create_stream(config).await.context("creating the bucket's stream")?;
            let store = js.get_key_value(BUCKET).await.context("opening the bucket")?;
            let watcher = jetstream::new(async_nats::connect(&url).await?)
                .get_key_value(BUCKET)
                .await
                .context("opening the bucket")?;
            let mut watch = watcher.watch_all().await.context("watching the bucket")?;
            let notices = notices.clone();
            tokio::spawn(async move {
                while let Some(Ok(e)) = watch.next().await {
                    if e.operation != kv::Operation::Put {
                        notices.lock().map(|mut n| n.insert(e.key, Instant::now())).ok();
                    }
                }
            });
            Ok(Store::Nats(Box::new(store)))
        }
        Kind::Redis => {
            let client = redis::Client::open(format!("redis://{url}/"))?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe("__keyevent@0__:expired").await?;
            let mut messages = pubsub.into_on_message();
            let notices = notices.clone();
            tokio::spawn(async move {
                while let Some(m) = messages.next().await {
                    let key = String::from_utf8_lossy(m.get_payload_bytes()).into_owned();
                    notices.lock().map(|mut n| n.insert(key, Instant::now())).ok();
                }
            });
            Ok(Store::Redis(client.get_multiplexed_async_connection().await?, ttl))
        }
    }
}

/// Writes `plan.keys` keys named `prefix`N; returns when each write was acknowledged.
async fn write(
    store: &mut Store,
    prefix: &str,
    plan: Plan,
    put: &mut Samples,
) -> anyhow::Result<Vec<Instant>> {
    let mut done = Vec::with_capacity(plan.keys);
    for i in 0..plan.keys {
        let t = Instant::now();
        store.put(&format!("{prefix}{i}")).await?;
        let now = Instant::now();
        put.push(now.duration_since(t).as_nanos() as u64);
        done.push(now);
    }
    Ok(done)
}

/// How late past its TTL each key went, as `at(i)` says (`None`: not within the wait).
fn lateness(done: &[Instant], ttl: Duration, at: impl Fn(usize) -> Option<Instant>) -> Samples {
    let mut late = Samples::default();
    for (i, d) in done.iter().enumerate() {
        if let Some(t) = at(i) {
            late.push(t.saturating_duration_since(*d + ttl).as_nanos() as u64);
        }
    }
    late
}

/// Median and largest (in `p99`).
fn late(s: &mut Samples) -> Lat {
    Lat { p50: s.pct_us(50.0), p99: s.max_us(), n: s.len() }
}

/// Runs the directory benchmark on `broker` (started with JetStream, or with keyspace events).
///
/// # Errors
/// When a connection, a write or a read fails.
pub async fn run(broker: &Broker, plan: Plan) -> anyhow::Result<Directory> {
    let notices = Notices::default();
    let mut store = open(broker, plan.ttl, &notices).await?;
    let mut put = Samples::default();
    // Nobody reads these: any notice comes from the broker's own expiry.
    let done = write(&mut store, "quiet", plan, &mut put).await?;
    tokio::time::sleep_until((*done.last().unwrap_or(&Instant::now()) + plan.ttl + plan.wait).into()).await;
    let heard = notices.lock().map(|n| n.clone()).unwrap_or_default();
    let mut noticed = lateness(&done, plan.ttl, |i| heard.get(&format!("quiet{i}")).copied());
    // These are read every 20 ms until gone.
    let done = write(&mut store, "read", plan, &mut put).await?;
    let mut gone_at: Vec<Option<Instant>> = vec![None; plan.keys];
    let deadline = *done.last().unwrap_or(&Instant::now()) + plan.ttl + plan.wait;
    while Instant::now() < deadline && gone_at.iter().any(Option::is_none) {
        for (i, g) in gone_at.iter_mut().enumerate() {
            if g.is_none() && !store.present(&format!("read{i}")).await? {
                *g = Some(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut gone = lateness(&done, plan.ttl, |i| gone_at[i]);
    let put = Lat { p50: put.pct_us(50.0), p99: put.pct_us(99.0), n: put.len() };
    let (noticed, gone) = (late(&mut noticed), late(&mut gone));
    Ok(Directory { kind: broker.kind, command: broker.command.clone(), plan, put, noticed, gone })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_counts_only_what_went_and_never_goes_below_zero() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(1);
        let done = [t0, t0, t0];
        let at = [Some(t0 + Duration::from_millis(1_250)), None, Some(t0 + Duration::from_millis(900))];
        let mut late = lateness(&done, ttl, |i| at[i]);
        assert_eq!(late.len(), 2);
        assert_eq!(late.max_us(), 250_000.0);
        assert_eq!(late.pct_us(1.0), 0.0);
    }
}
