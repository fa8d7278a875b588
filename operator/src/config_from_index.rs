//! Which Secrets the Connectors of each cluster name in `configFrom`: the KafkaConnect
//! controller mounts them into the cluster's workers.
//!
//! Kept from a watch on Connectors rather than listed on each KafkaConnect reconcile: with a
//! thousand Connectors every list was megabytes parsed, and each Connector created caused
//! one (quadratic work, and most of the operator's peak memory). The watch also says when a
//! cluster's set may have changed, so a KafkaConnect is reconciled for a Connector only when
//! that Connector's `configFrom` or cluster changed — not for every Connector created.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::crd::Connector;

/// How long a reconcile waits for the first complete listing before it fails (and retries).
const FIRST_LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// `(namespace, name)`.
type Key = (String, String);

/// What one Connector contributes.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    cluster: String,
    secrets: Vec<String>,
}

impl Entry {
    fn of(c: &Connector) -> Self {
        let mut secrets: Vec<String> = c
            .spec
            .config_from
            .iter()
            .flatten()
            .map(|f| f.secret_key_ref.name.clone())
            .collect();
        secrets.sort();
        secrets.dedup();
        Self {
            cluster: c.spec.cluster_ref.name.clone(),
            secrets,
        }
    }
}

/// The index proper, without I/O.
#[derive(Debug, Default)]
struct State {
    live: HashMap<Key, Entry>,
    /// Filled during a (re)list; replaces `live` when the list is complete.
    next: Option<HashMap<Key, Entry>>,
}

/// The clusters (`(namespace, cluster)`) whose set may differ after one Connector went from
/// `old` to `new`.
fn affected(ns: &str, old: Option<&Entry>, new: Option<&Entry>) -> Vec<(String, String)> {
    if old == new {
        return Vec::new();
    }
    let mut out: Vec<(String, String)> = [old, new]
        .into_iter()
        .flatten()
        .filter(|e| !e.secrets.is_empty())
        .map(|e| (ns.to_string(), e.cluster.clone()))
        .collect();
    out.dedup();
    out
}

