//! JSON text exactly as Kafka's JsonConverter (Jackson) writes it: Java's number formats, and
//! Jackson's string escapes. Written by hand because general JSON writers print doubles their own
//! way (`1e10`, `10000000000.0`) where Java prints `1.0E10`.

/// `Double.toString`: plain between 10^-3 and 10^7, otherwise `d.dddE±n`; always a fraction digit.
pub fn java_double(d: f64) -> String {
    if d.is_nan() || d.is_infinite() {
        // Jackson quotes non-finite numbers by default.
        let word = if d.is_nan() {
            "NaN"
        } else if d > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        return format!("\"{word}\"");
    }
    java_decimal(format!("{d:e}"), d == 0.0, d.abs())
}

/// `Float.toString`, with the shortest digits of the `f32` itself.
pub fn java_float(f: f32) -> String {
    if f.is_nan() || f.is_infinite() {
        return java_double(f64::from(f));
    }
    java_decimal(format!("{f:e}"), f == 0.0, f64::from(f.abs()))
}

/// Re-lays Rust's shortest `{:e}` digits (`-1.2345e4`) in Java's layout.
fn java_decimal(sci: String, zero: bool, magnitude: f64) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    if zero {
        return format!("{sign}0.0");
    }
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (1e-3..1e7).contains(&magnitude) {
        // Plain: the point goes after digit number exp+1.
        let point = exp + 1;
        let (int_part, frac_part) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac_part = if frac_part.is_empty() {
            "0".to_string()
        } else {
            frac_part
        };
        format!("{sign}{int_part}.{frac_part}")
    } else {
        let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{rest}E{exp}", &digits[..1])
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
        ] {
            assert_eq!(java_double(d), want, "{d:e}");
        }
        assert_eq!(java_float(1.5), "1.5");
        assert_eq!(java_float(0.1), "0.1");
        assert_eq!(java_float(1.0e10), "1.0E10");
    }

    #[test]
    fn strings_escape_like_jackson() {
        let mut out = String::new();
        string("café \"q\" \\ \n\t\u{1}", &mut out);
        assert_eq!(out, "\"café \\\"q\\\" \\\\ \\n\\t\\u0001\"");
    }
}
