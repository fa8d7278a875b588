//! The internal topics' reader and writer (Java's `KafkaBasedLog`, connect-compat.md §0.2). So far
//! the part every store needs first: placing a record on the partition Java would, so that Java
//! and Tributary workers sharing the topics agree on where each key lives (compaction and
//! per-partition order depend on it). librdkafka's default partitioner (CRC32) does not match.

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with Kafka's seed, over the serialized key.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner picks for a keyed record:
/// `toPositive(murmur2(key)) % partitions`.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes and partitions computed by Kafka 4.3.1's `Utils.murmur2` and `Utils.toPositive`
    /// (a Java program on the Foundation jars), for 25 (offsets) and 5 (statuses) partitions.
    #[test]
    fn matches_kafkas_murmur2_and_default_partitioner() {
        let cases: &[(&str, i32, i32, i32)] = &[
            ("21", -973_932_308, 15, 0),
            ("foobar", -790_332_482, 16, 1),
            ("a-little-bit-long-string", -985_981_536, 12, 2),
            ("status-connector-c", -282_183_708, 15, 0),
            ("status-task-my-conn-12", 1_402_435_662, 12, 2),
            ("[\"src\",{\"filename\":\"/a.txt\"}]", 1_376_378_192, 17, 2),
            ("", 275_646_681, 6, 1),
        ];
        for &(key, hash, p25, p5) in cases {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key:?}");
            assert_eq!(partition_for(key.as_bytes(), 25), p25, "{key:?} of 25");
            assert_eq!(partition_for(key.as_bytes(), 5), p5, "{key:?} of 5");
        }
        assert_eq!(partition_for(b"x", 1), 0);
    }
}
