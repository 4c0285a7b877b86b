//! The failure strategy: which action a failed step's [`ErrorKind`] leads to (DESIGN.md §6), as
//! the `failure-strategy` and `on-failure` inputs say. The flows carry it out.

use crate::base::ErrorKind;
use std::time::Duration;

/// What the flow does with a failed step (DESIGN.md §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the failed step again up to `retries` times, `interval` apart, then do `then`.
    Retry {
        /// How many more attempts.
        retries: u32,
        /// Pause between attempts.
        interval: Duration,
        /// What to do when the last attempt fails too.
        then: Box<Action>,
    },
    /// Revert the promotion at once, inside the main step, and fail.
    Rollback,
    /// Warn and succeed.
    Ignore,
    /// Fail and skip the rollback.
    Abort,
    /// Ask on the PR for `/rollback` or `/proceed`; do `then` after `timeout`.
    Manual {
        /// How long to wait for an answer.
        timeout: Duration,
        /// What to do when nobody answers.
        then: Box<Action>,
    },
}

impl Action {
    /// Parses an `on-failure` value: `rollback`, `ignore` or `abort` (the actions that need no
    /// parameters).
    pub fn parse_simple(s: &str) -> Option<Action> {
        match s {
            "rollback" => Some(Action::Rollback),
            "ignore" => Some(Action::Ignore),
            "abort" => Some(Action::Abort),
            _ => None,
        }
    }

    /// The action's name as users write it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Retry { .. } => "retry",
            Action::Rollback => "rollback",
            Action::Ignore => "ignore",
            Action::Abort => "abort",
            Action::Manual { .. } => "manual",
        }
    }

    /// The action with every retry replaced by what follows it: used for `config` errors, which a
    /// second attempt cannot fix.
    fn without_retry(self) -> Action {
        match self {
            Action::Retry { then, .. } => then.without_retry(),
            Action::Manual { timeout, then } => Action::Manual {
                timeout,
                then: Box::new(then.without_retry()),
            },
            other => other,
        }
    }
}

/// One `failure-strategy` entry: the error types it covers and the action for them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `None` stands for `all`.
    on: Option<Vec<ErrorKind>>,
    action: Action,
}

/// The failure strategy: the `failure-strategy` rules in order, then the `on-failure` default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    rules: Vec<Rule>,
    default: Action,
}

/// Default `retries` of a `retry` entry that does not say.
const DEFAULT_RETRIES: u32 = 3;
/// Default `interval` of a `retry` entry that does not say.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Default `timeout` of a `manual` entry that does not say.
const DEFAULT_MANUAL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The error returned by [`Strategy::parse`]: the input it concerns and what was wrong, with the
/// YAML line where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input '{input}': {message}")]
pub struct StrategyError {
    /// `on-failure` or `failure-strategy`.
    pub input: &'static str,
    /// What was expected and what was found.
    pub message: String,
}

/// A `failure-strategy` entry as written; names are checked while deserializing so that
/// yaml_serde reports the line of a bad one.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(deserialize_with = "one_or_many")]
    on: Vec<KindName>,
    action: ActionName,
    retries: Option<u32>,
    interval: Option<DurationText>,
    timeout: Option<DurationText>,
    then: Option<ActionName>,
}

/// `on: timeout` as well as `on: [timeout, health]`: one error type needs no list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<KindName>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Vec<KindName>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an error type or a list of them")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            KindName::from_name(s).map(|k| vec![k]).map_err(E::custom)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = seq.next_element::<KindName>()? {
                out.push(k);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Visit)
}

/// An error type name, or `all`.
struct KindName(Option<ErrorKind>);

impl KindName {
    /// Reads one name, saying which names there are when it is none of them.
    fn from_name(s: &str) -> Result<KindName, String> {
        if s == "all" {
            return Ok(KindName(None));
        }
        ErrorKind::parse(s)
            .map(|k| KindName(Some(k)))
            .ok_or_else(|| {
                let names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown error type '{s}', expected all, {}",
                    names.join(", ")
                )
            })
    }
}

impl<'de> serde::Deserialize<'de> for KindName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KindName::from_name(&s).map_err(serde::de::Error::custom)
    }
}

/// An action name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ActionName {
    Retry,
    Rollback,
    Ignore,
    Abort,
    Manual,
}

impl<'de> serde::Deserialize<'de> for ActionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "retry" => ActionName::Retry,
            "rollback" => ActionName::Rollback,
            "ignore" => ActionName::Ignore,
            "abort" => ActionName::Abort,
            "manual" => ActionName::Manual,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown action '{s}', expected retry, rollback, ignore, abort or manual"
                )))
            }
        })
    }
}

/// A duration such as `10s`, checked while deserializing.
struct DurationText(Duration);

impl<'de> serde::Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::base::parse_duration(&s)
            .map(DurationText)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected a duration like 90s, 10m or 1h30m, got '{s}'"
                ))
            })
    }
}

impl Strategy {
    /// A strategy with no rules: every failure leads to `default`.
    pub fn simple(default: Action) -> Strategy {
        Strategy {
            rules: Vec::new(),
            default,
        }
    }

