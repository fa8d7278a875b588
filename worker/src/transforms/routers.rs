//! The topic routers: RegexRouter and TimestampRouter.

use regex::{Captures, Regex};
use tributary_connect_api::{ConfigDef, ConfigKey, ConfigType as T, Importance as I};

use super::util;
use super::{Record, TransformError, TransformPlugin, TransformResult, Transformation};

// ---- RegexRouter ---------------------------------------------------------------------------

pub const REGEX_ROUTER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.RegexRouter",
    doc: "Rename the topic of records whose topic matches a regular expression.",
    def: || {
        ConfigDef::new()
            .define(ConfigKey::new(
                "regex",
                T::String,
                I::High,
                "Regular expression the whole topic must match.",
            ))
            .define(ConfigKey::new(
                "replacement",
                T::String,
                I::High,
                "The new topic; $1, ${name} refer to the expression's groups.",
            ))
    },
    create: |s| {
        let pattern = util::string(s, "regex").unwrap_or_default();
        let regex = whole_match(&pattern)
            .map_err(|e| format!("Invalid value {pattern} for configuration regex: {e}"))?;
        let replacement = util::string(s, "replacement").unwrap_or_default();
        let parts = JavaReplacement::parse(&replacement, &regex).map_err(|e| {
            format!("Invalid value {replacement} for configuration replacement: {e}")
        })?;
        Ok(Box::new(RegexRouter {
            regex,
            replacement: parts,
        }))
    },
};

/// `pattern` anchored at both ends, for Java's `Matcher.matches()`.
pub fn whole_match(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())
}

/// A Java `Matcher` replacement string: literal text, `$n` and `${name}` group references, and
/// `\` escaping the next character.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Group(usize),
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
struct JavaReplacement(Vec<Part>);

impl JavaReplacement {
    fn parse(s: &str, regex: &Regex) -> Result<Self, String> {
        // The anchoring wrapper adds no capturing group: Java's group count is Rust's less the
        // implicit whole-match group 0.
        let groups = regex.captures_len() - 1;
        let chars: Vec<char> = s.chars().collect();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' => {
                    let c = chars
                        .get(i + 1)
                        .ok_or("character to be escaped is missing")?;
                    text.push(*c);
                    i += 2;
                }
                '$' => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    match chars.get(i + 1) {
                        Some('{') => {
                            let end = chars[i + 2..]
                                .iter()
                                .position(|c| *c == '}')
                                .ok_or("named capturing group is missing trailing '}'")?;
                            let name: String = chars[i + 2..i + 2 + end].iter().collect();
                            if regex.capture_names().flatten().all(|n| n != name) {
                                return Err(format!("No group with name {{{name}}}"));
                            }
                            parts.push(Part::Named(name));
                            i += 3 + end;
                        }
                        Some(c) if c.is_ascii_digit() => {
                            let mut n = c.to_digit(10).map_or(0, |d| d as usize);
                            i += 2;
                            // Further digits join while they still name an existing group.
                            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                                let longer = n * 10 + d as usize;
                                if longer > groups {
                                    break;
                                }
                                n = longer;
                                i += 1;
                            }
                            if n > groups {
                                return Err(format!("No group {n}"));
                            }
                            parts.push(Part::Group(n));
                        }
                        _ => return Err("Illegal group reference".into()),
                    }
                }
                c => {
                    text.push(c);
                    i += 1;
                }
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self(parts))
    }

    fn expand(&self, caps: &Captures<'_>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
                Part::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
            }
        }
        out
    }
}

#[derive(Debug)]
pub struct RegexRouter {
    regex: Regex,
    replacement: JavaReplacement,
}

impl Transformation for RegexRouter {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        if let Some(caps) = self.regex.captures(&r.topic) {
            r.topic = self.replacement.expand(&caps);
        }
        Ok(Some(r))
    }
}

// ---- TimestampRouter -----------------------------------------------------------------------

