//! Java `.properties` text, written so that `java.util.Properties.load` (and the worker's own
//! parser, which follows it) reads back exactly the map given.

use std::collections::BTreeMap;

fn escape(s: &str, key: bool, out: &mut String) {
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            // Leading whitespace of a value would be dropped; in keys it ends the key.
            ' ' if key || i == 0 => out.push_str("\\ "),
            '=' | ':' if key => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// The properties, one per line, sorted by key (so the text, and its hash, is stable).
pub fn render(props: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in props {
        escape(k, true, &mut out);
        out.push('=');
        escape(v, false, &mut out);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped_as_java_reads_them() {
        let mut m = BTreeMap::new();
        m.insert("a key=x:y".to_string(), " lead\\back\nline#".to_string());
        m.insert("#c".to_string(), "!v".to_string());
        assert_eq!(
            render(&m),
            "\\#c=\\!v\na\\ key\\=x\\:y=\\ lead\\\\back\\nline#\n"
        );
    }
}
