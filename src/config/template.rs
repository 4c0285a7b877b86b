//! Text templates with `{placeholders}` (titles, bodies, commit messages, branch names), checked
//! when the config is built.

use super::InputError;

/// A text template with `{placeholders}`, checked when the config is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The input it came from, for messages.
    pub input: &'static str,
    /// The text as given.
    pub text: String,
}

/// The placeholders every template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "repository",
    "base",
    "changes",
    "files",
    "key",
    "job",
    "run_url",
    "run_id",
    "run_attempt",
];

/// Values substituted into templates.
#[derive(Debug, Clone, Default)]
pub struct TemplateVars<'a> {
    /// `owner/name`.
    pub repository: &'a str,
    /// The base branch.
    pub base: &'a str,
    /// A short summary of the changes, e.g. `image.tag=1.2.3`.
    pub changes: &'a str,
    /// The values files changed, joined by `, `: which service or environment it is.
    pub files: &'a str,
    /// A short hash of the files, paths and apps the promotion touches ([`super::Scope::key`]).
    pub key: &'a str,
    /// `GITHUB_JOB`: the job's id.
    pub job: &'a str,
    /// Link to the run.
    pub run_url: &'a str,
    /// `GITHUB_RUN_ID`.
    pub run_id: &'a str,
    /// `GITHUB_RUN_ATTEMPT`.
    pub run_attempt: &'a str,
}

impl Template {
    /// Checks that every `{name}` is known; `{{` and `}}` stand for braces.
    ///
    /// # Errors
    /// An unknown or unclosed placeholder, naming `input`.
    pub fn parse(input: &'static str, text: &str) -> Result<Template, InputError> {
        let t = Template {
            input,
            text: text.to_string(),
        };
        t.expand(|name| PLACEHOLDERS.contains(&name).then_some(""))?;
        Ok(t)
    }

    /// The text with the placeholders replaced.
    pub fn render(&self, vars: &TemplateVars<'_>) -> String {
        let lookup = |name: &str| {
            Some(match name {
                "repository" => vars.repository,
                "base" => vars.base,
                "changes" => vars.changes,
                "files" => vars.files,
                "key" => vars.key,
                "job" => vars.job,
                "run_url" => vars.run_url,
                "run_id" => vars.run_id,
                "run_attempt" => vars.run_attempt,
                _ => return None,
            })
        };
        // Placeholders were checked in `parse`, so this cannot fail.
        self.expand(lookup).unwrap_or_else(|_| self.text.clone())
    }

    /// Walks the template, replacing each placeholder by `lookup`.
    fn expand<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> Result<String, InputError> {
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let c = rest.as_bytes()[i];
            rest = &rest[i + 1..];
            if rest.as_bytes().first() == Some(&c) {
                out.push(c as char);
                rest = &rest[1..];
            } else if c == b'}' {
                out.push('}');
            } else {
                let Some(end) = rest.find('}') else {
                    return Err(InputError {
                        input: self.input.into(),
                        message: format!("unclosed '{{' in '{}'", self.text),
                    });
                };
                let name = &rest[..end];
                let value = lookup(name).ok_or_else(|| InputError {
                    input: self.input.into(),
                    message: format!(
                        "unknown placeholder '{{{name}}}', expected one of {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
                out.push_str(value);
                rest = &rest[end + 1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}
