//! The local `edit` command: apply `--set` to a values file in place and print the diff.

use crate::clients::runtime::{self, Runtime};
use crate::clients::values::{
    apply, unified_diff, validate_schema, EditOptions, SetOp, ValuesError,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `gitops-promote edit` (a fixed interface: other checks call it).
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// Values file to edit.
    #[arg(long)]
    pub file: PathBuf,
    /// `PATH=VALUE`, applied in order; all apply or none.
    #[arg(long = "set", required = true)]
    pub set: Vec<String>,
    /// Also print a unified diff.
    #[arg(long)]
    pub diff: bool,
    /// Print the diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Add keys that do not exist under their parent.
    #[arg(long)]
    pub create_missing: bool,
    /// Edit an anchored scalar (its aliases change too).
    #[arg(long)]
    pub allow_anchor: bool,
    /// Document index in a multi-document file (0-based).
    #[arg(long)]
    pub document: Option<usize>,
    /// JSON schema the result must validate against (default: values.schema.json beside the file).
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

/// Runs `edit`: reads the file, applies the sets, validates against the schema, prints the diff
/// when asked and writes the result atomically (temp file in the same folder, then rename).
/// Errors go to stderr as `::error` annotations with exit code 1.
pub fn run(args: &EditArgs) -> ExitCode {
    match edit(args, &Runtime::from_process()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", annotation(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Formats an error as a GitHub `::error` workflow command, escaping what would end it early.
pub fn annotation(message: &str) -> String {
    runtime::annotation("error", "gitops-promote edit", message)
}

fn edit(args: &EditArgs, rt: &Runtime) -> Result<(), ValuesError> {
    let io = |path: &Path, source| ValuesError::Io {
        path: path.display().to_string(),
        source,
    };
    let sets = args
        .set
        .iter()
        .map(|s| SetOp::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(s) = sets.iter().find(|s| s.file.is_some()) {
        return Err(ValuesError::BadSet {
            line: format!("{}:{}={}", s.file.as_deref().unwrap_or(""), s.path, s.value),
            message: "`edit` takes the file from --file; drop the file prefix".into(),
        });
    }
    let opts = EditOptions {
        create_missing: args.create_missing,
        allow_anchor: args.allow_anchor,
        document: args.document,
        ..EditOptions::default()
    };
    let file = &args.file;
    // Check the size before reading the whole file into memory.
    let meta = std::fs::metadata(file).map_err(|e| io(file, e))?;
    if meta.len() > opts.max_bytes as u64 {
        return Err(ValuesError::TooLarge {
            size: meta.len() as usize,
            max: opts.max_bytes,
        });
    }
    let old = std::fs::read(file).map_err(|e| io(file, e))?;
    let edited = apply(&old, &sets, &opts)?;
    let schema = match &args.schema {
        Some(s) => Some(s.clone()),
        None => {
            let beside = file
                .parent()
                .unwrap_or(Path::new("."))
                .join("values.schema.json");
            beside.is_file().then_some(beside)
        }
    };
    if let Some(schema) = schema {
        let text = std::fs::read(&schema).map_err(|e| io(&schema, e))?;
        validate_schema(&edited.bytes, &text)?;
    }
    if args.diff || args.dry_run {
        // The file's lines are the repo's, so under Actions the diff prints inert.
        rt.data(&unified_diff(
            &file.display().to_string(),
            &old,
            &edited.bytes,
        ));
    }
    if args.dry_run || edited.bytes == old {
        return Ok(());
    }
    write_atomic(file, &edited.bytes).map_err(|e| io(file, e))
}

/// Writes through a temp file in the same folder and a rename, so readers see the old file or
/// the new one, never a half-written one; the file keeps its permissions.
fn write_atomic(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(file) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_would_end_them() {
        assert_eq!(
            annotation("100% bad\r\nline"),
            "::error title=gitops-promote edit::100%25 bad%0D%0Aline"
        );
    }
}
