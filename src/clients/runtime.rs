//! GitHub Actions I/O: outputs and state (heredoc-delimited, in `$GITHUB_OUTPUT`/`$GITHUB_STATE`),
//! `STATE_*` in the post step, the job summary, groups, masks and escaped annotations. Outside
//! Actions (`GITHUB_ACTIONS` unset) it prints plain `error: ...` lines and `name=value` outputs.
//! Written here rather than taken from ghactions-core, which corrupts multi-line outputs and has no
//! state, masks or summary (DESIGN.md §10). It knows nothing about the flows.

use crate::base::text::runner_lines;
use crate::base::{ErrorKind, StepError};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A shared, lockable output stream; group guards hold a clone so they need no borrow of the
/// runtime.
type Stream = Arc<Mutex<Box<dyn Write + Send>>>;

/// The runner's files and the `STATE_*` values, read once so tests can pass their own.
#[derive(Debug, Clone, Default)]
pub struct RuntimeEnv {
    /// `GITHUB_ACTIONS=true`: speak workflow commands.
    pub actions: bool,
    /// `$GITHUB_OUTPUT`.
    pub output_file: Option<PathBuf>,
    /// `$GITHUB_STATE`.
    pub state_file: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY`.
    pub summary_file: Option<PathBuf>,
    /// `STATE_<name>` values, keyed by name.
    pub state: HashMap<String, String>,
}

impl RuntimeEnv {
    /// Reads the environment of this process.
    pub fn from_process() -> RuntimeEnv {
        let file = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        RuntimeEnv {
            actions: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
            output_file: file("GITHUB_OUTPUT"),
            state_file: file("GITHUB_STATE"),
            summary_file: file("GITHUB_STEP_SUMMARY"),
            state: std::env::vars()
                .filter_map(|(k, v)| k.strip_prefix("STATE_").map(|n| (n.to_string(), v)))
                .collect(),
        }
    }
}

/// An in-memory stream that tests read back; clones share the buffer.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(b);
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What flows use to talk to the runner and the user.
pub struct Runtime {
    env: RuntimeEnv,
    out: Stream,
    err: Stream,
}

/// Ends a log group when dropped.
pub struct Group {
    out: Option<Stream>,
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(out) = &self.out {
            write_line(out, "::endgroup::");
        }
    }
}

/// Writes one line verbatim, ignoring a closed stream: losing a log line must not fail a
/// deployment. Only for workflow commands this module builds; all other text goes through
/// [`write_text`].
fn write_line(s: &Stream, line: &str) {
    if let Ok(mut w) = s.lock() {
        let _ = writeln!(w, "{line}");
        let _ = w.flush();
    }
}

/// Writes text that may hold untrusted parts (titles, messages, values, error bodies) as inert
/// log lines.
fn write_text(s: &Stream, text: &str) {
    write_line(s, &inert(text));
}

/// Rewrites text so that no line of it can be read as a workflow command, keeping it readable:
/// the runner's line breaks (`\n`, `\r`, `\r\n`) become `\n`, a `\` goes before a line's first
/// non-blank character when that is `:` (or anything else that might hide a `::`), and `##[`
/// becomes `##[\`, as the runner itself rewrites `##[start-action` (OutputManager.cs:96-99).
///
/// The runner (actions/runner 258d6c85) reads each stdout and stderr line with
/// `StreamReader.ReadLine` (Runner.Sdk/ProcessInvoker.cs:513), which also breaks at a lone `\r`,
/// and tries two parsers on it (Runner.Worker/ActionCommandManager.cs:70-71):
/// - `TryParseV2` (Runner.Common/ActionCommand.cs:61-66): the line after `TrimStart()` starts
///   with `::`. `TrimStart` drops Unicode white space, the same set as `char::is_whitespace`, and
///   `StartsWith(string)` compares by culture, which skips ignorable characters such as U+00AD
///   or U+200B; so any first character that is not plainly visible is escaped too.
/// - `TryParse` (ActionCommand.cs:132-133): `##[` anywhere in the line.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in runner_lines(text).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let at = line.len() - line.trim_start_matches(char::is_whitespace).len();
        let (blank, rest) = line.split_at(at);
        out.push_str(blank);
        if rest.chars().next().is_some_and(might_start_command) {
            out.push('\\');
        }
        out.push_str(&rest.replace("##[", "##[\\"));
    }
    out
}