impl State {
    /// Applies a watch event; returns the clusters to reconcile.
    fn observe(&mut self, event: Event<Connector>) -> Vec<(String, String)> {
        match event {
            Event::Apply(c) => {
                let key = (c.namespace().unwrap_or_default(), c.name_any());
                let new = Entry::of(&c);
                let old = self.live.insert(key.clone(), new.clone());
                affected(&key.0, old.as_ref(), Some(&new))
            }
            Event::Delete(c) => {
                let key = (c.namespace().unwrap_or_default(), c.name_any());
                let old = self.live.remove(&key);
                affected(&key.0, old.as_ref(), None)
            }
            Event::Init => {
                self.next = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(c) => {
                let key = (c.namespace().unwrap_or_default(), c.name_any());
                self.next
                    .get_or_insert_with(HashMap::new)
                    .insert(key, Entry::of(&c));
                Vec::new()
            }
            Event::InitDone => {
                let next = self.next.take().unwrap_or_default();
                let mut out = Vec::new();
                for (key, old) in &self.live {
                    out.extend(affected(&key.0, Some(old), next.get(key)));
                }
                for (key, new) in &next {
                    if !self.live.contains_key(key) {
                        out.extend(affected(&key.0, None, Some(new)));
                    }
                }
                self.live = next;
                out.sort();
                out.dedup();
                out
            }
        }
    }

    fn secrets(&self, ns: &str, cluster: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .live
            .iter()
            .filter(|((n, _), e)| n == ns && e.cluster == cluster)
            .flat_map(|(_, e)| e.secrets.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Shared by the watch that feeds it and the reconciles that read it.
#[derive(Debug)]
pub struct ConfigFromIndex {
    state: Mutex<State>,
    /// True once a first complete listing is in: before it, an empty set would unmount every
    /// Secret and roll the workers.
    listed: tokio::sync::watch::Sender<bool>,
}

impl Default for ConfigFromIndex {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            listed: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl ConfigFromIndex {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Applies a watch event; returns the `(namespace, cluster)`s to reconcile.
    pub fn observe(&self, event: Event<Connector>) -> Vec<(String, String)> {
        let done = matches!(event, Event::InitDone);
        let out = self.state().observe(event);
        if done {
            self.listed.send_replace(true);
        }
        out
    }

    /// The Secrets the Connectors of `cluster` in `ns` name, sorted, once each; waits for the
    /// first complete listing.
    pub async fn secrets(&self, ns: &str, cluster: &str) -> Result<Vec<String>, crate::Error> {
        let mut rx = self.listed.subscribe();
        tokio::time::timeout(FIRST_LIST_TIMEOUT, rx.wait_for(|listed| *listed))
            .await
            .map_err(|_| crate::Error::Kube("the Connectors are not listed yet".into()))?
            .map_err(|_| crate::Error::Kube("the Connector watch stopped".into()))?;
        Ok(self.state().secrets(ns, cluster))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(ns: &str, name: &str, cluster: &str, secrets: &[&str]) -> Connector {
        let from: Vec<serde_json::Value> = secrets
            .iter()
            .map(|s| serde_json::json!({"key": "k", "secretKeyRef": {"name": s, "key": "k"}}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "clusterRef": {"name": cluster},
                "class": "C",
                "configFrom": from,
            }
        }))
        .expect("a Connector")
    }

    fn pair(ns: &str, c: &str) -> (String, String) {
        (ns.into(), c.into())
    }

    #[test]
    fn only_changes_to_configfrom_or_cluster_reconcile_a_cluster() {
        let mut s = State::default();
        assert!(s.observe(Event::Init).is_empty());
        s.observe(Event::InitApply(conn("a", "x", "one", &["s1"])));
        assert_eq!(s.observe(Event::InitDone), vec![pair("a", "one")]);
        // A Connector without configFrom concerns no cluster's mounts.
        assert!(
            s.observe(Event::Apply(conn("a", "plain", "one", &[])))
                .is_empty()
        );
        // An unchanged configFrom (a status write, a config edit) neither.
        assert!(
            s.observe(Event::Apply(conn("a", "x", "one", &["s1"])))
                .is_empty()
        );
        assert_eq!(
            s.observe(Event::Apply(conn("a", "x", "one", &["s1", "s2"]))),
            vec![pair("a", "one")]
        );
        assert_eq!(s.secrets("a", "one"), vec!["s1", "s2"]);
        // Moving to another cluster concerns both.
        assert_eq!(
            s.observe(Event::Apply(conn("a", "x", "two", &["s2"]))),
            vec![pair("a", "one"), pair("a", "two")]
        );
        assert!(s.secrets("a", "one").is_empty());
        // Dropping configFrom concerns the cluster that mounted it.
        assert_eq!(
            s.observe(Event::Apply(conn("a", "x", "two", &[]))),
            vec![pair("a", "two")]
        );
        s.observe(Event::Apply(conn("a", "y", "two", &["s3"])));
        assert_eq!(
            s.observe(Event::Delete(conn("a", "y", "two", &["s3"]))),
            vec![pair("a", "two")]
        );
        assert!(s.secrets("a", "two").is_empty());
    }

    #[test]
    fn sets_are_per_namespace_and_cluster_and_deduplicated() {
        let mut s = State::default();
        s.observe(Event::Apply(conn("a", "x", "one", &["s1", "s2"])));
        s.observe(Event::Apply(conn("a", "y", "one", &["s2", "s1"])));
        s.observe(Event::Apply(conn("b", "x", "one", &["other"])));
        s.observe(Event::Apply(conn("a", "z", "two", &["s9"])));
        assert_eq!(s.secrets("a", "one"), vec!["s1", "s2"]);
        assert_eq!(s.secrets("b", "one"), vec!["other"]);
        assert_eq!(s.secrets("a", "two"), vec!["s9"]);
    }

    #[test]
    fn a_relist_replaces_the_set_and_reports_what_went_missing() {
        let mut s = State::default();
        s.observe(Event::Apply(conn("a", "gone", "one", &["s1"])));
        s.observe(Event::Apply(conn("a", "kept", "two", &["s2"])));
        s.observe(Event::Init);
        s.observe(Event::InitApply(conn("a", "kept", "two", &["s2"])));
        s.observe(Event::InitApply(conn("a", "new", "three", &["s3"])));
        // While listing, the old set still answers.
        assert_eq!(s.secrets("a", "one"), vec!["s1"]);
        assert_eq!(
            s.observe(Event::InitDone),
            vec![pair("a", "one"), pair("a", "three")]
        );
        assert!(s.secrets("a", "one").is_empty());
        assert_eq!(s.secrets("a", "three"), vec!["s3"]);
    }

    #[tokio::test]
    async fn secrets_wait_for_the_first_listing() {
        let index = std::sync::Arc::new(ConfigFromIndex::default());
        let reader = index.clone();
        let read = tokio::spawn(async move { reader.secrets("a", "one").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!read.is_finished(), "answered before anything was listed");
        index.observe(Event::Init);
        index.observe(Event::InitApply(conn("a", "x", "one", &["s1"])));
        index.observe(Event::InitDone);
        assert_eq!(read.await.expect("joined").expect("listed"), vec!["s1"]);
    }
}
