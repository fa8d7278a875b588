//! Any bytes a broker hands a member as its assignment: decoding never panics, and what decodes
//! re-encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_connect_protocol::Assignment;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Assignment::decode(data) {
        let bytes = a.encode().expect("a decoded assignment encodes");
        assert_eq!(Assignment::decode(&bytes).as_ref(), Ok(&a));
    }
});
