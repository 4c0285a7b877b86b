//! Layer 1 of the inputs (STYLE.md #7): the trimmed strings as they arrive.

use super::inputs::{input_def, INPUTS};
use std::collections::BTreeMap;

/// The run-context variables read besides the inputs.
const CONTEXT_VARS: &[&str] = &[
    "GITHUB_API_URL",
    "GITHUB_SERVER_URL",
    "GITHUB_RUN_ID",
    "GITHUB_JOB",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_REPOSITORY",
];

/// Inputs as they arrive, trimmed; an empty value counts as absent (the runner sets `INPUT_X=""`
/// for inputs without a default).
#[derive(Debug, Clone, Default)]
pub struct RawInputs {
    values: BTreeMap<&'static str, String>,
    pub(super) context: BTreeMap<&'static str, String>,
}

impl RawInputs {
    /// Reads each input from `flags` (name, value; repeated flags already joined by newlines), else
    /// `INPUT_<NAME>`, else its fallback variable; and the run context, all through `env`.
    pub fn collect(flags: &[(String, String)], env: impl Fn(&str) -> Option<String>) -> RawInputs {
        let mut values = BTreeMap::new();
        for def in INPUTS {
            let flag = flags
                .iter()
                .rev()
                .find(|(n, _)| n == def.name)
                .map(|(_, v)| v.clone());
            let found = [flag, env(&def.env_name()), def.env_fallback.and_then(&env)]
                .into_iter()
                .flatten()
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty());
            if let Some(v) = found {
                values.insert(def.name, v);
            }
        }
        let context = CONTEXT_VARS
            .iter()
            .filter_map(|&k| env(k).map(|v| (k, v.trim().to_string())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        RawInputs { values, context }
    }

    /// [`RawInputs::collect`] from the process environment.
    pub fn from_env(flags: &[(String, String)]) -> RawInputs {
        RawInputs::collect(flags, |k| std::env::var(k).ok())
    }

    /// The value given for an input, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// These inputs less `name`: the post step acts from its state, whatever `command` the runner
    /// passes it (every declared input reaches both containers).
    pub fn without(mut self, name: &str) -> RawInputs {
        self.values.retain(|k, _| *k != name);
        self
    }

    /// Values of the secret inputs that were given, to mask before anything is printed.
    pub fn secrets(&self) -> Vec<&str> {
        INPUTS
            .iter()
            .filter(|d| d.secret)
            .filter_map(|d| self.get(d.name))
            .collect()
    }

    /// The value, else the default.
    pub(super) fn value(&self, name: &'static str) -> Option<&str> {
        self.get(name)
            .or_else(|| input_def(name).and_then(|d| d.default))
    }
}
