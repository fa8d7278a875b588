//! JSON text exactly as Kafka's JsonConverter (Jackson) writes it: Java's number formats, and
//! Jackson's string escapes. Written by hand because general JSON writers print doubles their own
//! way (`1e10`, `10000000000.0`) where Java prints `1.0E10`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tributary_connect_api::{Schema, Struct, Type, Value, logical};

/// `Double.toString`: plain between 10^-3 and 10^7, otherwise `d.dddE±n`; always a fraction digit.
pub fn java_double(d: f64) -> String {
    let mut out = String::with_capacity(24);
    push_java_double(d, &mut out);
    out
}

/// `Float.toString`, with the shortest digits of the `f32` itself.
pub fn java_float(f: f32) -> String {
    let mut out = String::with_capacity(16);
    push_java_float(f, &mut out);
    out
}

/// Appends `java_double(d)` to `out` without allocating: this runs for every double field of
/// every record a converter writes or a PostgreSQL sink stores.
pub fn push_java_double(d: f64, out: &mut String) {
    if !d.is_finite() {
        // Jackson quotes non-finite numbers by default.
        out.push_str(non_finite(d));
        return;
    }
    let mut ryu = ryu::Buffer::new();
    let shortest = ryu.format_finite(d.abs());
    push_java_decimal(shortest, d.is_sign_negative(), d == 0.0, d.abs(), out);
}

/// Appends `java_float(f)` to `out` without allocating.
pub fn push_java_float(f: f32, out: &mut String) {
    if !f.is_finite() {
        out.push_str(non_finite(f64::from(f)));
        return;
    }
    let mut ryu = ryu::Buffer::new();
    let shortest = ryu.format_finite(f.abs());
    push_java_decimal(
        shortest,
        f.is_sign_negative(),
        f == 0.0,
        f64::from(f.abs()),
        out,
    );
}

fn non_finite(d: f64) -> &'static str {
    if d.is_nan() {
        "\"NaN\""
    } else if d > 0.0 {
        "\"Infinity\""
    } else {
        "\"-Infinity\""
    }
}

/// The significant digits of a number's shortest text, on the stack (at most 17 for an f64).
#[derive(Default)]
struct Digits {
    buf: [u8; 32],
    len: usize,
}

impl Digits {
    /// The digits of ryu's shortest text of a positive number (`42.5`, `0.001`, `1.5e-7`,
    /// `1e21`) without leading or trailing zeros, and the power of ten of the first.
    fn of_shortest(text: &str) -> (Self, i32) {
        let (mantissa, exp) = match text.split_once('e') {
            Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
            None => (text, 0),
        };
        let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits = Digits::default();
        let mut lead = exp + int_part.len() as i32 - 1;
        for b in int_part.bytes().chain(frac.bytes()) {
            if digits.len == 0 && b == b'0' {
                lead -= 1;
                continue;
            }
            if let Some(slot) = digits.buf.get_mut(digits.len) {
                *slot = b;
                digits.len += 1;
            }
        }
        while digits.len > 1 && digits.buf[digits.len - 1] == b'0' {
            digits.len -= 1;
        }
        if digits.len == 0 {
            digits.buf[0] = b'0';
            digits.len = 1;
        }
        (digits, lead)
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits were copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("0")
    }
}

