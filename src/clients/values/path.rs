//! Value paths as users write them in `--set`: `a.b.c`, `list[0]`, `list[name=web].image` and
//! quoted keys such as `podAnnotations."app.kubernetes.io/version"`. Parsing only; resolution
//! against a document lives in `edit`.

use super::ValuesError;
use std::fmt;

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
    /// The first sequence item that is a mapping whose `key` is the scalar `value`.
    Match {
        /// The key looked up in each item.
        key: String,
        /// The value it must have.
        value: String,
    },
}

/// A parsed value path; `Display` writes it back in the syntax it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The steps from the document root.
    pub segments: Vec<Segment>,
}

impl Path {
    /// Parses a whole path; every character must belong to it.
    ///
    /// # Errors
    /// [`ValuesError::BadPath`] naming the path and what is wrong.
    pub fn parse(text: &str) -> Result<Path, ValuesError> {
        let (path, rest) = parse_prefix(text)?;
        if !rest.is_empty() {
            return Err(bad(text, format!("unexpected `{rest}`")));
        }
        Ok(path)
    }

    /// The first `n` segments, for naming the deepest part of a path that exists.
    pub fn prefix(&self, n: usize) -> Path {
        Path {
            segments: self.segments[..n].to_vec(),
        }
    }
}

fn bad(path: &str, message: String) -> ValuesError {
    ValuesError::BadPath {
        path: path.to_string(),
        message,
    }
}

/// Parses a path at the start of `text` and stops at the first `=` outside quotes and brackets;
/// returns the path and the unparsed rest (which starts with that `=`).
pub(crate) fn parse_prefix(text: &str) -> Result<(Path, &str), ValuesError> {
    let mut segments = Vec::new();
    let mut rest = text;
    let mut first = true;
    loop {
        if rest.is_empty() || rest.starts_with('=') {
            break;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| bad(text, "`[` without `]`".into()))?;
            let inner = &r[..end];
            segments.push(parse_bracket(text, inner)?);
            rest = &r[end + 1..];
            continue;
        }
        if !first {
            rest = rest
                .strip_prefix('.')
                .ok_or_else(|| bad(text, format!("expected `.` or `[` before `{rest}`")))?;
        }
        first = false;
        let (key, r) = parse_key(text, rest)?;
        segments.push(Segment::Key(key));
        rest = r;
    }
    if segments.is_empty() {
        return Err(bad(text, "the path is empty".into()));
    }
    Ok((Path { segments }, rest))
}

fn parse_key<'a>(whole: &str, s: &'a str) -> Result<(String, &'a str), ValuesError> {
    if let Some(q) = s.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => key.push(e),
                    None => break,
                },
                '"' => return Ok((key, &q[i + 1..])),
                c => key.push(c),
            }
        }
        return Err(bad(whole, "unterminated quoted key".into()));
    }
    let end = s.find(['.', '[', '=']).unwrap_or(s.len());
    let key = &s[..end];
    if key.is_empty() {
        return Err(bad(
            whole,
            "empty key (quote keys that contain `.`, `[` or `=`)".into(),
        ));
    }
    Ok((key.to_string(), &s[end..]))
}

fn parse_bracket(whole: &str, inner: &str) -> Result<Segment, ValuesError> {
    if let Some((k, v)) = inner.split_once('=') {
        let unquote = |s: &str| {
            let s = s.trim();
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(s)
                .to_string()
        };
        let (key, value) = (unquote(k), unquote(v));
        if key.is_empty() {
            return Err(bad(whole, format!("`[{inner}]` names no key")));
        }
        return Ok(Segment::Match { key, value });
    }
    inner.trim().parse().map(Segment::Index).map_err(|_| {
        bad(
            whole,
            format!("`[{inner}]` is neither an index nor `key=value`"),
        )
    })
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Key(k) if k.is_empty() || k.contains(['.', '[', ']', '=', '"', ' ']) => {
                write!(f, "\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Segment::Key(k) => f.write_str(k),
            Segment::Index(i) => write!(f, "[{i}]"),
            Segment::Match { key, value } => write!(f, "[{key}={value}]"),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 && matches!(s, Segment::Key(_)) {
                f.write_str(".")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Segment {
        Segment::Key(s.into())
    }

    #[test]
    fn parses_every_form() {
        let p = Path::parse(
            r#"spec.list[0].containers[name=web].podAnnotations."app.kubernetes.io/version""#,
        )
        .unwrap();
        assert_eq!(
            p.segments,
            vec![
                key("spec"),
                key("list"),
                Segment::Index(0),
                key("containers"),
                Segment::Match {
                    key: "name".into(),
                    value: "web".into()
                },
                key("podAnnotations"),
                key("app.kubernetes.io/version"),
            ]
        );
        assert_eq!(
            p.to_string(),
            r#"spec.list[0].containers[name=web].podAnnotations."app.kubernetes.io/version""#
        );
        assert_eq!(
            Path::parse(r#""a key".b"#).unwrap().segments,
            vec![key("a key"), key("b")]
        );
    }

    #[test]
    fn stops_at_the_equals_sign() {
        let (p, rest) = parse_prefix("list[name=web].image=nginx:1=2").unwrap();
        assert_eq!(p.to_string(), "list[name=web].image");
        assert_eq!(rest, "=nginx:1=2");
    }

    #[test]
    fn rejects_broken_paths() {
        for (p, msg) in [
            ("", "empty"),
            ("a..b", "empty key"),
            ("a[1", "without `]`"),
            ("a[x]", "neither an index"),
            ("\"a", "unterminated"),
        ] {
            let e = Path::parse(p).unwrap_err().to_string();
            assert!(e.contains(msg), "{p}: {e}");
        }
    }
}
