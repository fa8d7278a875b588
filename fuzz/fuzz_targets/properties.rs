//! The `.properties` reader on any text: it never panics, and every entry names a line of the
//! text. Then, with the bytes read as `key\0value\0…` pairs, what `java.util.Properties.store`
//! would write for them (its escapes, `\uXXXX` UTF-16 units for everything past `~`) reads back
//! as exactly those pairs, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_worker::config::properties;

/// `Properties.saveConvert`: keys escape every space, values only a leading one.
fn escape(s: &str, is_key: bool) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(props) = properties::parse(&text) {
        let lines = text.split('\n').count();
        for p in &props {
            assert!(p.line >= 1 && p.line <= lines, "{p:?} of {lines} lines");
        }
    }

    let parts: Vec<String> = data
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let pairs: Vec<(String, String)> = parts
        .chunks_exact(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect();
    let written: String = pairs
        .iter()
        .map(|(k, v)| format!("{}={}\n", escape(k, true), escape(v, false)))
        .collect();
    let read: Vec<(String, String)> = properties::parse(&written)
        .unwrap_or_else(|(line, e)| panic!("line {line} of what store writes: {e}\n{written}"))
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect();
    assert_eq!(read, pairs, "{written}");
});