/// Lays ryu's shortest digits out as Java's `Double.toString`/`Float.toString` does
/// (`42.5`, `0.001`, `1.0E7`, `1.5E-7`), appending to `out`.
fn push_java_decimal(shortest: &str, negative: bool, zero: bool, magnitude: f64, out: &mut String) {
    if negative {
        out.push('-');
    }
    if zero {
        out.push_str("0.0");
        return;
    }
    let (digits, exp) = Digits::of_shortest(shortest);
    let digits = digits.as_str();
    let zeros = |out: &mut String, n: i32| out.extend(std::iter::repeat_n('0', n.max(0) as usize));
    if (1e-3..1e7).contains(&magnitude) {
        // Plain: the point goes after digit number exp+1.
        let point = exp + 1;
        if point <= 0 {
            out.push_str("0.");
            zeros(out, -point);
            out.push_str(digits);
        } else if point as usize >= digits.len() {
            out.push_str(digits);
            zeros(out, point - digits.len() as i32);
            out.push_str(".0");
        } else {
            let (int_part, frac_part) = digits.split_at(point as usize);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        }
    } else {
        let (lead, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(lead);
        out.push('.');
        out.push_str(if rest.is_empty() { "0" } else { rest });
        out.push('E');
        out.push_str(itoa::Buffer::new().format(exp));
    }
}

/// A JSON string as Jackson escapes it: quotes, backslashes and control characters; other
/// characters, non-ASCII included, as they are.
pub fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java_prints_them() {
        for (d, want) in [
            (1.0e10, "1.0E10"),
            (1.0e-7, "1.0E-7"),
            (3.0, "3.0"),
            (0.001, "0.001"),
            (1234567.5, "1234567.5"),
            (1.0e7, "1.0E7"),
            (12345678.9, "1.23456789E7"),
            (-0.5, "-0.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1.0e-3 * 0.999, "9.99E-4"),
            // Exactly halfway between two 17-digit texts: Java takes the even one (JDK 17 checked;
            // JDK 19+ specifies it).
            (1.658_206_780_088_562_2e15, "1.6582067800885622E15"),
        ] {
            assert_eq!(java_double(d), want, "{d:e}");
        }
        assert_eq!(java_float(1.5), "1.5");
        assert_eq!(java_float(0.1), "0.1");
        assert_eq!(java_float(1.0e10), "1.0E10");
    }

    /// Any finite double: Java's layout (scientific exactly outside [10^-3, 10^7)), and text
    /// that reads back as the same double, for bit patterns from all over the range.
    #[test]
    fn doubles_and_floats_read_back_as_themselves_in_java_layout() {
        let mut bits: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            // xorshift64: cheap, deterministic, covers every exponent.
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            let d = f64::from_bits(bits);
            if d.is_finite() {
                let text = java_double(d);
                assert_eq!(text.parse::<f64>().ok(), Some(d), "{text}");
                // As short as Rust's own shortest formatting (which may pick the other digit
                // of a tie, where Java and ryu take the even one).
                assert_eq!(
                    significant(&text).len(),
                    significant(&format!("{:e}", d.abs())).len(),
                    "{text}"
                );
                let plain = d == 0.0 || (1e-3..1e7).contains(&d.abs());
                assert_eq!(!text.contains('E'), plain, "{text}");
                assert!(text.contains('.'), "{text}");
            }
            let f = f32::from_bits(bits as u32);
            if f.is_finite() {
                let text = java_float(f);
                assert_eq!(text.parse::<f32>().ok(), Some(f), "{text}");
            }
        }
        assert_eq!(java_double(f64::NAN), "\"NaN\"");
        assert_eq!(java_float(f32::NEG_INFINITY), "\"-Infinity\"");
    }

    /// The significant digits of a number's text (`-0.00120E5` → `12`).
    fn significant(text: &str) -> String {
        let mantissa = text.split(['e', 'E']).next().unwrap_or("");
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let digits = digits.trim_start_matches('0').trim_end_matches('0');
        if digits.is_empty() {
            "0".into()
        } else {
            digits.into()
        }
    }

    #[test]
    fn strings_escape_like_jackson() {
        let mut out = String::new();
        string("café \"q\" \\ \n\t\u{1}", &mut out);
        assert_eq!(out, "\"café \\\"q\\\" \\\\ \\n\\t\\u0001\"");
    }
}

/// A parsed JSON document that keeps what Kafka's converter needs and general parsers drop: the
/// text of numbers (exact decimals) and the order of object members.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number as written, e.g. `10.50` or `-1.0E-7`.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_integral(&self) -> bool {
        matches!(self, Json::Number(n) if !n.contains(['.', 'e', 'E']))
    }
}

/// Parses one JSON document (RFC 8259); errors say where.
pub fn parse(bytes: &[u8]) -> Result<Json, String> {
    parse_at(bytes, 0)
}

