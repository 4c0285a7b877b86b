//! Writes a new value in the old scalar's style, quoting only where the type would change.

use saphyr_parser::ScalarStyle;

/// How the new text is written.
pub(crate) struct Rendered {
    pub text: String,
}

/// Renders `new` for a scalar whose old value is `old` in `style`; `flow` is true inside `[..]`
/// or `{..}`, where `,[]{}` end a plain scalar.
pub(crate) fn render(old: &str, style: ScalarStyle, new: &str, flow: bool) -> Rendered {
    let plain = |text: &str| Rendered {
        text: text.to_string(),
    };
    match style {
        ScalarStyle::SingleQuoted if !new.contains(['\n', '\r']) && new.chars().all(printable) => {
            Rendered {
                text: format!("'{}'", new.replace('\'', "''")),
            }
        }
        ScalarStyle::Plain if plain_ok(new, flow) => {
            let old_is_null = is_null(old);
            // A string stays a string: `tag: v1` set to `1.5` must not become a float. A number,
            // bool or null takes the new text as the user typed it, except that a null (an empty
            // value) becomes a string unless the new text reads as one.
            if reads_as_string(new) || (!old_is_null && !reads_as_string(old)) {
                plain(new)
            } else {
                double(new)
            }
        }
        _ => double(new),
    }
}

fn printable(c: char) -> bool {
    !escaped(c) || c == '\t'
}

fn double(s: &str) -> Rendered {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Rendered { text: out }
}

/// Whether `s` can be written as a plain scalar and read back as the same text.
pub(crate) fn plain_ok(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with([' ', '\t']) || s.ends_with([' ', '\t', ':']) {
        return false;
    }
    if "[]{}#&*!|>'\"%@`,".contains(first) {
        return false;
    }
    // `?` and `:` starts confuse some readers (libyaml in flow context); `-1` and `-x` are common.
    if "?:".contains(first) || (first == '-' && (s[1..].starts_with([' ', '\t']) || s.len() == 1)) {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(":\t") || s.contains("\t#") {
        return false;
    }
    if flow && s.contains([',', '[', ']', '{', '}', ':']) {
        return false;
    }
    s.chars().all(|c| !escaped(c))
}

/// Characters a YAML scalar must spell as an escape: controls, and U+FEFF, which a YAML parser
/// reads as a byte order mark and refuses inside a document (found by the values_edit fuzzer).
fn escaped(c: char) -> bool {
    c.is_control() || c == '\u{feff}'
}

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a plain scalar with this text is a string for YAML 1.2 core schema readers and for
/// YAML 1.1 readers (Helm's go-yaml reads `yes`, `on` and `0777` as non-strings).
pub(crate) fn reads_as_string(s: &str) -> bool {
    if is_null(s) {
        return false;
    }
    const BOOLS: &[&str] = &[
        "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y", "yes", "Yes", "YES", "n", "N",
        "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if BOOLS.contains(&s) {
        return false;
    }
    !(is_int(s) || is_float(s))
}

fn is_int(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |t: &str, f: fn(char) -> bool| {
        !t.is_empty() && t.chars().all(|c| f(c) || c == '_') && t.chars().any(f)
    };
    if let Some(h) = body.strip_prefix("0x") {
        return digits(h, |c| c.is_ascii_hexdigit());
    }
    if let Some(o) = body.strip_prefix("0o") {
        return digits(o, |c| ('0'..='7').contains(&c));
    }
    if let Some(b) = body.strip_prefix("0b") {
        return digits(b, |c| c == '0' || c == '1');
    }
    // YAML 1.1 sexagesimal (`1:30`) is an int too.
    if body.contains(':') {
        return body.split(':').all(|p| digits(p, |c| c.is_ascii_digit()));
    }
    digits(body, |c| c.is_ascii_digit())
}

fn is_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(e) = exp {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let num = |t: &str| t.chars().all(|c| c.is_ascii_digit() || c == '_');
    match frac {
        // `1.`, `.5`, `1.5`; but not `.` alone or `1.5.0`.
        Some(f) => num(int) && num(f) && !(int.is_empty() && f.is_empty()),
        None => exp.is_some() && !int.is_empty() && num(int),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saphyr_parser::ScalarStyle::*;

    fn r(old: &str, style: ScalarStyle, new: &str) -> String {
        render(old, style, new, false).text
    }

    #[test]
    fn strings_stay_strings_and_numbers_stay_numbers() {
        assert_eq!(r("1.0.0", Plain, "1.5.0"), "1.5.0");
        assert_eq!(r("v1", Plain, "1.5"), "\"1.5\"");
        assert_eq!(r("v1", Plain, "true"), "\"true\"");
        assert_eq!(r("v1", Plain, "yes"), "\"yes\"");
        assert_eq!(r("v1", Plain, "null"), "\"null\"");
        assert_eq!(r("3", Plain, "5"), "5");
        assert_eq!(r("true", Plain, "false"), "false");
        assert_eq!(r("42", DoubleQuoted, "43"), "\"43\"");
        assert_eq!(r("42", SingleQuoted, "it's"), "'it''s'");
        assert_eq!(r("x", DoubleQuoted, "a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(r("", Plain, "1.5.0"), "1.5.0");
        assert_eq!(r("", Plain, "1.5"), "\"1.5\"");
        assert_eq!(r("~", Plain, "web"), "web");
    }

    #[test]
    fn a_byte_order_mark_in_a_value_is_escaped() {
        assert_eq!(r("x", ScalarStyle::Plain, "a\u{feff}b"), "\"a\\ufeffb\"");
    }

    #[test]
    fn text_that_cannot_be_plain_is_double_quoted() {
        for s in [
            "a: b", "a #b", "#x", "- x", "", " x", "x ", "*x", "&a", "@x", "`x", "{x}", "x:",
        ] {
            assert!(r("v", Plain, s).starts_with('"'), "{s:?}");
        }
        assert_eq!(render("v", Plain, "a,b", true).text, "\"a,b\"");
        assert_eq!(render("v", Plain, "a,b", false).text, "a,b");
        assert_eq!(
            r("v", Plain, "registry.io:5000/app"),
            "registry.io:5000/app"
        );
        assert_eq!(r("v", SingleQuoted, "a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn numbers_are_recognised() {
        for s in [
            "1", "-1", "0x1F", "0o17", "1_000", "1.5", ".5", "1e3", "-1.5E-3", ".inf", ".nan",
            "1:30",
        ] {
            assert!(!reads_as_string(s), "{s}");
        }
        for s in [
            "1.5.0",
            "v1",
            "1e",
            "e3",
            ".",
            "0x",
            "1.2.3-rc.1",
            "latest",
            "sha256:abc",
        ] {
            assert!(reads_as_string(s), "{s}");
        }
    }
}
