//! Kubernetes Events (`kubectl describe` shows them) with a footprint that does not grow with
//! the size of what was said.
//!
//! kube's `Recorder` keeps every event it published, whole (about 1.4 KB inline in its table,
//! plus its strings), for six minutes, to turn a repeat into a series update. With a thousand
//! Connectors created at once that table was the operator's largest allocation (5.9 MB of a
//! 36 MB heap peak, heaptrack). This recorder keeps, per event it may have to repeat, only
//! what a series update needs — the Event's name, namespace, count and when it was last seen —
//! keyed by a hash of what makes two events the same.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

/// A repeat within this time updates the earlier Event's series (as client-go and kube do);
/// later, it is a new Event.
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// At most this many repeatable events are remembered; past it the oldest are forgotten (their
/// repeats become new Events, nothing is lost).
const MAX_REMEMBERED: usize = 4096;

/// What was published, enough to extend it into a series.
#[derive(Debug, Clone, PartialEq)]
struct Published {
    name: String,
    namespace: String,
    count: i32,
    last: Timestamp,
}

/// What to do with an event, given what was published before.
#[derive(Debug, PartialEq)]
enum Step {
    Create,
    /// Patch the series of the Event `name` in `namespace` to `count`.
    Repeat {
        name: String,
        namespace: String,
        count: i32,
    },
}

/// The remembered events, by key; pure so the series rules are testable.
#[derive(Debug, Default)]
struct Memory {
    seen: HashMap<u64, Published>,
}

impl Memory {
    fn step(&self, key: u64, now: Timestamp) -> Step {
        match self.seen.get(&key) {
            Some(p) if p.last + SERIES_WINDOW > now => Step::Repeat {
                name: p.name.clone(),
                namespace: p.namespace.clone(),
                count: p.count + 1,
            },
            _ => Step::Create,
        }
    }

    fn remember(&mut self, key: u64, published: Published) {
        if self.seen.len() >= MAX_REMEMBERED && !self.seen.contains_key(&key) {
            let now = published.last;
            self.seen.retain(|_, p| p.last + SERIES_WINDOW > now);
            if self.seen.len() >= MAX_REMEMBERED
                && let Some(oldest) = self
                    .seen
                    .iter()
                    .min_by_key(|(_, p)| p.last)
                    .map(|(k, _)| *k)
            {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(key, published);
    }

    fn forget(&mut self, key: u64) {
        self.seen.remove(&key);
    }
}

/// What an Event says.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    pub warning: bool,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: &'a str,
}

/// Publishes Events as `controller` (and `instance`, the pod).
pub struct Recorder {
    client: kube::Client,
    controller: String,
    instance: String,
    hasher: std::collections::hash_map::RandomState,
    memory: Mutex<Memory>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("controller", &self.controller)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            hasher: std::collections::hash_map::RandomState::new(),
            memory: Mutex::default(),
        }
    }

    /// Two events are the same when type, reason, action, note and the object they concern
    /// (by uid too: a re-created object gets new Events) are.
    fn key(&self, n: &Notice<'_>, on: &ObjectReference) -> u64 {
        let mut h = self.hasher.build_hasher();
        (n.warning, n.reason, n.action, n.note).hash(&mut h);
        (&on.api_version, &on.kind, &on.namespace, &on.name, &on.uid).hash(&mut h);
        h.finish()
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        match self.memory.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    /// Publishes an event on `on`: a new Event, or the earlier one's series extended.
    pub async fn publish(&self, on: &ObjectReference, n: &Notice<'_>) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = self.key(n, on);
        let step = self.memory().step(key, now);
        if let Step::Repeat {
            name,
            namespace,
            count,
        } = step
        {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch = serde_json::json!({
                "series": EventSeries { count, last_observed_time: MicroTime(now) },
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.memory().remember(
                        key,
                        Published {
                            name,
                            namespace,
                            count,
                            last: now,
                        },
                    );
                    return Ok(());
                }
                // Events expire on the apiserver (an hour by default): start a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => self.memory().forget(key),
                Err(e) => return Err(e),
            }
        }
        let namespace = on.namespace.clone().unwrap_or_else(|| "default".into());
        let event = self.event(on, n, now, &namespace);
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), &event).await?;
        self.memory().remember(
            key,
            Published {
                name: created.metadata.name.unwrap_or_default(),
                namespace,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    fn event(
        &self,
        on: &ObjectReference,
        n: &Notice<'_>,
        now: Timestamp,
        namespace: &str,
    ) -> Event {
        let base = on.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if n.warning { "Warning" } else { "Normal" }.into()),
            reason: Some(n.reason.into()),
            action: Some(n.action.into()),
            note: Some(n.note.into()),
            regarding: Some(on.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(name: &str, count: i32, last: Timestamp) -> Published {
        Published {
            name: name.into(),
            namespace: "ns".into(),
            count,
            last,
        }
    }

    #[test]
    fn a_repeat_within_the_window_extends_the_series_and_a_late_one_is_new() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let mut m = Memory::default();
        assert_eq!(m.step(1, t0), Step::Create);
        m.remember(1, published("a.1", 1, t0));
        assert_eq!(
            m.step(1, t0 + SignedDuration::from_mins(5)),
            Step::Repeat {
                name: "a.1".into(),
                namespace: "ns".into(),
                count: 2
            }
        );
        assert_eq!(m.step(1, t0 + SignedDuration::from_mins(7)), Step::Create);
        assert_eq!(m.step(2, t0), Step::Create, "another key is another event");
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest_first() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let mut m = Memory::default();
        for k in 0..MAX_REMEMBERED as u64 {
            m.remember(
                k,
                published("x", 1, t0 + SignedDuration::from_millis(k as i64)),
            );
        }
        m.remember(
            u64::MAX,
            published("new", 1, t0 + SignedDuration::from_secs(10)),
        );
        assert_eq!(m.seen.len(), MAX_REMEMBERED);
        assert!(!m.seen.contains_key(&0), "the oldest is forgotten");
        assert!(m.seen.contains_key(&1) && m.seen.contains_key(&u64::MAX));
        // Past the window, everything expired goes at once.
        m.remember(
            1 << 40,
            published("late", 1, t0 + SignedDuration::from_mins(10)),
        );
        assert_eq!(m.seen.len(), 1);
    }
}
