//! Lossless editing of Helm values files (DESIGN.md §5): bytes in, bytes out.
//!
//! saphyr-parser finds the byte span of each target scalar; only those bytes are replaced, so
//! comments, blank lines, quoting, anchors and line endings survive. The result is parsed again
//! with yaml_serde and must equal the original with exactly the targeted values changed. Files,
//! git and printing stay outside (`cli` for the `edit` command, `promote` for the action).

mod diff;
mod edit;
pub mod path;
#[cfg(test)]
mod proptests;
mod render;
mod schema;
mod tree;

pub use diff::unified_diff;
pub use edit::apply;
pub use path::{Path, Segment};
pub use schema::validate_schema;

use crate::base::{Classify, ErrorKind};

/// One `set` line: an optional file and a `path=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOp {
    /// The file the line names before `:`, if any (`charts/api/values.yaml:image.tag=1.2`).
    pub file: Option<String>,
    /// Where the value goes.
    pub path: Path,
    /// The new value as text; its YAML type follows the old scalar (see `apply`).
    pub value: String,
}

impl SetOp {
    /// Parses `image.tag=1.2` or `charts/api/values.yaml:image.tag=1.2`. The file prefix is only
    /// taken where the text before the first `:` ends in `.yaml` or `.yml`.
    ///
    /// # Errors
    /// [`ValuesError::BadSet`] without `=`, [`ValuesError::BadPath`] for a broken path.
    pub fn parse(line: &str) -> Result<SetOp, ValuesError> {
        let line = line.trim();
        let (file, rest) = match line.split_once(':') {
            Some((f, rest)) if f.ends_with(".yaml") || f.ends_with(".yml") => {
                (Some(f.trim().to_string()), rest)
            }
            _ => (None, line),
        };
        let (path, rest) = path::parse_prefix(rest.trim_start())?;
        let value = rest.strip_prefix('=').ok_or_else(|| ValuesError::BadSet {
            line: line.to_string(),
            message: "expected `path=value`".into(),
        })?;
        Ok(SetOp {
            file,
            path,
            value: value.to_string(),
        })
    }
}

/// How `apply` may edit and what it refuses.
#[derive(Debug, Clone)]
pub struct EditOptions {
    /// Add keys (and missing parent mappings) that do not exist.
    pub create_missing: bool,
    /// Edit an anchored scalar (or a scalar inside an anchored collection); its aliases change too.
    pub allow_anchor: bool,
    /// Document index in a multi-document file (0-based).
    pub document: Option<usize>,
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of collections accepted.
    pub max_depth: usize,
    /// Most nodes that aliases may add once expanded (billion laughs).
    pub max_alias_nodes: usize,
}

impl Default for EditOptions {
    fn default() -> Self {
        EditOptions {
            create_missing: false,
            allow_anchor: false,
            document: None,
            max_bytes: 10 * 1024 * 1024,
            max_depth: 64,
            max_alias_nodes: 100_000,
        }
    }
}

/// One value that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path as the user wrote it.
    pub path: String,
    /// The old value; `None` when the key was created or the value was empty.
    pub old: Option<String>,
    /// The new value.
    pub new: String,
}

/// The result of `apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The whole new file.
    pub bytes: Vec<u8>,
    /// The values that differ from before, in the order of the sets (empty = nothing to commit).
    pub changes: Vec<Change>,
}

/// The error returned by `apply`, `validate_schema`, `SetOp::parse` and the `edit` command.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// The path text does not parse.
    #[error("bad path `{path}`: {message}")]
    BadPath { path: String, message: String },
    /// A `set` line is not `path=value`.
    #[error("bad set `{line}`: {message}")]
    BadSet { line: String, message: String },
    /// The file is larger than `max_bytes`.
    #[error("the file is {size} bytes, more than the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    /// The file is not UTF-8.
    #[error("the file is not valid UTF-8 (byte {offset})")]
    InvalidUtf8 { offset: usize },
    /// The YAML does not parse.
    #[error("malformed YAML at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// Collections nest deeper than `max_depth`.
    #[error("nesting deeper than {max} levels at line {line}")]
    TooDeep { max: usize, line: usize },
    /// Aliases expand to more nodes than `max_alias_nodes`.
    #[error(
        "aliases expand to more than {max} nodes (line {line}); refusing a possible alias bomb"
    )]
    AliasExpansion { max: usize, line: usize },
    /// The path does not exist.
    #[error("`{path}` not found: {detail} (deepest existing part: `{existing}`)")]
    Missing {
        path: String,
        existing: String,
        detail: String,
    },
    /// The edit would have to guess; `reason` says why.
    #[error("refusing to edit `{path}`: {reason}")]
    Refused { path: String, reason: String },
    /// `--create-missing` cannot add the key here.
    #[error("cannot create `{path}`: {reason}")]
    CannotCreate { path: String, reason: String },
    /// `--document` is out of range.
    #[error("document {index} does not exist (the file has {count})")]
    NoSuchDocument { index: usize, count: usize },
    /// The re-parsed result is not the original with only the targeted values changed.
    #[error("the edited file does not parse back as expected: {0}")]
    Verify(String),
    /// The schema itself is not usable.
    #[error("bad schema: {0}")]
    BadSchema(String),
    /// The edited document does not validate.
    #[error("schema validation failed at `{path}`: {message}")]
    Schema { path: String, message: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for ValuesError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Config
    }

    fn hint(&self) -> Option<String> {
        match self {
            ValuesError::Missing { .. } => {
                Some("check the path, or pass create-missing to add the key".into())
            }
            ValuesError::Refused { reason, .. } if reason.contains("anchor") => {
                Some("pass --allow-anchor to edit the anchor and every alias of it".into())
            }
            ValuesError::Refused { reason, .. } if reason.contains("documents") => {
                Some("pass --document N (0-based) to pick one".into())
            }
            ValuesError::TooLarge { .. } => {
                Some("raise the size limit only for files you trust".into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_lines_take_a_file_only_when_it_is_yaml() {
        let s = SetOp::parse("charts/api/values.yaml:image.tag=1.2").unwrap();
        assert_eq!(s.file.as_deref(), Some("charts/api/values.yaml"));
        assert_eq!(s.path.to_string(), "image.tag");
        assert_eq!(s.value, "1.2");
        let s = SetOp::parse("image.repository=registry.io:5000/app").unwrap();
        assert_eq!(s.file, None);
        assert_eq!(s.value, "registry.io:5000/app");
        let s = SetOp::parse(r#"podAnnotations."a.io/v"=x=y"#).unwrap();
        assert_eq!(
            s.path.segments,
            vec![
                Segment::Key("podAnnotations".into()),
                Segment::Key("a.io/v".into())
            ]
        );
        assert_eq!(s.value, "x=y");
        let e = SetOp::parse("image.tag").unwrap_err().to_string();
        assert!(e.contains("expected `path=value`"), "{e}");
    }

    #[test]
    fn errors_are_config_errors() {
        let e = SetOp::parse("a").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
