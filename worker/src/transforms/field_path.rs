//! Field paths of `field.syntax.version` (KIP-821): V1 names one top-level field, whatever
//! characters it has; V2 walks nested structs and maps by dotted steps, with backticks around a
//! step that itself contains dots. The parsing rules are Java's `SingleFieldPath`, quirks
//! included (a backtick not followed by a dot or the end stays part of the name), so a path that
//! works on Apache Kafka Connect selects the same field here.

use tributary_connect_api::{Field, Schema, Struct, Type, Value};

use super::util::{MapEntries, map_get, require_map, require_struct};
use super::{TransformError, TransformResult};

const NESTED: &str = "nested field access";

/// One parsed path: at least one step for V1; V2 may have none (an empty path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    steps: Vec<String>,
}

impl FieldPath {
    /// `version` as configured (already validated to V1 or V2, any case).
    pub fn parse(text: &str, version: &str) -> Result<Self, String> {
        let steps = if version.eq_ignore_ascii_case("V2") {
            v2_steps(text)?
        } else {
            vec![text.to_string()]
        };
        Ok(Self {
            text: text.to_string(),
            steps,
        })
    }

    /// The path as the user wrote it, for error messages.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The field at the end of the path; `None` when a step is missing. A step through a
    /// schema that is not a struct is an error, as looking up a field on it is in Java.
    pub fn field_of<'a>(&self, schema: &'a Schema) -> TransformResult<Option<&'a Field>> {
        let Some((last, parents)) = self.steps.split_last() else {
            return Ok(None);
        };
        let mut current = schema;
        for step in parents {
            match struct_field(current, step)? {
                Some(f) => current = &f.schema,
                None => return Ok(None),
            }
        }
        struct_field(current, last)
    }

    /// The value at the end of the path in a struct; `None` when a step is missing or null.
    /// Parents are read with their defaults; the last step with or without, as configured.
    pub fn value_of_struct(
        &self,
        value: &Struct,
        with_default: bool,
    ) -> TransformResult<Option<Value>> {
        let Some((last, parents)) = self.steps.split_last() else {
            return Ok(None);
        };
        let mut current = value;
        for step in parents {
            if current.schema().field(step).is_none() {
                return Ok(None);
            }
            match current.get(step).map_err(data_error)? {
                None => return Ok(None),
                Some(Value::Struct(s)) => current = s,
                Some(other) => {
                    return Err(require_struct(Some(other.clone()), NESTED)
                        .err()
                        .unwrap_or_else(|| TransformError(NESTED.into())));
                }
            }
        }
        if current.schema().field(last).is_none() {
            return Ok(None);
        }
        let v = if with_default {
            current.get(last)
        } else {
            current.get_without_default(last)
        };
        Ok(v.map_err(data_error)?.cloned())
    }

    /// The value at the end of the path in a schemaless map; `None` when a key is missing.
    pub fn value_of_map(&self, map: &MapEntries) -> TransformResult<Option<Value>> {
        let Some((last, parents)) = self.steps.split_last() else {
            return Ok(None);
        };
        let mut current = map;
        for step in parents {
            match map_get(current, step) {
                None => return Ok(None),
                Some(Value::Map(m)) => current = m,
                Some(other) => {
                    return Err(require_map(Some(other.clone()), NESTED)
                        .err()
                        .unwrap_or_else(|| TransformError(NESTED.into())));
                }
            }
        }
        Ok(map_get(current, last).cloned())
    }
}

fn struct_field<'a>(schema: &'a Schema, name: &str) -> TransformResult<Option<&'a Field>> {
    if schema.type_() != Type::Struct {
        return Err(TransformError(
            "Cannot look up fields on non-struct type".into(),
        ));
    }
    Ok(schema.field(name))
}

fn data_error(e: impl std::fmt::Display) -> TransformError {
    TransformError(e.to_string())
}

