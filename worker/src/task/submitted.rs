//! Which source offsets may be committed: those of records the producer acknowledged, and only
//! up to the first record of the same source partition still in flight, so that a crash never
//! commits past data that is not durable (Java's `SubmittedRecords`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tributary_connect_api::OffsetMap;

/// A record handed to the producer; `ack` is set from the delivery callback.
#[derive(Debug)]
pub struct Submitted {
    pub offset: OffsetMap,
    pub ack: Arc<AtomicBool>,
}

/// In-flight records per source partition (keyed by the partition's offset-store key bytes),
/// in submission order.
#[derive(Debug, Default)]
pub struct SubmittedRecords {
    partitions: BTreeMap<Vec<u8>, VecDeque<Submitted>>,
    in_flight: usize,
}

impl SubmittedRecords {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tracks a record; the returned flag is set once it is acknowledged.
    pub fn submit(&mut self, partition: &[u8], offset: OffsetMap) -> Arc<AtomicBool> {
        let ack = Arc::new(AtomicBool::new(false));
        let queue = match self.partitions.get_mut(partition) {
            Some(q) => q,
            None => self.partitions.entry(partition.to_vec()).or_default(),
        };
        queue.push_back(Submitted {
            offset,
            ack: ack.clone(),
        });
        self.in_flight += 1;
        ack
    }

    /// Removes the acknowledged prefix of every partition and returns, per partition, the offset
    /// of the last record of that prefix: what may be committed now.
    pub fn committable(&mut self) -> BTreeMap<Vec<u8>, OffsetMap> {
        let mut out = BTreeMap::new();
        self.partitions.retain(|partition, queue| {
            let mut last = None;
            while queue.front().is_some_and(|s| s.ack.load(Ordering::Acquire)) {
                last = queue.pop_front().map(|s| s.offset);
                self.in_flight -= 1;
            }
            if let Some(offset) = last {
                out.insert(partition.clone(), offset);
            }
            !queue.is_empty()
        });
        out
    }

    /// Records submitted and not yet committable.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(k: &str, v: i64) -> OffsetMap {
        [(k.to_string(), serde_json::Value::from(v))].into()
    }

    #[test]
    fn commits_only_the_acknowledged_prefix_per_partition() {
        let mut s = SubmittedRecords::new();
        let a = b"[\"c\",{\"file\":1}]".to_vec();
        let b = b"[\"c\",{\"file\":2}]".to_vec();
        let a1 = s.submit(&a, map("pos", 10));
        let a2 = s.submit(&a, map("pos", 20));
        let a3 = s.submit(&a, map("pos", 30));
        let b1 = s.submit(&b, map("pos", 5));
        a1.store(true, Ordering::Release);
        a3.store(true, Ordering::Release);
        b1.store(true, Ordering::Release);
        let c = s.committable();
        assert_eq!(c.get(&a), Some(&map("pos", 10)));
        assert_eq!(c.get(&b), Some(&map("pos", 5)));
        assert_eq!(s.in_flight(), 2);
        // Nothing new until the gap is acknowledged, then both at once.
        assert!(s.committable().is_empty());
        a2.store(true, Ordering::Release);
        assert_eq!(s.committable().get(&a), Some(&map("pos", 30)));
        assert_eq!(s.in_flight(), 0);
    }
}
