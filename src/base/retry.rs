//! Retry notices. The clients' retry loops sit below the flows and their log, so each loop
//! reports a retry here and `main` points this at the step's log: a retry nobody sees reads as a
//! hang in a failed run's log (issue #16). Before `main` sets it (in unit tests), notices go to
//! stderr.

use crate::base::humantime;
use std::sync::OnceLock;
use std::time::Duration;

type Sink = Box<dyn Fn(&str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sends every later notice to `sink` (the step's log); only the first call counts.
pub fn set_sink(sink: impl Fn(&str) + Send + Sync + 'static) {
    let _ = SINK.set(Box::new(sink));
}

/// Logs that a call failed with `cause` and is tried again after `wait`, with `left` of its
/// retry budget remaining after that wait.
pub fn notice(cause: &dyn std::fmt::Display, wait: Duration, left: Duration) {
    emit(&line(cause, wait, left));
}

/// As [`notice`] for a loop bounded by a count: try `next` of `of` comes after `wait`.
pub fn notice_attempt(cause: &dyn std::fmt::Display, wait: Duration, next: u32, of: u32) {
    emit(&format!(
        "retrying: {cause}; again in {} (try {next} of {of})",
        humantime(wait)
    ));
}

fn emit(line: &str) {
    match SINK.get() {
        Some(sink) => sink(line),
        None => eprintln!("{line}"),
    }
}

fn line(cause: &dyn std::fmt::Display, wait: Duration, left: Duration) -> String {
    format!(
        "retrying: {cause}; again in {}, {} of its retry budget left",
        humantime(wait),
        humantime(left)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_notice_names_the_cause_the_wait_and_the_time_left() {
        let l = super::line(
            &"GitHub answered 502 to GET /repos/a/b/pulls/1: Bad Gateway",
            std::time::Duration::from_millis(1500),
            std::time::Duration::from_secs(58),
        );
        assert_eq!(
            l,
            "retrying: GitHub answered 502 to GET /repos/a/b/pulls/1: Bad Gateway; again in 1s, 58s of its retry budget left"
        );
    }
}
