//! One poller per Connect cluster: a single `GET /connectors?expand=status&expand=info` per poll,
//! shared by every Connector on that cluster, every second while anything changes and every
//! ten seconds when all is quiet. Connectors whose live state changed are reconciled at once
//! (so a FAILED task shows within seconds), and a circuit breaker stops polling a cluster that
//! does not answer for a while. A hanging cluster costs its own Connectors a stale view, nobody
//! else anything.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};
use tributary_connect_client::ConnectorExpansion;

use crate::connect_client::{CallError, ConnectClient};

/// A cluster: namespace and KafkaConnect name.
pub type ClusterKey = (String, String);

/// Poll interval while the cluster changes or someone waits for it.
pub const FAST: Duration = Duration::from_secs(1);
/// Poll interval when nothing changed for [`QUIET_AFTER`].
pub const SLOW: Duration = Duration::from_secs(10);
const QUIET_AFTER: Duration = Duration::from_secs(30);
/// A poller nobody asked for this long stops.
const IDLE_LIMIT: Duration = Duration::from_secs(600);

/// The connectors of a cluster as last seen.
pub type Connectors = Arc<BTreeMap<String, ConnectorExpansion>>;

/// The result of the last poll.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was taken; `None` before the first poll.
    pub at: Option<Instant>,
    pub result: Result<Connectors, CallError>,
}

/// Consecutive failures open the breaker: no polls for 5 s, doubling up to a minute, so a
/// dead cluster is not hammered and its Connectors report `Unreachable` at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breaker {
    pub failures: u32,
    pub open_until: Option<Instant>,
}

impl Breaker {
    const THRESHOLD: u32 = 3;

    pub fn record(&mut self, ok: bool, now: Instant) {
        if ok {
            *self = Breaker::default();
            return;
        }
        self.failures += 1;
        if self.failures >= Self::THRESHOLD {
            let exp = (self.failures - Self::THRESHOLD).min(4);
            let wait = Duration::from_secs(5 * (1 << exp)).min(Duration::from_secs(60));
            self.open_until = Some(now + wait);
        }
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|t| now < t)
    }
}

/// Names whose entry differs between two views (added, removed or changed).
pub fn changed(
    before: &BTreeMap<String, ConnectorExpansion>,
    after: &BTreeMap<String, ConnectorExpansion>,
) -> Vec<String> {
    let mut out: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(before.keys().filter(|k| !after.contains_key(*k)).cloned());
    out
}

/// A change worth a reconcile: a connector of a cluster, or the whole cluster (`None`: it
/// became reachable or unreachable).
pub type Change = (ClusterKey, Option<String>);

struct Poller {
    client: Mutex<Option<ConnectClient>>,
    snapshot: watch::Sender<Snapshot>,
    wake: Notify,
    last_used: Mutex<Instant>,
    fast_until: Mutex<Instant>,
    /// Cleared when the poller stopped (idle): the next user starts a new one.
    alive: std::sync::atomic::AtomicBool,
}

/// Every cluster's poller.
pub struct Pollers {
    pollers: Mutex<HashMap<ClusterKey, Arc<Poller>>>,
    changes: broadcast::Sender<Change>,
}

impl std::fmt::Debug for Pollers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pollers").finish_non_exhaustive()
    }
}

impl Default for Pollers {
    fn default() -> Self {
        Self::new()
    }
}

impl Pollers {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            pollers: Mutex::new(HashMap::new()),
            changes: tx,
        }
    }

    /// Changes from now on (a receiver that lags misses some; the periodic requeue covers it).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn get(&self, key: &ClusterKey, client: ConnectClient) -> Arc<Poller> {
        let mut map = match self.pollers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(p) = map
            .get(key)
            .filter(|p| p.alive.load(std::sync::atomic::Ordering::Acquire))
        {
            if let Ok(mut c) = p.client.lock()
                && !c.as_ref().is_some_and(|old| old.same_target(&client))
            {
                *c = Some(client);
            }
            if let Ok(mut t) = p.last_used.lock() {
                *t = Instant::now();
            }
            return p.clone();
        }
        let (tx, _) = watch::channel(Snapshot {
            at: None,
            result: Err(CallError::Unreachable("not polled yet".into())),
        });
        let p = Arc::new(Poller {
            client: Mutex::new(Some(client)),
            snapshot: tx,
            wake: Notify::new(),
            last_used: Mutex::new(Instant::now()),
            fast_until: Mutex::new(Instant::now() + QUIET_AFTER),
            alive: std::sync::atomic::AtomicBool::new(true),
        });
        map.insert(key.clone(), p.clone());
        tokio::spawn(run(key.clone(), p.clone(), self.changes.clone()));
        p
    }

    /// The cluster's connectors as of a poll that started after `since` (waiting up to
    /// `timeout` for one), else the latest view. Starts the cluster's poller if needed and keeps
    /// it fast for a while.
    pub async fn view(
        &self,
        key: &ClusterKey,
        client: ConnectClient,
        since: Option<Instant>,
        timeout: Duration,
    ) -> Snapshot {
        let p = self.get(key, client);
        if let Ok(mut f) = p.fast_until.lock() {
            *f = (*f).max(Instant::now() + QUIET_AFTER);
        }
        let mut rx = p.snapshot.subscribe();
        let fresh = |s: &Snapshot| match (s.at, since) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(at), Some(since)) => at >= since,
        };
        if !fresh(&rx.borrow()) {
            p.wake.notify_one();
            let _ = tokio::time::timeout(timeout, rx.wait_for(fresh)).await;
        }
        rx.borrow().clone()
    }

    /// Asks for a poll soon (after this reconcile changed something).
    pub fn kick(&self, key: &ClusterKey) {
        let map = match self.pollers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(p) = map.get(key) {
            if let Ok(mut f) = p.fast_until.lock() {
                *f = Instant::now() + QUIET_AFTER;
            }
            p.wake.notify_one();
        }
    }

    /// Forgets a cluster (its KafkaConnect is gone).
    pub fn forget(&self, key: &ClusterKey) {
        let mut map = match self.pollers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.remove(key);
    }
}