/// Parses an envelope's payload text as [`parse`] parses a whole document, counting nesting
/// from inside the envelope.
pub fn parse_payload(bytes: &[u8]) -> Result<Json, String> {
    parse_at(bytes, 1)
}

fn parse_at(bytes: &[u8], depth: usize) -> Result<Json, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    let v = p.value(depth)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected content after the document at byte {}",
            p.i
        ));
    }
    Ok(v)
}

/// Splits `{"schema": S, "payload": P}` (members in that order, names written plainly) into the
/// texts of S and P, without building either tree: records of one stream repeat one schema,
/// which the converter looks up by its text, and the payload is then read straight into
/// Connect values under it ([`typed_value`]). `known_schema` is the schema text seen last: a
/// record that starts with it needs neither a scan nor a UTF-8 check of its schema, and its
/// S comes back `None` (it is the known one). P is everything between the colon and the
/// closing brace, not checked here: a record with more members or junk after P gives a P that
/// is not one JSON value, which its reader refuses, sending the record the general way.
/// `None` for any other shape, valid or not: the caller then takes the general path, which
/// also words the errors.
pub fn split_envelope<'a>(
    bytes: &'a [u8],
    known_schema: Option<&[u8]>,
) -> Option<(Option<&'a str>, &'a str)> {
    fn ws(bytes: &[u8], i: &mut usize) {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    }
    fn eat(bytes: &[u8], i: &mut usize, word: &[u8]) -> bool {
        let found = bytes.get(*i..).is_some_and(|rest| rest.starts_with(word));
        if found {
            *i += word.len();
        }
        found
    }
    // The head is ASCII (`{ "schema" :`), checked byte by byte.
    let mut i = 0;
    ws(bytes, &mut i);
    if !eat(bytes, &mut i, b"{") {
        return None;
    }
    ws(bytes, &mut i);
    if !eat(bytes, &mut i, b"\"schema\"") {
        return None;
    }
    ws(bytes, &mut i);
    if !eat(bytes, &mut i, b":") {
        return None;
    }
    ws(bytes, &mut i);
    let start = i;
    // A complete JSON value followed by the comma is the whole schema; a number that merely
    // starts with the known one is followed by a digit, not a comma, and is scanned.
    let known_end = known_schema
        .filter(|k| !k.is_empty() && bytes[start..].starts_with(k))
        .map(|k| start + k.len())
        .filter(|&end| {
            let mut j = end;
            ws(bytes, &mut j);
            bytes.get(j) == Some(&b',')
        });
    // The known schema's bytes were valid UTF-8 when it was first read: only the rest is
    // checked (the schema is most of a small record's bytes).
    let (schema, rest) = match known_end {
        Some(end) => (None, std::str::from_utf8(&bytes[end..]).ok()?),
        None => {
            let text = std::str::from_utf8(bytes).ok()?;
            let mut p = Parser {
                s: text.as_bytes(),
                i: start,
                text,
            };
            p.skip_value()?;
            (Some(&text[start..p.i]), &text[p.i..])
        }
    };
    let mut p = Parser {
        s: rest.as_bytes(),
        i: 0,
        text: rest,
    };
    p.ws();
    if !p.eat(",") {
        return None;
    }
    p.ws();
    if !p.eat("\"payload\"") {
        return None;
    }
    p.ws();
    if !p.eat(":") {
        return None;
    }
    let body = rest[p.i..].trim_end_matches([' ', '\t', '\n', '\r']);
    let payload = body.strip_suffix('}')?;
    Some((schema, payload))
}

/// Reads `text` (one JSON value) straight into the Connect value `schema` describes, with the
/// converter's rules for nulls (`replace_null_with_default`), numbers and missing struct
/// members, and without the intermediate [`Json`] tree: the hot path of every schema'd record.
/// `None` for anything it does not take on (maps, decimals, schemaless parts, duplicate
/// members, bad JSON, values the schema refuses): the caller then reads the text the general
/// way, which accepts and refuses exactly the same values and words the errors. So this only
/// ever returns what the general path would.
pub fn typed_value(
    text: &str,
    schema: &Schema,
    replace_null_with_default: bool,
) -> Option<Option<Value>> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    // Depth 1: the payload sits inside the envelope, as the general parser counts it.
    let v = p.typed(schema, replace_null_with_default, 1)?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

