//! Any bytes a sink reads through JsonConverter, under any of its settings (the first byte):
//! reading never panics; the fast paths (envelope split, schema cache, direct payload reader)
//! give exactly what the general path gives, values and error messages alike, also when the
//! same converter read another record just before; and what reads writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_worker::converter::json::{DecimalFormat, JsonConverter};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, record)) = data.split_first() else {
        return;
    };
    let format = if flags & 2 == 0 {
        DecimalFormat::Base64
    } else {
        DecimalFormat::Numeric
    };
    let converter = JsonConverter::new(flags & 1 == 0, format, flags & 4 == 0);
    let general = converter.to_connect_data_general(Some(record));
    // Twice: the second read finds this record's schema in the cache.
    for _ in 0..2 {
        let fast = converter.to_connect_data(Some(record));
        match (&fast, &general) {
            (Ok(f), Ok(g)) => assert_eq!(f, g),
            (Err(f), Err(g)) => assert_eq!(f.to_string(), g.to_string()),
            _ => panic!("fast {fast:?} but general {general:?}"),
        }
    }
    if let Ok((schema, value)) = general {
        converter
            .from_connect_data(schema.as_ref(), value.as_ref())
            .expect("what reads writes");
    }
});