/// Whether a line whose first non-blank character is `c` might parse as `::command::`: `:` itself,
/// and, to be safe from culture-aware comparison, anything but visible ASCII and letters or digits.
fn might_start_command(c: char) -> bool {
    c == ':' || !(c.is_ascii_graphic() || (!c.is_ascii() && c.is_alphanumeric()))
}

/// Escapes an annotation message (the runner's `escapeData`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes an annotation property such as `title` (the runner's `escapeProperty`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The workflow command `::<level> title=<title>::<message>`, title and message escaped so that
/// neither ends it early nor starts another line.
pub fn annotation(level: &str, title: &str, message: &str) -> String {
    format!(
        "::{level} title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// Formats `name<<delimiter\nvalue\ndelimiter\n` with a random delimiter that the value does not
/// contain, as `core.setOutput` does; safe for any value, including multi-line ones.
pub fn heredoc(name: &str, value: &str) -> String {
    loop {
        let delim = format!(
            "ghadelimiter_{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        if !value.contains(&delim) && !name.contains(&delim) {
            return format!("{name}<<{delim}\n{value}\n{delim}\n");
        }
    }
}

/// Appends to a runner file.
fn append(path: &Path, text: &str) -> io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

impl Runtime {
    /// The runtime of this process: stdout and stderr, files from the environment.
    pub fn from_process() -> Runtime {
        Runtime::new(
            RuntimeEnv::from_process(),
            Box::new(io::stdout()),
            Box::new(io::stderr()),
        )
    }

    /// A runtime writing to the given streams; under Actions everything goes to `out`, as the
    /// runner reads workflow commands from stdout.
    pub fn new(env: RuntimeEnv, out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Runtime {
        Runtime {
            env,
            out: Arc::new(Mutex::new(out)),
            err: Arc::new(Mutex::new(err)),
        }
    }

    /// A runtime whose stdout and stderr both go to the returned [`Capture`], for tests of flows.
    pub fn captured(env: RuntimeEnv) -> (Runtime, Capture) {
        let cap = Capture::default();
        let rt = Runtime::new(env, Box::new(cap.clone()), Box::new(cap.clone()));
        (rt, cap)
    }

    /// Whether this runs under GitHub Actions.
    pub fn is_actions(&self) -> bool {
        self.env.actions
    }

    /// Sets a step output.
    ///
    /// # Errors
    /// The output file cannot be written (kind `config`: the runner's setup is broken).
    pub fn output(&mut self, name: &str, value: &str) -> Result<(), StepError> {
        match &self.env.output_file {
            Some(path) => append(path, &heredoc(name, value)).map_err(|e| {
                StepError::msg(
                    "outputs",
                    ErrorKind::Config,
                    format!("cannot write output '{name}' to {}: {e}", path.display()),
                )
            }),
            None => {
                if value.contains('\n') {
                    write_text(&self.out, heredoc(name, value).trim_end());
                } else {
                    write_text(&self.out, &format!("{name}={value}"));
                }
                Ok(())
            }
        }
    }

    /// Saves a value for the post step (`STATE_<name>`); also visible to [`Runtime::state_get`] in
    /// this process, so an in-step rollback reads what the flow wrote.
    ///
    /// # Errors
    /// The state file cannot be written.
    pub fn state(&mut self, name: &str, value: &str) -> Result<(), StepError> {
        self.env.state.insert(name.to_string(), value.to_string());
        match &self.env.state_file {
            Some(path) => append(path, &heredoc(name, value)).map_err(|e| {
                StepError::msg(
                    "state",
                    ErrorKind::Config,
                    format!("cannot write state '{name}' to {}: {e}", path.display()),
                )
            }),
            None => Ok(()),
        }
    }

    /// A saved state value (`STATE_<name>` in the post step); empty counts as absent.
    pub fn state_get(&self, name: &str) -> Option<&str> {
        self.env
            .state
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Hides a secret in all later log lines, each line of it separately as the runner masks
    /// line by line (and breaks lines at `\r` too).
    pub fn mask(&mut self, secret: &str) {
        if !self.env.actions {
            return;
        }
        for line in runner_lines(secret)
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            // Escaped because the runner unescapes the data (ActionCommand.cs:111): a token
            // holding `%25` would otherwise mask `%` and leave itself visible.
            write_line(&self.out, &format!("::add-mask::{}", escape_data(line)));
        }
    }

    /// Opens a collapsible log group that ends when the guard is dropped.
    pub fn group(&mut self, title: &str) -> Group {
        if self.env.actions {
            write_line(&self.out, &format!("::group::{}", escape_data(title)));
            Group {
                out: Some(self.out.clone()),
            }
        } else {
            write_text(&self.out, &format!("== {title}"));
            Group { out: None }
        }
    }

    /// Reports a failed step: an `::error` annotation titled `<kind> error in <step>`, the hint
    /// on its own line.
    pub fn error(&self, e: &StepError) {
        let title = format!("{} error in {}", e.kind, e.step);
        let mut msg = e.message.clone();
        if let Some(h) = &e.hint {
            msg.push_str("\nhint: ");
            msg.push_str(h);
        }
        self.annotate("error", &title, &msg);
    }

    /// A warning annotation.
    pub fn warning(&self, title: &str, message: &str) {
        self.annotate("warning", title, message);
    }

    /// A notice annotation.
    pub fn notice(&self, title: &str, message: &str) {
        self.annotate("notice", title, message);
    }

    /// Writes an annotation, or a plain `level: title: message` line to stderr outside Actions.
    fn annotate(&self, level: &str, title: &str, message: &str) {
        if self.env.actions {
            write_line(&self.out, &annotation(level, title, message));
        } else {
            write_text(&self.err, &format!("{level}: {title}: {message}"));
        }
    }

    /// Appends Markdown to the job summary; outside Actions without a summary file, nothing.
    pub fn summary(&mut self, markdown: &str) {
        if let Some(path) = &self.env.summary_file {
            let mut text = markdown.to_string();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            if let Err(e) = append(path, &text) {
                // The summary is a report, not a result: warn and go on.
                let msg = format!("cannot write the job summary to {}: {e}", path.display());
                self.warning("summary", &msg);
            }
        }
    }

    /// Prints data such as a diff as it is, with no newline added; under Actions, where the
    /// runner reads it as log, inert like [`Runtime::info`].
    pub fn data(&self, text: &str) {
        let text = if self.env.actions {
            inert(text)
        } else {
            text.to_string()
        };
        if let Ok(mut w) = self.out.lock() {
            let _ = w.write_all(text.as_bytes());
            let _ = w.flush();
        }
    }

    /// Log text, printed inert (see [`inert`]): it often quotes titles, messages and values that
    /// others wrote.
    pub fn info(&self, text: &str) {
        write_text(&self.out, text);
    }

    /// [`Runtime::info`] as a function that outlives this borrow, for the retry notices of
    /// clients that have no runtime ([`crate::base::retry`]).
    pub fn info_sink(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let out = self.out.clone();
        move |text: &str| write_text(&out, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(actions: bool, dir: Option<&Path>) -> (Runtime, Capture, Capture) {
        let (out, err) = (Capture::default(), Capture::default());
        let env = RuntimeEnv {
            actions,
            output_file: dir.map(|d| d.join("output")),
            state_file: dir.map(|d| d.join("state")),
            summary_file: dir.map(|d| d.join("summary")),
            state: HashMap::from([("phase".to_string(), "merged".to_string())]),
        };
        let rt = Runtime::new(env, Box::new(out.clone()), Box::new(err.clone()));
        (rt, out, err)
    }

    #[test]
    fn data_and_properties_are_escaped() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn heredoc_wraps_multiline_values() {
        let h = heredoc("apps", "a\nb");
        let lines: Vec<&str> = h.lines().collect();
        let delim = lines[0].strip_prefix("apps<<").unwrap();
        assert!(delim.starts_with("ghadelimiter_"));
        assert_eq!(lines[1..], ["a", "b", delim]);
        assert_ne!(heredoc("x", ""), heredoc("x", ""), "delimiters are random");
    }

    #[test]
    fn outputs_and_state_go_to_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut rt, out, _) = runtime(true, Some(dir.path()));
        rt.output("pr-url", "https://x/1").unwrap();
        rt.output("apps", "[\n1\n]").unwrap();
        rt.state("merge-sha", "abc").unwrap();
        let o = std::fs::read_to_string(dir.path().join("output")).unwrap();
        assert!(o.starts_with("pr-url<<ghadelimiter_"), "{o}");
        assert!(o.contains("\nhttps://x/1\nghadelimiter_"), "{o}");
        assert!(o.contains("\n[\n1\n]\nghadelimiter_"), "{o}");
        let s = std::fs::read_to_string(dir.path().join("state")).unwrap();
        assert!(
            s.starts_with("merge-sha<<ghadelimiter_") && s.contains("\nabc\n"),
            "{s}"
        );
        assert_eq!(rt.state_get("merge-sha"), Some("abc"));
        assert_eq!(rt.state_get("phase"), Some("merged"));
        assert_eq!(out.text(), "");
    }

    #[test]
    fn error_annotation_has_kind_step_and_hint() {
        let (rt, out, _) = runtime(true, None);
        let mut e = StepError::msg(
            "merge",
            ErrorKind::Conflict,
            "50% of files: conflict\nin a.yaml",
        );
        e.hint = Some("rebase, then retry".into());
        rt.error(&e);
        assert_eq!(
            out.text(),
            "::error title=conflict error in merge::50%25 of files: conflict%0Ain a.yaml%0Ahint: rebase, then retry\n"
        );
    }

    #[test]
    fn groups_and_masks_under_actions() {
        let dir = tempfile::tempdir().unwrap();
        let (mut rt, out, _) = runtime(true, Some(dir.path()));
        rt.mask("s3cret\nline2");
        {
            let _g = rt.group("Sync app");
            rt.info("syncing");
        }
        rt.warning("slow, very", "took: 5m");
        rt.summary("## Done");
        assert_eq!(
            out.text(),
            "::add-mask::s3cret\n::add-mask::line2\n::group::Sync app\nsyncing\n::endgroup::\n::warning title=slow%2C very::took: 5m\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("summary")).unwrap(),
            "## Done\n"
        );
    }

    /// Lines the runner would take as commands (ActionCommand.cs:62-63 and 132-156), split as
    /// `ReadLine` splits them; invisible characters count as blank, as a culture compare skips them.
    fn commands_in(log: &str) -> Vec<&str> {
        const REGISTERED: [&str; 8] = [
            "error",
            "warning",
            "add-mask",
            "stop-commands",
            "set-output",
            "group",
            "endgroup",
            "echo",
        ];
        let v1 = |l: &str| {
            l.split("##[").skip(1).any(|after| {
                let info = after.split(']').next().unwrap_or("");
                REGISTERED.contains(&info.split(' ').next().unwrap_or(""))
            })
        };
        runner_lines(log)
            .filter(|l| {
                let invisible =
                    |c: char| c.is_whitespace() || !(c.is_ascii_graphic() || c.is_alphanumeric());
                l.trim_start_matches(invisible).starts_with("::") || v1(l)
            })
            .collect()
    }

    #[test]
    fn untrusted_text_prints_inert() {
        let (rt, out, _) = runtime(true, None);
        for evil in [
            "title\n::error::x",
            "title\n::add-mask::x",
            "\n::stop-commands::tok",
            "::set-output name=a::b",
            "  \t::group::g",
            "ok\r::error::x",
            "ok\r\n::warning::x",
            "\u{a0}\u{3000}::error::x",
            "\u{ad}::error::x",
            "\u{200b}::error::x",
            "see ##[error]x and ##[add-mask]y",
        ] {
            rt.info(evil);
        }
        let log = out.text();
        assert_eq!(commands_in(&log), Vec::<&str>::new(), "{log}");
        // Still readable: only a `\` was added.
        assert!(log.contains("title\n\\::error::x\n"), "{log}");
        assert!(log.contains("  \t\\::group::g\n"), "{log}");
        assert!(log.contains("ok\n\\::error::x\n"), "{log}");
        assert!(
            log.contains("see ##[\\error]x and ##[\\add-mask]y"),
            "{log}"
        );
    }

    #[test]
    fn ordinary_lines_are_unchanged() {
        for line in [
            "app1: syncing to abc123",
            "  indented: a::b",
            "élan ✓",
            "+image: v2",
            "",
        ] {
            assert_eq!(inert(line), line);
        }
    }

    #[test]
    fn plain_mode_prints_inert_too() {
        let (mut rt, out, err) = runtime(false, None);
        rt.output("title", "a\n::error::x").unwrap();
        rt.warning("w", "m\n::add-mask::x");
        drop(rt.group("g\r::endgroup::"));
        let (out, err) = (out.text(), err.text());
        assert_eq!(commands_in(&out), Vec::<&str>::new(), "{out}");
        assert_eq!(commands_in(&err), Vec::<&str>::new(), "{err}");
        assert!(out.contains("\na\n\\::error::x\nghadelimiter_"), "{out}");
    }

    #[test]
    fn masks_split_at_every_runner_line_break_and_survive_unescaping() {
        let (mut rt, out, _) = runtime(true, None);
        rt.mask("ab%25cd\rsecond\r\nthird");
        assert_eq!(
            out.text(),
            "::add-mask::ab%2525cd\n::add-mask::second\n::add-mask::third\n"
        );
    }

    #[test]
    fn heredoc_delimiter_never_occurs_in_the_value() {
        fastrand::seed(7);
        let first = heredoc("x", "");
        let delim = first.lines().next().unwrap().strip_prefix("x<<").unwrap();
        // Same seed, so the first delimiter drawn is the one the value now holds.
        fastrand::seed(7);
        let value = format!("a\n{delim}\nb");
        let h = heredoc("x", &value);
        let used = h.lines().next().unwrap().strip_prefix("x<<").unwrap();
        assert_ne!(used, delim);
        assert_eq!(h, format!("x<<{used}\n{value}\n{used}\n"));
    }

    #[test]
    fn data_is_exact_outside_actions_and_inert_under_them() {
        let diff = "--- a/v.yaml\n+++ b/v.yaml\n@@ -1 +1 @@\n ::error::x\n-a: 1\n+a: 2\n";
        let (plain, out, _) = runtime(false, None);
        plain.data(diff);
        assert_eq!(out.text(), diff);
        let (actions, out, _) = runtime(true, None);
        actions.data(diff);
        assert_eq!(out.text(), diff.replace(" ::error", " \\::error"));
    }

    #[test]
    fn plain_mode_is_readable() {
        let (mut rt, out, err) = runtime(false, None);
        rt.mask("s3cret");
        rt.output("changed", "true").unwrap();
        rt.error(&StepError::msg("inputs", ErrorKind::Config, "bad"));
        assert_eq!(out.text(), "changed=true\n");
        assert_eq!(err.text(), "error: config error in inputs: bad\n");
    }
}
