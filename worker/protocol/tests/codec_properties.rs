//! Round trips of the codecs over arbitrary values, and decoding arbitrary bytes never panics.

use proptest::prelude::*;
use tributary_connect_protocol::{Assignment, ConnectorAssignment, WorkerMetadata};

fn entries() -> impl Strategy<Value = Option<Vec<ConnectorAssignment>>> {
    prop::option::of(prop::collection::vec(
        ("[a-z0-9-]{0,12}", prop::collection::vec(-1i32..50, 0..6))
            .prop_map(|(connector, tasks)| ConnectorAssignment { connector, tasks }),
        0..5,
    ))
}

fn assignment(version: i16) -> impl Strategy<Value = Assignment> {
    (
        0i16..2,
        "[a-z0-9-]{0,20}",
        "[a-z:/0-9.]{0,30}",
        any::<i64>(),
        entries(),
        entries(),
        any::<i32>(),
    )
        .prop_map(
            move |(error, leader, leader_url, config_offset, assigned, revoked, delay_ms)| {
                // Java writes v0 with a non-null assignment and no revocations or delay.
                let (assigned, revoked, delay_ms) = if version == 0 {
                    (Some(assigned.unwrap_or_default()), None, 0)
                } else {
                    (assigned, revoked, delay_ms)
                };
                Assignment {
                    version,
                    error,
                    leader,
                    leader_url,
                    config_offset,
                    assigned,
                    revoked,
                    delay_ms,
                }
            },
        )
}

proptest! {
    #[test]
    fn assignments_round_trip(a in (0i16..3).prop_flat_map(assignment)) {
        let bytes = a.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(Assignment::decode(&bytes), Ok(a));
    }

    #[test]
    fn metadata_round_trips(
        version in 0i16..3,
        url in "[a-z:/0-9.]{0,40}",
        config_offset in any::<i64>(),
        allocation in prop::option::of(assignment(1)),
    ) {
        let m = WorkerMetadata {
            version,
            url,
            config_offset,
            allocation: if version == 0 { None } else { allocation },
        };
        let bytes = m.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(WorkerMetadata::decode(&bytes), Ok(m));
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        // Whatever comes back, it must come back (no panic, no huge allocation).
        let _ = Assignment::decode(&bytes);
        let _ = WorkerMetadata::decode(&bytes);
    }

    #[test]
    fn what_decodes_re_encodes_and_decodes_the_same(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        // Trailing bytes are ignored and a v1/v2 assignment cut short of its optional tail reads
        // with defaults, so the bytes may differ; the value may not.
        if let Ok(a) = Assignment::decode(&bytes) {
            let again = a.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(Assignment::decode(&again), Ok(a));
        }
        if let Ok(m) = WorkerMetadata::decode(&bytes) {
            let again = m.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(WorkerMetadata::decode(&again), Ok(m));
        }
    }
}