async fn run(key: ClusterKey, p: Arc<Poller>, changes: broadcast::Sender<Change>) {
    let mut breaker = Breaker::default();
    let mut previous: Option<Connectors> = None;
    let mut reachable: Option<bool> = None;
    loop {
        let idle = p
            .last_used
            .lock()
            .map(|t| t.elapsed() > IDLE_LIMIT)
            .unwrap_or(true);
        if idle {
            tracing::debug!(namespace = %key.0, cluster = %key.1, "poller stops");
            p.alive.store(false, std::sync::atomic::Ordering::Release);
            return;
        }
        let now = Instant::now();
        let client = p.client.lock().ok().and_then(|c| c.clone());
        if let Some(client) = client
            && !breaker.is_open(now)
        {
            let started = Instant::now();
            let result = client.list().await.map(Arc::new);
            let ok = !matches!(result, Err(CallError::Unreachable(_)));
            breaker.record(ok, Instant::now());
            if reachable != Some(ok) {
                if reachable.is_some() {
                    tracing::info!(namespace = %key.0, cluster = %key.1, reachable = ok, "cluster REST API reachability changed");
                    let _ = changes.send((key.clone(), None));
                }
                reachable = Some(ok);
            }
            if let Ok(now_view) = &result {
                let diff = match &previous {
                    Some(before) => changed(before, now_view),
                    None => Vec::new(),
                };
                if !diff.is_empty()
                    && let Ok(mut f) = p.fast_until.lock()
                {
                    *f = Instant::now() + QUIET_AFTER;
                }
                for name in diff {
                    let _ = changes.send((key.clone(), Some(name)));
                }
                previous = Some(now_view.clone());
            }
            p.snapshot.send_replace(Snapshot {
                at: Some(started),
                result,
            });
        } else if breaker.is_open(now) {
            // Readers waiting for a fresh view get the breaker's answer at once.
            let cur = p.snapshot.borrow().result.clone();
            let result = match cur {
                Err(e) => Err(e),
                Ok(_) => Err(CallError::Unreachable(
                    "the cluster did not answer several polls in a row".into(),
                )),
            };
            p.snapshot.send_replace(Snapshot {
                at: Some(now),
                result,
            });
        }
        let fast = p
            .fast_until
            .lock()
            .map(|t| Instant::now() < *t)
            .unwrap_or(false);
        let interval = if fast { FAST } else { SLOW };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = p.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_three_failures_and_backs_off_up_to_a_minute() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        b.record(false, t0);
        b.record(false, t0);
        assert!(!b.is_open(t0));
        b.record(false, t0);
        assert!(b.is_open(t0 + Duration::from_secs(4)));
        assert!(!b.is_open(t0 + Duration::from_secs(5)));
        for _ in 0..10 {
            b.record(false, t0);
        }
        assert!(b.is_open(t0 + Duration::from_secs(59)));
        assert!(!b.is_open(t0 + Duration::from_secs(60)));
        b.record(true, t0);
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn changes_name_added_removed_and_altered_connectors() {
        let e = ConnectorExpansion::default();
        let before = BTreeMap::from([("a".to_string(), e.clone()), ("b".to_string(), e.clone())]);
        let mut after = before.clone();
        after.remove("a");
        after.insert("c".into(), e.clone());
        let mut d = changed(&before, &after);
        d.sort();
        assert_eq!(d, vec!["a", "c"]);
        assert!(changed(&before, &before).is_empty());
    }
}