pub const TIMESTAMP_ROUTER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.TimestampRouter",
    doc: "Route records to a topic named after their topic and timestamp (UTC).",
    def: || {
        ConfigDef::new()
            .define(
                ConfigKey::new(
                    "topic.format",
                    T::String,
                    I::High,
                    "The topic name; ${topic} and ${timestamp} are replaced.",
                )
                .default_value("${topic}-${timestamp}"),
            )
            .define(
                ConfigKey::new(
                    "timestamp.format",
                    T::String,
                    I::High,
                    "A java.text.SimpleDateFormat pattern for ${timestamp}, in UTC.",
                )
                .default_value("yyyyMMdd"),
            )
    },
    create: |s| {
        let format = util::string(s, "timestamp.format").unwrap_or_default();
        let pattern = DatePattern::parse(&format).map_err(|e| {
            format!("Invalid value {format} for configuration timestamp.format: {e}")
        })?;
        Ok(Box::new(TimestampRouter {
            topic_format: util::string(s, "topic.format").unwrap_or_default(),
            pattern,
        }))
    },
};

#[derive(Debug)]
pub struct TimestampRouter {
    topic_format: String,
    pattern: DatePattern,
}

impl Transformation for TimestampRouter {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        let Some(ts) = r.timestamp else {
            return Err(TransformError(format!(
                "Timestamp missing on record: topic={} partition={:?}",
                r.topic, r.kafka_partition
            )));
        };
        let formatted = self.pattern.format(ts);
        r.topic = self
            .topic_format
            .replace("${topic}", &r.topic)
            .replace("${timestamp}", &formatted);
        Ok(Some(r))
    }
}

/// The `SimpleDateFormat` letters for dates and times of day (y, M, d, H, h, m, s, S, a) and
/// quoted literals; other letters are refused when the transform is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct DatePattern(Vec<(char, usize)>, Vec<String>);

impl DatePattern {
    pub fn parse(p: &str) -> Result<Self, String> {
        let chars: Vec<char> = p.chars().collect();
        let mut fields = Vec::new();
        let mut literals = Vec::new();
        let mut i = 0;
        let mut literal = String::new();
        let push = |fields: &mut Vec<(char, usize)>,
                    literals: &mut Vec<String>,
                    lit: &mut String,
                    f: (char, usize)| {
            literals.push(std::mem::take(lit));
            fields.push(f);
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '\'')
                    .ok_or("Unterminated quote")?;
                literal.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
            } else if c.is_ascii_alphabetic() {
                if !"yMdHhmsSa".contains(c) {
                    return Err(format!(
                        "the pattern letter {c} is not supported; use y, M, d, H, h, m, s, S or a"
                    ));
                }
                let run = chars[i..].iter().take_while(|x| **x == c).count();
                push(&mut fields, &mut literals, &mut literal, (c, run));
                i += run;
            } else {
                literal.push(c);
                i += 1;
            }
        }
        literals.push(literal);
        Ok(Self(fields, literals))
    }

    /// `millis` since the epoch, in UTC.
    pub fn format(&self, millis: i64) -> String {
        let days = millis.div_euclid(86_400_000);
        let ms_of_day = millis.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let (hour, minute, second, ms) = (
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1000 % 60,
            ms_of_day % 1000,
        );
        let mut out = String::new();
        for (i, (c, n)) in self.0.iter().enumerate() {
            out.push_str(&self.1[i]);
            let pad = |v: i64, n: usize| format!("{v:0n$}");
            out.push_str(&match c {
                // As SimpleDateFormat: two letters give the year's last two digits.
                'y' if *n == 2 => pad(y.rem_euclid(100), 2),
                'y' => pad(y, *n),
                'M' => pad(m, *n),
                'd' => pad(d, *n),
                'H' => pad(hour, *n),
                'h' => pad(if hour % 12 == 0 { 12 } else { hour % 12 }, *n),
                'm' => pad(minute, *n),
                's' => pad(second, *n),
                'S' => pad(ms, *n),
                _ => (if hour < 12 { "AM" } else { "PM" }).to_string(),
            });
        }
        out.push_str(self.1.last().map_or("", String::as_str));
        out
    }
}

