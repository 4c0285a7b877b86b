//! Checking bodies against GitHub's published OpenAPI description (`../shared/contracts/github`),
//! for the emulator's answers and for the requests the product sends. Test support: it panics or
//! returns the schema errors, it does not serve anything.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Set to a reason, it lets a CI run without the contracts folder skip the contract tests.
pub const SKIP_VAR: &str = "SANDBOX_SKIP_CONTRACTS";

/// `<workspace>/../shared/contracts/<part>`, where this machine's CI keeps the contracts beside the
/// clone, or `None` with a `SKIPPED` note naming `test` outside CI or when [`SKIP_VAR`] says why.
///
/// # Panics
/// Under CI (`CI` set) when the folder is missing and [`SKIP_VAR`] is not set: a contract test that
/// checks nothing must not pass there.
pub fn contracts_dir(part: &str, test: &str) -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the sandbox sits in the workspace");
    let parent = workspace.parent().unwrap_or(workspace);
    let dir = parent.join("shared/contracts").join(part);
    let ci = std::env::var("CI").ok();
    let skip = std::env::var(SKIP_VAR).ok();
    match locate(&dir, ci.as_deref(), skip.as_deref()) {
        Ok(Some(dir)) => Some(dir),
        Ok(None) => {
            let why = skip.filter(|s| !s.trim().is_empty());
            eprintln!(
                "SKIPPED {test}: no contracts at {}{}",
                dir.display(),
                why.map(|w| format!(" ({SKIP_VAR}: {w})"))
                    .unwrap_or_default()
            );
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

/// Whether `dir` holds the contracts; missing is an error under CI unless `skip` gives a reason.
fn locate(dir: &Path, ci: Option<&str>, skip: Option<&str>) -> Result<Option<PathBuf>, String> {
    if dir.is_dir() {
        return Ok(Some(dir.to_path_buf()));
    }
    let under_ci = ci.is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    let skipped = skip.is_some_and(|v| !v.trim().is_empty());
    if under_ci && !skipped {
        return Err(format!(
            "the contracts are expected at {} (../shared/contracts beside the workspace) and CI is \
             set, so the contract tests may not skip; put them there, or set {SKIP_VAR} to the reason \
             this CI cannot have them",
            dir.display()
        ));
    }
    Ok(None)
}

/// OpenAPI 3.0 `nullable: true` as JSON Schema: `type: [T, "null"]`, or `anyOf` with null when the
/// schema has no `type` of its own (a `$ref` or a combinator).
fn translate(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (_, x) in m.iter_mut() {
                translate(x);
            }
            if m.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = m.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else {
                    let inner = Value::Object(std::mem::take(m));
                    m.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(translate),
        _ => {}
    }
}

/// GitHub's OpenAPI description, ready to validate bodies.
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// Loads `openapi.json` from the GitHub contracts folder.
    pub fn load(dir: &Path) -> Spec {
        let text = std::fs::read_to_string(dir.join("openapi.json")).expect("openapi.json reads");
        let mut doc: Value = serde_json::from_str(&text).expect("openapi.json parses");
        translate(&mut doc);
        Spec { doc }
    }

    /// The path template (`/repos/{owner}/{repo}/pulls/{pull_number}`) a concrete path matches.
    pub fn template_of(&self, method: &str, path: &str) -> Option<String> {
        let method = method.to_ascii_lowercase();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paths = self.doc["paths"].as_object()?;
        // Literal segments win over parameters, as a router would choose.
        paths
            .iter()
            .filter(|(_, ops)| !ops[&method].is_null())
            .filter_map(|(t, _)| {
                let tp: Vec<&str> = t.trim_matches('/').split('/').collect();
                let fits = tp.len() == parts.len()
                    && tp
                        .iter()
                        .zip(&parts)
                        .all(|(a, b)| a.starts_with('{') || a == b);
                fits.then(|| (tp.iter().filter(|a| !a.starts_with('{')).count(), t.clone()))
            })
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, t)| t)
    }

    fn errors(&self, schema: Value, body: &Value) -> Vec<String> {
        let mut root = schema;
        root["components"] = self.doc["components"].clone();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .expect("the contract's schema compiles");
        validator
            .iter_errors(body)
            .take(10)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Validates an answer `body` against the schema GitHub documents for (template, method,
    /// status); panics listing the errors.
    pub fn check(&self, path: &str, method: &str, status: u16, body: &Value) {
        let mut resp = self.doc["paths"][path][method]["responses"][status.to_string()].clone();
        assert!(
            !resp.is_null(),
            "the contract has no {status} for {method} {path}"
        );
        if let Some(r) = resp["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/responses/");
            resp = self.doc["components"]["responses"][name].clone();
        }
        let schema = resp["content"]["application/json"]["schema"].clone();
        if schema.is_null() {
            // GitHub documents this status without a body schema (e.g. 422 on ref deletion).
            return;
        }
        let errors = self.errors(schema, body);
        assert!(
            errors.is_empty(),
            "{method} {path} -> {status} does not match GitHub's schema:\n{}",
            errors.join("\n")
        );
    }

    /// Validates a request `body` sent to `method path` against the operation's documented
    /// request body: `Err` names the operation and the errors, or says it is undocumented.
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Result<String, String> {
        let template = self
            .template_of(method, path)
            .ok_or_else(|| format!("{method} {path} is no operation in GitHub's description"))?;
        let op = &self.doc["paths"][&template][method.to_ascii_lowercase()];
        let schema = op["requestBody"]["content"]["application/json"]["schema"].clone();
        if schema.is_null() {
            return Err(format!(
                "{method} {template} takes no JSON body, but one was sent"
            ));
        }
        let errors = self.errors(schema, body);
        if errors.is_empty() {
            Ok(template)
        } else {
            Err(format!("{method} {template}: {}", errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contracts_are_found_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let found = locate(dir.path(), Some("true"), None).unwrap();
        assert_eq!(found.as_deref(), Some(dir.path()));
    }

    #[test]
    fn missing_contracts_fail_under_ci_naming_the_folder() {
        let missing = Path::new("/nonexistent/shared/contracts/github");
        let e = locate(missing, Some("true"), None).unwrap_err();
        assert!(e.contains("/nonexistent/shared/contracts/github"), "{e}");
        assert!(e.contains(SKIP_VAR), "{e}");
    }

    #[test]
    fn missing_contracts_skip_outside_ci_or_when_ci_says_why() {
        let missing = Path::new("/nonexistent/shared/contracts/github");
        assert_eq!(locate(missing, None, None), Ok(None));
        assert_eq!(locate(missing, Some("false"), None), Ok(None));
        assert_eq!(
            locate(
                missing,
                Some("true"),
                Some("GitHub's runners have no shared folder")
            ),
            Ok(None)
        );
    }
}