    /// Builds the strategy from the `on-failure` and `failure-strategy` inputs (the latter may be
    /// empty).
    ///
    /// # Errors
    /// An unknown `on-failure` value; YAML that is not a list of entries; an unknown error type,
    /// action or field; a bad duration; a parameter that the action does not take. Messages name
    /// the input and, for YAML, the line.
    pub fn parse(on_failure: &str, yaml: &str) -> Result<Strategy, StrategyError> {
        let default = Action::parse_simple(on_failure).ok_or_else(|| StrategyError {
            input: "on-failure",
            message: format!("expected rollback, ignore or abort, got '{on_failure}'"),
        })?;
        let err = |message: String| StrategyError {
            input: "failure-strategy",
            message,
        };
        if yaml.trim().is_empty() {
            return Ok(Strategy::simple(default));
        }
        let raw: Vec<RawRule> = yaml_serde::from_str(yaml).map_err(|e| err(yaml_message(&e)))?;
        let lines = entry_lines(yaml);
        let mut rules = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let at = match lines.get(i) {
                Some(line) => format!("entry {} at line {line}", i + 1),
                None => format!("entry {}", i + 1),
            };
            if r.on.is_empty() {
                return Err(err(format!("{at}: `on` lists no error type")));
            }
            let then = match r.then {
                None => default.clone(),
                Some(ActionName::Retry) | Some(ActionName::Manual) => {
                    return Err(err(format!(
                        "{at}: `then` must be rollback, ignore or abort"
                    )))
                }
                Some(a) => simple_action(a),
            };
            let stray = |field: &str, present: bool| {
                if present {
                    Err(err(format!(
                        "{at}: `{field}` does not apply to action {}",
                        action_label(r.action)
                    )))
                } else {
                    Ok(())
                }
            };
            let action = match r.action {
                ActionName::Retry => {
                    stray("timeout", r.timeout.is_some())?;
                    Action::Retry {
                        retries: r.retries.unwrap_or(DEFAULT_RETRIES),
                        interval: r.interval.map_or(DEFAULT_INTERVAL, |d| d.0),
                        then: Box::new(then),
                    }
                }
                ActionName::Manual => {
                    stray("retries", r.retries.is_some())?;
                    stray("interval", r.interval.is_some())?;
                    Action::Manual {
                        timeout: r.timeout.map_or(DEFAULT_MANUAL_TIMEOUT, |d| d.0),
                        then: Box::new(then),
                    }
                }
                other => {
                    stray("retries", r.retries.is_some())?;
                    stray("interval", r.interval.is_some())?;
                    stray("timeout", r.timeout.is_some())?;
                    stray("then", r.then.is_some())?;
                    simple_action(other)
                }
            };
            let on = if r.on.iter().any(|k| k.0.is_none()) {
                None
            } else {
                Some(r.on.into_iter().filter_map(|k| k.0).collect())
            };
            rules.push(Rule { on, action });
        }
        Ok(Strategy { rules, default })
    }

    /// The action for a failure of this type: the first entry that lists it (or `all`), else the
    /// `on-failure` default. A `config` error is never retried: its retry is replaced by `then`.
    pub fn action_for(&self, kind: ErrorKind) -> Action {
        let action = self
            .rules
            .iter()
            .find(|r| r.on.as_ref().is_none_or(|on| on.contains(&kind)))
            .map_or_else(|| self.default.clone(), |r| r.action.clone());
        if kind == ErrorKind::Config {
            action.without_retry()
        } else {
            action
        }
    }

    /// The `on-failure` default.
    pub fn default_action(&self) -> &Action {
        &self.default
    }
}

/// The parameterless action an [`ActionName`] names.
fn simple_action(a: ActionName) -> Action {
    match a {
        ActionName::Rollback => Action::Rollback,
        ActionName::Ignore => Action::Ignore,
        _ => Action::Abort,
    }
}

/// An [`ActionName`] as written.
fn action_label(a: ActionName) -> &'static str {
    match a {
        ActionName::Retry => "retry",
        ActionName::Rollback => "rollback",
        ActionName::Ignore => "ignore",
        ActionName::Abort => "abort",
        ActionName::Manual => "manual",
    }
}

/// A yaml_serde error as `line N: what`, without its `.[0].on[1]: ` path and column suffix.
fn yaml_message(e: &yaml_serde::Error) -> String {
    let text = e.to_string();
    let text = match text.split_once(": ") {
        Some((path, rest)) if path.starts_with('.') || path.starts_with('[') => rest.to_string(),
        _ => text,
    };
    match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            format!("line {}: {}", loc.line(), text.trim_end_matches(&suffix))
        }
        None => text,
    }
}