const MAX_DEPTH: usize = 512;

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        self.ws();
        match self.s.get(self.i) {
            None => self.err("unexpected end of input"),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("]") {
                        return Ok(Json::Array(items));
                    }
                    return self.err("expected , or ]");
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return self.err("expected a member name");
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return self.err("expected :");
                    }
                    members.push((key, self.value(depth + 1)?));
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("}") {
                        return Ok(Json::Object(members));
                    }
                    return self.err("expected , or }");
                }
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            Some(_) => self.err("unexpected character"),
        }
    }

    /// Moves past one value, tracking only strings and nesting; `None` where the text ends
    /// first.
    fn skip_value(&mut self) -> Option<()> {
        match self.s.get(self.i)? {
            b'{' | b'[' => {}
            b'"' => return self.skip_string(),
            _ => {
                let from = self.i;
                while matches!(self.s.get(self.i), Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
                {
                    self.i += 1;
                }
                return (self.i > from).then_some(());
            }
        }
        let mut depth = 0usize;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.skip_string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        self.scan_number()?;
        Ok(Json::Number(self.text[start..self.i].to_string()))
    }

    /// Moves past a JSON number, checking its form.
    fn scan_number(&mut self) -> Result<(), String> {
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i > from
        };
        self.eat("-");
        if !digits(self) {
            return self.err("expected digits");
        }
        if self.eat(".") && !digits(self) {
            return self.err("expected digits after the decimal point");
        }
        if self.eat("e") || self.eat("E") {
            let _ = self.eat("+") || self.eat("-");
            if !digits(self) {
                return self.err("expected exponent digits");
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.err("unterminated string");
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    let esc = self.s.get(self.i).copied();
                    self.i += 1;
                    match esc {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) && self.eat("\\u") {
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                c if c < 0x20 => return self.err("control character in string"),
                _ => {
                    // Copy the run up to the next quote, escape or control character; those
                    // are ASCII, so the run ends on a character boundary.
                    let from = self.i;
                    while self.i < self.s.len()
                        && !matches!(self.s[self.i], b'"' | b'\\' | 0..=0x1f)
                    {
                        self.i += 1;
                    }
                    out.push_str(&self.text[from..self.i]);
                }
            }
        }
    }

    /// See [`typed_value`].
    fn typed(&mut self, schema: &Schema, replace: bool, depth: usize) -> Option<Option<Value>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        if self.eat("null") {
            return null_under(schema, replace);
        }
        let value = match (schema.name(), schema.type_()) {
            (Some(logical::DECIMAL), _) => return None,
            (Some(logical::DATE | logical::TIME), Type::Int32) => {
                let n = i32::try_from(self.integer()?).ok()?;
                logical::from_primitive(schema, Value::Int32(n)).ok()?
            }
            (Some(logical::TIMESTAMP), Type::Int64) => {
                logical::from_primitive(schema, Value::Int64(self.integer()?)).ok()?
            }
            (_, Type::Int8) => Value::Int8(i8::try_from(self.integer()?).ok()?),
            (_, Type::Int16) => Value::Int16(i16::try_from(self.integer()?).ok()?),
            (_, Type::Int32) => Value::Int32(i32::try_from(self.integer()?).ok()?),
            (_, Type::Int64) => Value::Int64(self.integer()?),
            (_, Type::Float32) => Value::Float32(self.number_text()?.parse().ok()?),
            (_, Type::Float64) => Value::Float64(self.number_text()?.parse().ok()?),
            (_, Type::Boolean) => {
                if self.eat("true") {
                    Value::Boolean(true)
                } else if self.eat("false") {
                    Value::Boolean(false)
                } else {
                    return None;
                }
            }
            (_, Type::String) => {
                if self.s.get(self.i) != Some(&b'"') {
                    return None;
                }
                Value::String(self.string().ok()?)
            }
            (_, Type::Bytes) => {
                if self.s.get(self.i) != Some(&b'"') {
                    return None;
                }
                Value::Bytes(BASE64.decode(self.string().ok()?).ok()?)
            }
            (_, Type::Array) => {
                let element = schema.value_schema()?;
                if !self.eat("[") {
                    return None;
                }
                let mut items = Vec::new();
                self.ws();
                if !self.eat("]") {
                    loop {
                        items.push(self.typed(element, replace, depth + 1)?);
                        self.ws();
                        if self.eat(",") {
                            continue;
                        }
                        if self.eat("]") {
                            break;
                        }
                        return None;
                    }
                }
                Value::Array(items)
            }
            (_, Type::Map) => return None,
            (_, Type::Struct) => Value::Struct(self.typed_struct(schema, replace, depth)?),
        };
        Some(Some(value))
    }

    /// A struct's members in any order (the writer's is usually the schema's, tried first);
    /// members the schema does not name are passed over, as the general path ignores them;
    /// fields with no member read as null.
    fn typed_struct(&mut self, schema: &Schema, replace: bool, depth: usize) -> Option<Struct> {
        if !self.eat("{") {
            return None;
        }
        let fields = schema.fields();
        let mut values: Vec<Option<Value>> = vec![None; fields.len()];
        let mut seen: smallvec::SmallVec<[bool; 32]> = smallvec::smallvec![false; fields.len()];
        let mut next = 0;
        self.ws();
        if !self.eat("}") {
            loop {
                self.ws();
                if self.s.get(self.i) != Some(&b'"') {
                    return None;
                }
                let key = self.member_name()?;
                self.ws();
                if !self.eat(":") {
                    return None;
                }
                let index = if fields.get(next).is_some_and(|f| f.name == *key) {
                    Some(next)
                } else {
                    fields.iter().position(|f| f.name == *key)
                };
                match index {
                    Some(i) => {
                        if seen[i] {
                            return None; // a repeated member: the general path decides
                        }
                        seen[i] = true;
                        values[i] = self.typed(&fields[i].schema, replace, depth + 1)?;
                        next = i + 1;
                    }
                    None => {
                        // Not read, but it must be JSON for the record to be.
                        self.value(depth + 1).ok()?;
                    }
                }
                self.ws();
                if self.eat(",") {
                    continue;
                }
                if self.eat("}") {
                    break;
                }
                return None;
            }
        }
        for ((field, value), seen) in fields.iter().zip(values.iter_mut()).zip(seen) {
            if !seen {
                *value = null_under(&field.schema, replace)?;
            }
        }
        Struct::from_values(schema.clone(), values).ok()
    }

    /// A member name; borrowed from the text unless it has escapes.
    fn member_name(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        let from = self.i + 1;
        let mut end = from;
        while end < self.s.len() && !matches!(self.s[end], b'"' | b'\\' | 0..=0x1f) {
            end += 1;
        }
        if self.s.get(end) == Some(&b'"') {
            self.i = end + 1;
            let text: &'a str = self.text;
            return Some(std::borrow::Cow::Borrowed(&text[from..end]));
        }
        self.string().ok().map(std::borrow::Cow::Owned)
    }

    /// A JSON number's text, checked as the general parser checks it.
    fn number_text(&mut self) -> Option<&str> {
        let start = self.i;
        match self.s.get(self.i) {
            Some(c) if *c == b'-' || c.is_ascii_digit() => {}
            _ => return None,
        }
        // Scanned, not built: a number's text as a string per field was a good part of the
        // sink's allocations.
        self.scan_number().ok()?;
        Some(&self.text[start..self.i])
    }

    /// An integral JSON number (no fraction or exponent) that fits an i64.
    fn integer(&mut self) -> Option<i64> {
        let n = self.number_text()?;
        if n.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            return None;
        }
        n.parse().ok()
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .text
            .get(self.i..self.i + 4)
            .ok_or_else(|| format!("bad \\u escape at byte {}", self.i))?;
        let code = u32::from_str_radix(hex, 16)
            .map_err(|_| format!("bad \\u escape at byte {}", self.i))?;
        self.i += 4;
        Ok(code)
    }
}

