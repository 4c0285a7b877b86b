//! The edit: every `set` line applied to the values files on the base, each result checked against
//! its schema. Nothing is written; the commit step takes the bytes.

use crate::base::{ErrorKind, StepError};
use crate::clients::git::Checkout;
use crate::clients::values::{self, SetOp};
use crate::config::Config;

/// The files a promotion changes, before and after.
pub struct Edit {
    /// One entry per file, in the order the `set` lines first named them.
    pub files: Vec<FileEdit>,
}

impl Edit {
    /// Whether anything differs from the base.
    pub fn changed(&self) -> bool {
        self.files.iter().any(|f| !f.changes.is_empty())
    }

    /// The `{changes}` of the templates, short enough for a PR title: `image.tag 1.1.0 → 1.2.0`,
    /// joined by `, `; the file is named only when the promotion touches several.
    pub fn describe(&self) -> String {
        let several = self.files.iter().filter(|f| !f.changes.is_empty()).count() > 1;
        let mut out = Vec::new();
        for f in &self.files {
            for c in &f.changes {
                let old = c.old.as_deref().unwrap_or("(none)");
                let file = if several {
                    format!(" in {}", f.path)
                } else {
                    String::new()
                };
                out.push(format!("{} {old} → {}{file}", c.path, c.new));
            }
        }
        out.join(", ")
    }
}

/// One edited values file.
pub struct FileEdit {
    /// Path relative to the repo root.
    pub path: String,
    /// Bytes on the base.
    pub old: Vec<u8>,
    /// Bytes after the edit.
    pub new: Vec<u8>,
    /// The values that changed.
    pub changes: Vec<values::Change>,
}

/// Applies every `set` line to the files on the base, checking each result against its schema.
pub fn edit(checkout: &Checkout, cfg: &Config) -> Result<Edit, StepError> {
    let mut by_file: Vec<(String, Vec<SetOp>)> = Vec::new();
    for line in &cfg.sets {
        let op = SetOp::parse(line).map_err(|e| StepError::new("edit", &e))?;
        let file = op.file.clone().unwrap_or_else(|| cfg.file.clone());
        let file = safe_repo_path(&file)?;
        match by_file.iter_mut().find(|(f, _)| *f == file) {
            Some((_, ops)) => ops.push(op),
            None => by_file.push((file, vec![op])),
        }
    }
    let opts = values::EditOptions {
        create_missing: cfg.create_missing,
        ..values::EditOptions::default()
    };
    let mut files = Vec::new();
    for (path, ops) in by_file {
        let old = checkout
            .read_file(checkout.base_sha(), &path)
            .map_err(|e| StepError::new("edit", &e))?
            .ok_or_else(|| {
                StepError::msg(
                    "edit",
                    ErrorKind::Config,
                    format!("input 'file': {path} does not exist on {}", checkout.base()),
                )
            })?;
        let in_file = |e: values::ValuesError| {
            let mut err = StepError::new("edit", &e);
            err.message = format!("{path}: {}", err.message);
            err
        };
        let edited = values::apply(&old, &ops, &opts).map_err(in_file)?;
        let schema_path = schema_beside(&path);
        if let Some(schema) = checkout
            .read_file(checkout.base_sha(), &schema_path)
            .map_err(|e| StepError::new("edit", &e))?
        {
            values::validate_schema(&edited.bytes, &schema).map_err(in_file)?;
        }
        files.push(FileEdit {
            path,
            old,
            new: edited.bytes,
            changes: edited.changes,
        });
    }
    Ok(Edit { files })
}

/// `values.schema.json` in the folder of `path`, as Helm looks for it.
fn schema_beside(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/values.schema.json"),
        None => "values.schema.json".to_string(),
    }
}

/// Checks that `path` stays inside the repo: relative, no `..`, no empty parts.
fn safe_repo_path(path: &str) -> Result<String, StepError> {
    if !crate::config::is_repo_path(path) {
        return Err(StepError::msg(
            "edit",
            ErrorKind::Config,
            format!("input 'file': expected a path inside the repository like charts/app/values.yaml, got '{path}'"),
        ));
    }
    Ok(path.to_string())
}