/// The 1-based line of each top-level `- ` entry, so errors found after deserializing can still
/// point at a line (yaml_serde keeps no spans on values).
fn entry_lines(yaml: &str) -> Vec<usize> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let items: Vec<(usize, usize)> = yaml
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with('-'))
        .map(|(i, l)| (i + 1, indent(l)))
        .collect();
    let Some(min) = items.iter().map(|&(_, ind)| ind).min() else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter(|&(_, ind)| ind == min)
        .map(|(n, _)| n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::parse("all"), None);
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(ErrorKind::from_status(401), ErrorKind::Authentication);
        assert_eq!(ErrorKind::from_status(403), ErrorKind::Authorization);
        assert_eq!(ErrorKind::from_status(422), ErrorKind::Config);
        assert_eq!(ErrorKind::from_status(429), ErrorKind::RateLimit);
        assert_eq!(ErrorKind::from_status(502), ErrorKind::Connectivity);
        assert!(ErrorKind::from_status(503).is_transient());
        assert!(!ErrorKind::from_status(422).is_transient());
    }
}

#[cfg(test)]
mod strategy_tests {
    use super::*;

    const EXAMPLE: &str = "\
- on: [connectivity, timeout]
  action: retry
  retries: 3
  interval: 10s
  then: rollback
- on: [health, verification]
  action: manual
  timeout: 15m
  then: rollback
- on: [all]
  action: ignore
";

    #[test]
    fn design_example_maps_each_kind() {
        let s = Strategy::parse("abort", EXAMPLE).unwrap();
        assert_eq!(
            s.action_for(ErrorKind::Timeout),
            Action::Retry {
                retries: 3,
                interval: Duration::from_secs(10),
                then: Box::new(Action::Rollback)
            }
        );
        assert_eq!(
            s.action_for(ErrorKind::Health),
            Action::Manual {
                timeout: Duration::from_secs(900),
                then: Box::new(Action::Rollback)
            }
        );
        assert_eq!(s.action_for(ErrorKind::Conflict), Action::Ignore);
    }

    #[test]
    fn without_rules_the_default_applies() {
        let s = Strategy::parse("abort", "").unwrap();
        assert_eq!(s.action_for(ErrorKind::Health), Action::Abort);
        let s = Strategy::parse("rollback", "- on: [sync]\n  action: ignore\n").unwrap();
        assert_eq!(s.action_for(ErrorKind::Sync), Action::Ignore);
        assert_eq!(s.action_for(ErrorKind::Health), Action::Rollback);
    }

    #[test]
    fn one_error_type_needs_no_list() {
        let s = Strategy::parse("rollback", "- on: health\n  action: ignore\n").unwrap();
        assert_eq!(s.action_for(ErrorKind::Health), Action::Ignore);
        assert_eq!(s.action_for(ErrorKind::Sync), Action::Rollback);
        let e = Strategy::parse("rollback", "- on: helth\n  action: ignore\n").unwrap_err();
        assert!(e.to_string().contains("unknown error type 'helth'"), "{e}");
    }

    #[test]
    fn config_errors_are_never_retried() {
        let s =
            Strategy::parse("rollback", "- on: [all]\n  action: retry\n  then: abort\n").unwrap();
        assert_eq!(s.action_for(ErrorKind::Config), Action::Abort);
        assert!(matches!(
            s.action_for(ErrorKind::Timeout),
            Action::Retry { retries: 3, .. }
        ));
    }

    #[test]
    fn retry_then_defaults_to_on_failure() {
        let s = Strategy::parse("ignore", "- on: [timeout]\n  action: retry\n").unwrap();
        assert_eq!(
            s.action_for(ErrorKind::Timeout),
            Action::Retry {
                retries: 3,
                interval: Duration::from_secs(10),
                then: Box::new(Action::Ignore)
            }
        );
    }

    #[test]
    fn unknown_error_type_names_input_and_line() {
        let e = Strategy::parse(
            "rollback",
            "- on: [sync]\n  action: ignore\n- on: [helth]\n  action: abort\n",
        )
        .unwrap_err();
        assert_eq!(e.input, "failure-strategy");
        assert!(
            e.message
                .starts_with("line 3: unknown error type 'helth', expected all, config,"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_action_and_bad_duration_name_the_line() {
        let e = Strategy::parse("rollback", "- on: [sync]\n  action: explode\n").unwrap_err();
        assert!(
            e.message.contains("unknown action 'explode'"),
            "{}",
            e.message
        );
        assert_eq!(
            e.to_string(),
            "input 'failure-strategy': line 1: unknown action 'explode', expected retry, rollback, ignore, abort or manual"
        );
        let e = Strategy::parse("rollback", "- on: [sync]\n  action: ignore\n- on: [sync]\n  action: retry\n  interval: 10 minutes\n")
            .unwrap_err();
        assert_eq!(
            e.message,
            "line 3: expected a duration like 90s, 10m or 1h30m, got '10 minutes'"
        );
    }

    #[test]
    fn stray_fields_and_bad_on_failure_are_errors() {
        let e = Strategy::parse(
            "rollback",
            "- on: [sync]\n  action: ignore\n- on: [all]\n  action: abort\n  retries: 2\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'failure-strategy': entry 2 at line 3: `retries` does not apply to action abort"
        );
        let e = Strategy::parse("sometimes", "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'on-failure': expected rollback, ignore or abort, got 'sometimes'"
        );
        let e = Strategy::parse(
            "rollback",
            "- on: [sync]\n  action: ignore\n  colour: red\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
    }
}