/// A JSON null under `schema`: its default (when nulls are replaced), else null when it is
/// optional; `None` (refused: the general path words why) when it is required.
fn null_under(schema: &Schema, replace: bool) -> Option<Option<Value>> {
    match schema.default_value() {
        Some(d) if replace => Some(Some(d.clone())),
        _ if schema.is_optional() => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn keeps_number_text_and_member_order() {
        let j = parse(br#" {"b": 10.50, "a": [1, -2.0E-7, true, null], "s": "caf\u00e9 \ud83d\ude00 \"q\""} "#).expect("valid");
        let Json::Object(members) = &j else {
            panic!("object")
        };
        assert_eq!(
            members.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["b", "a", "s"]
        );
        assert_eq!(j.get("b"), Some(&Json::Number("10.50".into())));
        assert_eq!(
            j.get("a"),
            Some(&Json::Array(vec![
                Json::Number("1".into()),
                Json::Number("-2.0E-7".into()),
                Json::Bool(true),
                Json::Null
            ]))
        );
        assert_eq!(j.get("s"), Some(&Json::String("café 😀 \"q\"".into())));
    }

    #[test]
    fn rejects_what_is_not_json_and_says_where() {
        for bad in [
            &b"{"[..],
            b"[1,]",
            b"01x",
            b"\"open",
            b"{\"a\" 1}",
            b"1 2",
            b"nul",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"[1,]").expect_err("bad").contains("byte 3"));
        let deep = "[".repeat(600) + &"]".repeat(600);
        assert!(
            parse(deep.as_bytes())
                .expect_err("deep")
                .contains("too deep")
        );
    }

    #[test]
    fn an_envelope_splits_into_schema_text_and_payload() {
        let doc = br#" { "schema" : {"type":"struct","name":"a}]\"b","fields":[{"field":"x","type":"int64"}]} , "payload" : {"x":1} } "#;
        let schema_text =
            r#"{"type":"struct","name":"a}]\"b","fields":[{"field":"x","type":"int64"}]}"#;
        for known in [
            None,
            Some(schema_text.as_bytes()),
            Some(&b"{\"type\":\"int8\"}"[..]),
        ] {
            let (schema, payload) = split_envelope(doc, known).expect("an envelope");
            // The known schema's text is not handed back: it is the known one.
            let want = (known != Some(schema_text.as_bytes())).then_some(schema_text);
            assert_eq!(schema, want);
            assert_eq!(parse_payload(payload.as_bytes()), parse(br#"{"x":1}"#));
        }
        let (schema, payload) =
            split_envelope(br#"{"schema":null,"payload":"s"}"#, None).expect("null");
        assert_eq!((schema, payload), (Some("null"), r#""s""#));
        // A known number that only starts the record's is not taken for it.
        let (schema, _) = split_envelope(br#"{"schema":12,"payload":1}"#, Some(b"1")).expect("12");
        assert_eq!(schema, Some("12"));
        // Only delimited: what follows the payload, or a payload that is not JSON, is left to
        // whoever reads it, and refused there.
        for (doc, payload) in [
            (&br#"{"schema":null,"payload":[1,]}"#[..], "[1,]"),
            (
                br#"{"schema":null,"payload":1,"extra":2}"#,
                r#"1,"extra":2"#,
            ),
        ] {
            let (_, got) = split_envelope(doc, None).expect("delimited");
            assert_eq!(got, payload);
            assert!(parse_payload(got.as_bytes()).is_err());
        }
        // Anything else goes the general way.
        for other in [
            &br#"{"payload":1,"schema":null}"#[..],
            br#"{"schema":null,"payload":1} x"#,
            br#"{"schema":{"type":"int64""#,
            br#"{"sch\u0065ma":null,"payload":1}"#,
            br#"[1]"#,
        ] {
            assert!(
                split_envelope(other, None).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
