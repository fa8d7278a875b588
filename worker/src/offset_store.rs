//! Source offsets. Keys and values are the bytes Kafka Connect writes (`["<connector>",{partition}]`
//! → `{offset}`, compact JSON), so the same lookup and byte-reuse rules serve the file store of
//! standalone mode now and the offsets topic later.
//!
//! The standalone file is not Java's (Java serialises a `HashMap` with `ObjectOutputStream`): it
//! is a JSON object from key text to value text, replaced atomically (write, fsync, rename) on
//! every flush, so a crash leaves either the old or the new offsets, never a torn file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tributary_connect_api::{OffsetMap, OffsetStorageReader};

use crate::error::{Error, Result};

/// The key bytes of `partition` under `connector`, as Java's `OffsetUtils` writes them.
pub fn offset_key(connector: &str, partition: &OffsetMap) -> Vec<u8> {
    serde_json::to_vec(&(connector, partition)).unwrap_or_default()
}

pub fn offset_value(offset: &OffsetMap) -> Vec<u8> {
    serde_json::to_vec(offset).unwrap_or_default()
}

/// Where source offsets are kept.
pub trait OffsetBackingStore: Send + Sync + std::fmt::Debug {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Stores every entry (`None` removes one) durably before returning.
    fn put_all(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()>;
    /// Every entry, for `GET /connectors/{c}/offsets`.
    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// `offset.storage.file.filename`.
#[derive(Debug)]
pub struct FileOffsetStore {
    path: PathBuf,
    data: Mutex<BTreeMap<String, String>>,
}

impl FileOffsetStore {
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let data = match std::fs::read(path) {
            Ok(bytes) if bytes.is_empty() => BTreeMap::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Config(format!(
                    "offset.storage.file.filename={}: not a Tributary offsets file ({e}); move it away to start from no offsets",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            data: Mutex::new(data),
        })
    }

    fn write(&self, data: &BTreeMap<String, String>) -> Result<()> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_vec_pretty(data).map_err(|e| Error::Config(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl OffsetBackingStore for FileOffsetStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let key = std::str::from_utf8(key).ok()?;
        let data = self.data.lock().ok()?;
        data.get(key).map(|v| v.as_bytes().to_vec())
    }

    fn put_all(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut data = self
            .data
            .lock()
            .map_err(|_| Error::Config("offset store lock poisoned".into()))?;
        let mut next = data.clone();
        for (k, v) in entries {
            let k = String::from_utf8(k).map_err(|e| Error::Conversion(e.to_string()))?;
            match v {
                Some(v) => {
                    next.insert(
                        k,
                        String::from_utf8(v).map_err(|e| Error::Conversion(e.to_string()))?,
                    );
                }
                None => {
                    next.remove(&k);
                }
            }
        }
        self.write(&next)?;
        *data = next;
        Ok(())
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.data
            .lock()
            .map(|d| {
                d.iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The offsets topic's contents by raw key bytes, indexed by the key's meaning (connect-compat.md
/// §2): Java writes a multi-key partition map in `HashMap` order and may format numbers
/// differently, so lookups go through a canonical form, and a partition that already has a key in
/// the topic is written back under those exact bytes (compaction works on bytes).
#[derive(Debug, Clone, Default)]
pub struct OffsetIndex {
    raw: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Canonical key text → the raw key bytes last seen for it.
    canonical: BTreeMap<String, Vec<u8>>,
}

/// `["connector",{partition}]` with the map's keys sorted and numbers normalised; `None` for
/// keys that are not a two-element `[string, object]` array (Java ignores those too).
fn canonical_key(raw: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let arr = v.as_array()?;
    match arr.as_slice() {
        [serde_json::Value::String(_), serde_json::Value::Object(_)] => {
            // serde_json's map keeps keys sorted, so serialising gives one form per meaning.
            serde_json::to_string(&v).ok()
        }
        _ => None,
    }
}

impl OffsetIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a record read from the topic (`None` value: a tombstone).
    pub fn read(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match value {
            Some(v) => {
                if let Some(c) = canonical_key(&key) {
                    self.canonical.insert(c, key.clone());
                }
                self.raw.insert(key, v);
            }
            None => {
                if let Some(c) = canonical_key(&key)
                    && self.canonical.get(&c) == Some(&key)
                {
                    self.canonical.remove(&c);
                }
                self.raw.remove(&key);
            }
        }
    }

    /// The key bytes to write `partition` under: the bytes already in the topic for the same
    /// partition, or Java's serialisation of it.
    pub fn key_for(&self, connector: &str, partition: &OffsetMap) -> Vec<u8> {
        let ours = offset_key(connector, partition);
        canonical_key(&ours)
            .and_then(|c| self.canonical.get(&c).cloned())
            .unwrap_or(ours)
    }

    /// The stored offset of `partition`, whatever order or number format its key was written in.
    pub fn get(&self, connector: &str, partition: &OffsetMap) -> Option<&[u8]> {
        let key = self.key_for(connector, partition);
        self.raw.get(&key).map(Vec::as_slice)
    }

    /// The bytes already in the topic for the key `key` means, or `key` itself.
    pub fn resolve(&self, key: &[u8]) -> Vec<u8> {
        canonical_key(key)
            .and_then(|c| self.canonical.get(&c).cloned())
            .unwrap_or_else(|| key.to_vec())
    }

    /// Lookup by key bytes in any order or number format.
    pub fn get_raw(&self, key: &[u8]) -> Option<&[u8]> {
        self.raw.get(&self.resolve(key)).map(Vec::as_slice)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.raw.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}

/// `offset.storage.topic` (distributed mode): the offsets topic read into an [`OffsetIndex`].
/// Every lookup first reads the topic to its end, as Java's does, so offsets another worker wrote
/// a moment ago are seen; writes wait for the broker's acknowledgement of every entry.
#[derive(Debug)]
pub struct KafkaOffsetStore {
    log: Mutex<crate::kafka_log::KafkaLog>,
    index: Mutex<OffsetIndex>,
    timeout: std::time::Duration,
}

impl KafkaOffsetStore {
    /// Opens the topic (creating it compacted) and reads it to the end.
    pub fn start(
        base: &rdkafka::ClientConfig,
        spec: &crate::kafka_log::TopicSpec,
        client_id: &str,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        let log = crate::kafka_log::KafkaLog::open(base, spec, client_id, false)?;
        let store = Self {
            log: Mutex::new(log),
            index: Mutex::new(OffsetIndex::new()),
            timeout,
        };
        store.catch_up()?;
        Ok(store)
    }

    fn catch_up(&self) -> Result<()> {
        let mut log = self
            .log
            .lock()
            .map_err(|_| Error::Config("offset store lock poisoned".into()))?;
        let mut index = self
            .index
            .lock()
            .map_err(|_| Error::Config("offset store lock poisoned".into()))?;
        log.read_to_end(self.timeout, |r| index.read(r.key, r.value))
    }

    /// [`catch_up`](Self::catch_up), retried through transient failures: right after a broker
    /// restart the offsets topic's leader moves and reads fail for seconds (FencedLeaderEpoch,
    /// metadata errors). A task that started from what was read before would replay everything
    /// since (the chaos suite's broker restart replayed whole minutes), so the read is retried
    /// for up to [`CATCH_UP_PATIENCE`] before settling for what was read.
    fn catch_up_patiently(&self) {
        let deadline = std::time::Instant::now() + CATCH_UP_PATIENCE;
        let mut delay = std::time::Duration::from_millis(200);
        loop {
            match self.catch_up() {
                Ok(()) => return,
                Err(e) if std::time::Instant::now() + delay < deadline => {
                    tracing::debug!(error = %e, retry_in_ms = delay.as_millis() as u64, "reading the offsets topic to its end failed; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(std::time::Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the offsets topic to its end failed; using what was read");
                    return;
                }
            }
        }
    }
}

/// How long a read of the offsets topic keeps retrying before it settles for what it has.
const CATCH_UP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

impl OffsetBackingStore for KafkaOffsetStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.catch_up_patiently();
        let index = self.index.lock().ok()?;
        index.get_raw(key).map(<[u8]>::to_vec)
    }

    fn put_all(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let log = self
            .log
            .lock()
            .map_err(|_| Error::Config("offset store lock poisoned".into()))?;
        for (key, value) in entries {
            let key = self.index.lock().map(|i| i.resolve(&key)).unwrap_or(key);
            log.send(&key, value.as_deref(), self.timeout)?;
            if let Ok(mut i) = self.index.lock() {
                i.read(key, value);
            }
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.catch_up_patiently();
        self.index
            .lock()
            .map(|i| i.entries().map(|(k, v)| (k.to_vec(), v.to_vec())).collect())
            .unwrap_or_default()
    }
}

/// A connector's view of the store: lookups by partition map.
#[derive(Clone)]
pub struct ConnectorOffsetReader {
    pub connector: String,
    pub store: Arc<dyn OffsetBackingStore>,
}

impl std::fmt::Debug for ConnectorOffsetReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorOffsetReader")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

impl OffsetStorageReader for ConnectorOffsetReader {
    fn offset(&self, partition: &OffsetMap) -> Option<OffsetMap> {
        let raw = self.store.get(&offset_key(&self.connector, partition))?;
        serde_json::from_slice(&raw).ok()
    }
}

/// The partitions and offsets of one connector, parsed from every entry of the store; keys that
/// are not `[connector, {partition}]` are skipped, as Java does.
pub fn connector_offsets(
    store: &dyn OffsetBackingStore,
    connector: &str,
) -> Vec<(OffsetMap, Option<OffsetMap>)> {
    store
        .entries()
        .into_iter()
        .filter_map(|(k, v)| {
            let (name, partition): (String, OffsetMap) = serde_json::from_slice(&k).ok()?;
            (name == connector).then(|| (partition, serde_json::from_slice(&v).ok()))
        })
        .collect()
}

/// `GET /connectors/{c}/offsets` of a source connector.
pub fn connector_offsets_entity(
    store: &dyn OffsetBackingStore,
    connector: &str,
) -> tributary_connect_client::ConnectorOffsets {
    tributary_connect_client::ConnectorOffsets {
        offsets: connector_offsets(store, connector)
            .into_iter()
            .map(|(p, o)| tributary_connect_client::ConnectorOffset {
                partition: p.into_iter().collect(),
                offset: o.map(|o| o.into_iter().collect()),
            })
            .collect(),
    }
}

/// KIP-875 `PATCH` (`Some`: each partition's new offset, a null offset removes it) or `DELETE`
/// (`None`: every partition of the connector removed) of a source connector's offsets, written
/// durably before it returns. Existing partitions keep their exact key bytes (the stores resolve
/// canonical keys), so compaction replaces what Java or an earlier run wrote.
pub fn modify_connector_offsets(
    store: &dyn OffsetBackingStore,
    connector: &str,
    offsets: Option<&[(OffsetMap, Option<OffsetMap>)]>,
) -> Result<()> {
    let entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = match offsets {
        Some(list) => list
            .iter()
            .map(|(p, o)| (offset_key(connector, p), o.as_ref().map(offset_value)))
            .collect(),
        None => connector_offsets(store, connector)
            .into_iter()
            .map(|(p, _)| (offset_key(connector, &p), None))
            .collect(),
    };
    if entries.is_empty() {
        return Ok(());
    }
    store.put_all(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_javas_bytes() {
        let p: OffsetMap = [(
            "filename".to_string(),
            serde_json::Value::String("/a.txt".into()),
        )]
        .into();
        assert_eq!(
            String::from_utf8(offset_key("c", &p)).unwrap_or_default(),
            r#"["c",{"filename":"/a.txt"}]"#
        );
    }

    #[test]
    fn file_store_survives_reopen_and_removes_tombstones() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("offsets");
        let store = FileOffsetStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        store
            .put_all(vec![
                (b"[\"a\",{}]".to_vec(), Some(b"{\"position\":1}".to_vec())),
                (b"[\"b\",{}]".to_vec(), Some(b"{\"position\":2}".to_vec())),
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .put_all(vec![(b"[\"b\",{}]".to_vec(), None)])
            .unwrap_or_else(|e| panic!("{e}"));
        let again = FileOffsetStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again.get(b"[\"a\",{}]").as_deref(),
            Some(&b"{\"position\":1}"[..])
        );
        assert_eq!(again.get(b"[\"b\",{}]"), None);
    }

    #[test]
    fn lookups_find_keys_written_in_another_order_and_writes_reuse_their_bytes() {
        let mut idx = OffsetIndex::new();
        // Java wrote a two-key partition in HashMap order, with a Jackson-style double.
        let java_key = br#"["jdbc",{"table":"orders","shard":1.0E1}]"#.to_vec();
        idx.read(java_key.clone(), Some(br#"{"id":41}"#.to_vec()));
        let partition: OffsetMap = [
            ("shard".to_string(), serde_json::json!(10.0)),
            ("table".to_string(), serde_json::json!("orders")),
        ]
        .into();
        assert_ne!(
            offset_key("jdbc", &partition),
            java_key,
            "our own bytes differ"
        );
        assert_eq!(idx.get("jdbc", &partition), Some(&br#"{"id":41}"#[..]));
        assert_eq!(
            idx.key_for("jdbc", &partition),
            java_key,
            "the topic's bytes are reused"
        );
        // Another connector's partition with the same map is a different key.
        assert_eq!(idx.get("other", &partition), None);
        // A tombstone under the same bytes removes it.
        idx.read(java_key, None);
        assert_eq!(idx.get("jdbc", &partition), None);
        assert_eq!(
            idx.key_for("jdbc", &partition),
            offset_key("jdbc", &partition)
        );
        // Keys that are not [connector, {partition}] are kept as bytes but never matched.
        idx.read(b"\"junk\"".to_vec(), Some(b"{}".to_vec()));
        assert_eq!(idx.entries().count(), 1);
    }
}