/// Splits a V2 path into steps. Dots separate steps; a step starting with a backtick runs to
/// the next backtick that ends the path or is followed by a dot and not preceded by a
/// backslash (`\``, so escaped, stays in the name as a backtick). A trailing dot adds an empty
/// last step.
fn v2_steps(path: &str) -> Result<Vec<String>, String> {
    let bytes = path.as_bytes();
    let find = |from: usize, b: u8| bytes[from..].iter().position(|c| *c == b).map(|i| i + from);
    let mut steps = Vec::new();
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] != b'`' {
            match find(idx, b'.') {
                Some(dot) => {
                    steps.push(path[idx..dot].to_string());
                    idx = dot + 1;
                }
                None => {
                    steps.push(path[idx..].to_string());
                    idx = bytes.len();
                }
            }
            continue;
        }
        let opened_at = idx;
        idx += 1;
        let mut start = idx;
        let mut field = String::new();
        loop {
            let Some(tick) = find(idx, b'`') else {
                return Err(incomplete(path, opened_at));
            };
            idx = tick;
            let escaped = bytes[idx - 1] == b'\\';
            if idx + 1 >= bytes.len() {
                if escaped {
                    return Err(incomplete(path, opened_at));
                }
                field.push_str(&path[start..idx]);
                steps.push(field);
                idx += 1;
                break;
            }
            if bytes[idx + 1] != b'.' {
                // Not a closing backtick: part of the name; look further.
                idx += 1;
                continue;
            }
            if escaped {
                field.push_str(&path[start..idx - 1]);
                field.push('`');
                idx += 1;
                start = idx;
                continue;
            }
            field.push_str(&path[start..idx]);
            steps.push(field);
            idx += 2;
            break;
        }
    }
    if path.ends_with('.') {
        steps.push(String::new());
    }
    Ok(steps)
}

fn incomplete(path: &str, at: usize) -> String {
    // Java reports the position in UTF-16 units; for the ASCII paths people write, the same.
    let position = path[..at].encode_utf16().count();
    format!(
        "Incomplete backtick pair in path: [{path}], consider adding a backslash before backtick at position {position} to escape it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(p: &str) -> Vec<String> {
        FieldPath::parse(p, "V2").unwrap().steps
    }

    #[test]
    fn v1_is_one_step_whatever_it_contains() {
        assert_eq!(
            FieldPath::parse("foo.`bar.baz`", "V1").unwrap().steps,
            ["foo.`bar.baz`"]
        );
    }

    // The cases of Java's SingleFieldPathTest, which define the syntax.
    #[test]
    fn v2_splits_as_java_does() {
        assert!(v2("").is_empty());
        assert_eq!(v2("foobarbaz"), ["foobarbaz"]);
        assert_eq!(v2("foo`bar`baz"), ["foo`bar`baz"]);
        assert_eq!(v2("foo.bar.baz"), ["foo", "bar", "baz"]);
        assert_eq!(v2("foo.`bar.baz`"), ["foo", "bar.baz"]);
        assert_eq!(v2("foo.`bar`.baz"), ["foo", "bar", "baz"]);
        assert_eq!(v2("foo.``bar.baz`"), ["foo", "`bar.baz"]);
        assert_eq!(v2("foo.`bar.baz``"), ["foo", "bar.baz`"]);
        assert_eq!(v2("foo.`ba`r.baz`"), ["foo", "ba`r.baz"]);
        assert_eq!(v2("foo.ba`r.baz"), ["foo", "ba`r", "baz"]);
        assert_eq!(v2("foo.`bar\\`.baz`"), ["foo", "bar`.baz"]);
        assert_eq!(v2("foo.`bar.`baz`"), ["foo", "bar.`baz"]);
        assert_eq!(v2("foo.`bar\\`.`baz`"), ["foo", "bar`.`baz"]);
        assert_eq!(v2("foo.`bar\\\\`.`baz`"), ["foo", "bar\\`.`baz"]);
        assert_eq!(v2("foo.`bar\\`.\\`baz`"), ["foo", "bar`.\\`baz"]);
        assert_eq!(v2("foo.``bar``.baz"), ["foo", "`bar`", "baz"]);
        assert_eq!(v2("``foo.bar.baz``"), ["`foo.bar.baz`"]);
        assert_eq!(v2(".."), ["", "", ""]);
        assert_eq!(v2("foo.."), ["foo", "", ""]);
        assert_eq!(v2(".bar."), ["", "bar", ""]);
        assert_eq!(v2("..baz"), ["", "", "baz"]);
    }

    #[test]
    fn an_unclosed_backtick_names_its_position() {
        let e = FieldPath::parse("foo.`bar", "V2").unwrap_err();
        assert_eq!(
            e,
            "Incomplete backtick pair in path: [foo.`bar], consider adding a backslash before backtick at position 4 to escape it"
        );
        assert!(FieldPath::parse("`a\\`", "V2").is_err());
        assert!(
            FieldPath::parse("é.`x", "V2")
                .unwrap_err()
                .contains("position 2")
        );
    }
}
