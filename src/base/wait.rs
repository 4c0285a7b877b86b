//! The one wait loop every wait uses (the gate, the deploy, `status`, a maintainer's decision):
//! observe, judge the observation with a pure condition, report progress when what is seen changes
//! and at least every [`HEARTBEAT`], pause, again. It has no timeout of its own: the condition
//! knows its deadline and answers with an error when it has passed, so each wait's timeout is an
//! error of its own type.

use std::time::Duration;
// tokio's clock, so tests may run a wait on paused time.
use tokio::time::Instant;

/// The longest a wait stays silent: a log that says nothing for minutes reads as a hung job.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// What a condition says of one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait<T> {
    /// The wait is over.
    Done(T),
    /// Not yet.
    Pending(Pending),
}

/// Why a wait goes on, for the progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// What is seen: a new one is reported at once.
    pub state: String,
    /// Appended when reported (time elapsed and left); a change here alone is no news.
    pub tail: String,
}

impl Pending {
    /// A pending answer with `state` and no tail.
    pub fn new(state: impl Into<String>) -> Pending {
        Pending {
            state: state.into(),
            tail: String::new(),
        }
    }

    /// The same answer with `tail` appended when it is reported.
    pub fn with_tail(mut self, tail: impl Into<String>) -> Pending {
        self.tail = tail.into();
        self
    }

    /// The line as reported.
    pub fn line(&self) -> String {
        if self.tail.is_empty() {
            self.state.clone()
        } else {
            format!("{}{}", self.state, self.tail)
        }
    }
}

/// Says a wait's progress: at once when the state changes, else every [`HEARTBEAT`].
#[derive(Debug)]
pub struct Heartbeat {
    last: Option<String>,
    at: Instant,
}

impl Default for Heartbeat {
    fn default() -> Heartbeat {
        Heartbeat {
            last: None,
            at: Instant::now(),
        }
    }
}

impl Heartbeat {
    /// Whether `p` is news: a state not reported before, or a heartbeat due. Records it as reported.
    pub fn due(&mut self, p: &Pending) -> bool {
        if self.last.as_deref() == Some(p.state.as_str()) && self.at.elapsed() < HEARTBEAT {
            return false;
        }
        self.last = Some(p.state.clone());
        self.at = Instant::now();
        true
    }
}

/// Waits until `judge` says done: `observe` fetches (it may block itself, on a watch stream say),
/// `judge` gets the observation and the time since the wait began, `report` gets each progress
/// line worth printing, and `pause` passes between observations.
///
/// # Errors
/// The first error of `observe` or `judge`: a failed fetch, a terminal state, a deadline passed.
pub async fn until<O, T, E>(
    pause: Duration,
    mut observe: impl AsyncFnMut() -> Result<O, E>,
    mut judge: impl FnMut(O, Duration) -> Result<Wait<T>, E>,
    report: &dyn Fn(&str),
) -> Result<T, E> {
    let started = Instant::now();
    let mut beat = Heartbeat::default();
    loop {
        let seen = observe().await?;
        match judge(seen, started.elapsed())? {
            Wait::Done(t) => return Ok(t),
            Wait::Pending(p) => {
                if beat.due(&p) {
                    report(&p.line());
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[tokio::test(start_paused = true)]
    async fn reports_changes_once_and_ends_when_the_condition_says() {
        let lines = RefCell::new(Vec::new());
        let n = RefCell::new(0u32);
        let got: Result<u32, String> = until(
            Duration::from_secs(2),
            async || {
                *n.borrow_mut() += 1;
                Ok(*n.borrow())
            },
            |seen, _| {
                Ok(match seen {
                    1 | 2 => Wait::Pending(Pending::new("a").with_tail(format!(" ({seen})"))),
                    3 => Wait::Pending(Pending::new("b")),
                    _ => Wait::Done(seen),
                })
            },
            &|l| lines.borrow_mut().push(l.to_string()),
        )
        .await;
        assert_eq!(got, Ok(4));
        // The second "a" differs only in its tail: no news.
        assert_eq!(*lines.borrow(), vec!["a (1)", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unchanged_state_is_said_again_every_heartbeat() {
        let lines = RefCell::new(0u32);
        let got: Result<(), String> = until(
            Duration::from_secs(5),
            async || Ok(()),
            |_, elapsed| {
                if elapsed >= Duration::from_secs(60) {
                    return Err("deadline".into());
                }
                Ok(Wait::Pending(Pending::new("same")))
            },
            &|_| *lines.borrow_mut() += 1,
        )
        .await;
        assert_eq!(got, Err("deadline".into()));
        // At 0s, then at each 15s heartbeat: 15, 30, 45 (60 is the deadline).
        assert_eq!(*lines.borrow(), 4);
    }
}