impl DatePattern {
    /// Parses `text` as `SimpleDateFormat.parse` does with this pattern in UTC: leniently
    /// (a 13th month rolls into the next year), numbers of adjacent fields by their letter
    /// count, text after the pattern ignored. `None` when it does not match.
    pub fn parse_millis(&self, text: &str) -> Option<i64> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) =
            (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
        let (mut h12, mut pm) = (None, None);
        for (i, (c, n)) in self.0.iter().enumerate() {
            let literal: Vec<char> = self.1[i].chars().collect();
            if chars.get(pos..pos + literal.len())? != literal.as_slice() {
                return None;
            }
            pos += literal.len();
            if *c == 'a' {
                let rest: String = chars[pos..]
                    .iter()
                    .take(2)
                    .collect::<String>()
                    .to_ascii_uppercase();
                pm = Some(match rest.as_str() {
                    "AM" => false,
                    "PM" => true,
                    _ => return None,
                });
                pos += 2;
                continue;
            }
            // A number abutting the next field takes exactly its letter count of digits.
            let abutting =
                self.1[i + 1].is_empty() && self.0.get(i + 1).is_some_and(|(c, _)| *c != 'a');
            let start = pos;
            if chars.get(pos) == Some(&'-') {
                pos += 1;
            }
            while pos < chars.len()
                && chars[pos].is_ascii_digit()
                && (!abutting || pos - start < *n)
            {
                pos += 1;
            }
            let v: i64 = chars[start..pos].iter().collect::<String>().parse().ok()?;
            match c {
                'y' => {
                    y = if *n <= 2 && pos - start == 2 {
                        2000 + v
                    } else {
                        v
                    }
                }
                'M' => mo = v,
                'd' => d = v,
                'H' => h = v,
                'h' => h12 = Some(v),
                'm' => mi = v,
                's' => s = v,
                _ => ms = v,
            }
        }
        let trailing: Vec<char> = self.1.last()?.chars().collect();
        if chars.get(pos..pos + trailing.len())? != trailing.as_slice() {
            return None;
        }
        if let Some(hh) = h12 {
            h = hh % 12 + if pm == Some(true) { 12 } else { 0 };
        } else if pm == Some(true) && h < 12 {
            h += 12;
        }
        // Lenient months: 13 is January of the next year, 0 December of the last.
        let months = y * 12 + (mo - 1);
        let (y, mo) = (months.div_euclid(12), months.rem_euclid(12) + 1);
        let days = days_from_civil(y, mo, 1) + (d - 1);
        Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month and day of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_simple_date_format_in_utc() {
        let p = DatePattern::parse("yyyyMMdd").unwrap();
        assert_eq!(p.format(0), "19700101");
        // 2024-02-29T23:59:59.999Z
        assert_eq!(p.format(1_709_251_199_999), "20240229");
        let p = DatePattern::parse("yyyy-MM-dd'T'HH:mm:ss.SSS 'at' h a yy").unwrap();
        assert_eq!(
            p.format(1_709_251_199_999),
            "2024-02-29T23:59:59.999 at 11 PM 24"
        );
        assert_eq!(DatePattern::parse("yyyy''MM").unwrap().format(0), "1970'01");
        assert!(
            DatePattern::parse("yyyy-ww")
                .unwrap_err()
                .contains("letter w")
        );
        assert_eq!(
            DatePattern::parse("yyyyMMdd").unwrap().format(-1),
            "19691231"
        );
    }

    #[test]
    fn replacements_follow_javas_matcher() {
        let re = whole_match("(top)(ic)-(?<n>\\d+)").unwrap();
        let caps = re.captures("topic-7").unwrap();
        let r = JavaReplacement::parse("$2$1_${n}\\$x$10", &re).unwrap();
        // $10: group 1 then a literal 0 (there is no group 10).
        assert_eq!(r.expand(&caps), "ictop_7$xtop0");
        assert_eq!(JavaReplacement::parse("$4", &re).unwrap_err(), "No group 4");
        assert_eq!(
            JavaReplacement::parse("$x", &re).unwrap_err(),
            "Illegal group reference"
        );
    }
}
