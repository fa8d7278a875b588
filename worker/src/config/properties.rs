//! Java `.properties` syntax, as `java.util.Properties.load` reads it, because users bring the
//! worker and connector files they already run Apache Kafka Connect with.
//!
//! Covered: `#` and `!` comments, blank lines, `=`, `:` or whitespace between key and value,
//! continuation lines (an odd number of trailing backslashes) with the next line's leading
//! whitespace dropped, and the escapes `\t \n \r \f \uXXXX` plus `\` before any other character.
//! One deliberate difference: files are read as UTF-8, where Java's `Properties.load(InputStream)`
//! reads ISO-8859-1 and would garble non-ASCII values.

use std::path::Path;

use crate::error::{Error, Result};

/// One `key=value` entry and the line it starts on, for messages that point at the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses properties text; a malformed `\u` escape is an error naming the line, as in Java.
pub fn parse(text: &str) -> Result<Vec<Property>, (usize, String)> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start_line = i + 1;
        let first = lines[i].trim_start_matches(is_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::new();
        let mut current = first;
        loop {
            if ends_with_odd_backslashes(current) {
                logical.push_str(&current[..current.len() - 1]);
                match lines.get(i) {
                    Some(next) => {
                        current = next.trim_start_matches(is_ws);
                        i += 1;
                    }
                    None => break,
                }
            } else {
                logical.push_str(current);
                break;
            }
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key).map_err(|e| (start_line, e))?;
        let value = unescape(raw_value).map_err(|e| (start_line, e))?;
        out.push(Property {
            key,
            value,
            line: start_line,
        });
    }
    Ok(out)
}

/// Reads and parses a file; errors name the file and line.
pub fn load(path: &Path) -> Result<Vec<Property>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|(line, reason)| Error::Properties {
        path: path.to_path_buf(),
        line,
        reason,
    })
}

/// The properties as key → value, a later duplicate replacing an earlier one (as in Java).
pub fn to_map(props: &[Property]) -> std::collections::BTreeMap<String, String> {
    props
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect()
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace; whitespace around the separator goes.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (idx, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => {
                key_end = idx;
                break;
            }
            c if is_ws(c) => {
                key_end = idx;
                break;
            }
            _ => {}
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_ws);
    if let Some(r) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':')) {
        rest = r.trim_start_matches(is_ws);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let code = hex4(&mut chars)?;
                // `Properties.store` writes a character past U+FFFF as two escaped UTF-16
                // halves; they make one char. A lone half cannot be a Rust char (Java would
                // keep it as is).
                if (0xD800..0xDC00).contains(&code) {
                    let mut ahead = chars.clone();
                    if ahead.next() == Some('\\')
                        && ahead.next() == Some('u')
                        && let Ok(low) = hex4(&mut ahead)
                        && (0xDC00..0xE000).contains(&low)
                    {
                        chars = ahead;
                        let joined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(joined).unwrap_or('\u{fffd}'));
                        continue;
                    }
                }
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// The four hex digits of a `\u` escape.
fn hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, String> {
    let hex: String = chars.by_ref().take(4).collect();
    (hex.len() == 4)
        .then(|| u32::from_str_radix(&hex, 16).ok())
        .flatten()
        .ok_or_else(|| format!("malformed \\uxxxx escape: \\u{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        parse(text)
            .expect("parses")
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# comment\n! also a comment\n\n  bootstrap.servers=localhost:9092\ngroup.id : connect-cluster\nkey value with spaces\nempty=\nbare\n";
        assert_eq!(
            kv(text),
            pairs(&[
                ("bootstrap.servers", "localhost:9092"),
                ("group.id", "connect-cluster"),
                ("key", "value with spaces"),
                ("empty", ""),
                ("bare", ""),
            ])
        );
    }

    #[test]
    fn continuation_lines_drop_the_next_lines_leading_whitespace() {
        let text = "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n    username=\"alice\" \\\n    password=\"secret\";\nnext=1\n";
        assert_eq!(
            kv(text),
            pairs(&[
                (
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"secret\";"
                ),
                ("next", "1"),
            ])
        );
        // An even number of trailing backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            kv("path=C:\\\\\nx=y"),
            pairs(&[("path", "C:\\"), ("x", "y")])
        );
        // Line numbers point at the first line of an entry.
        let props = parse("a=1\\\n 2\nb=3").expect("parses");
        assert_eq!((props[1].key.as_str(), props[1].line), ("b", 3));
    }

    #[test]
    fn escapes_in_keys_and_values() {
        assert_eq!(
            kv("a\\=b=c\\:d\nk\\ ey=tab\\there\nuni=caf\\u00e9\nplain\\q=x\r\nwin=crlf\r\n"),
            pairs(&[
                ("a=b", "c:d"),
                ("k ey", "tab\there"),
                ("uni", "café"),
                ("plainq", "x"),
                ("win", "crlf")
            ])
        );
        assert_eq!(
            kv("regex=^topic-\\\\d+$"),
            pairs(&[("regex", "^topic-\\d+$")])
        );
    }

    /// Found by the properties fuzz target: `Properties.store` writes 😀 as `\uD83D\uDE00`.
    #[test]
    fn escaped_utf16_halves_make_one_character_and_a_lone_half_is_replaced() {
        assert_eq!(
            kv("emoji=\\uD83D\\uDE00!\nlone=\\uD83Dx\nswapped=\\uDE00\\uD83D"),
            pairs(&[
                ("emoji", "\u{1F600}!"),
                ("lone", "\u{fffd}x"),
                ("swapped", "\u{fffd}\u{fffd}")
            ])
        );
    }

    #[test]
    fn a_malformed_unicode_escape_names_the_line() {
        let err = parse("ok=1\nbad=\\u12g4\n").expect_err("malformed");
        assert_eq!(err.0, 2);
        assert!(err.1.contains("\\uxxxx"), "{}", err.1);
    }

    #[test]
    fn a_comment_marker_inside_a_value_is_kept_and_later_keys_win() {
        assert_eq!(
            to_map(&parse("a=1 # not a comment\na=2").expect("parses"))["a"],
            "2"
        );
        assert_eq!(
            kv("url=http://x/#frag"),
            pairs(&[("url", "http://x/#frag")])
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("tributary-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("w.properties");
        std::fs::write(&path, "x=\\uZZZZ\n").expect("write");
        let err = load(&path).expect_err("malformed").to_string();
        assert!(err.contains("w.properties:1:"), "{err}");
        let missing = load(&dir.join("none.properties"))
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("none.properties"), "{missing}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
