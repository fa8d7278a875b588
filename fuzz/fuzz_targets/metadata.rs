//! Any bytes a leader reads as a member's metadata: decoding never panics, and what decodes
//! re-encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_connect_protocol::WorkerMetadata;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = WorkerMetadata::decode(data) {
        let bytes = m.encode().expect("decoded metadata encodes");
        assert_eq!(WorkerMetadata::decode(&bytes).as_ref(), Ok(&m));
    }
});
