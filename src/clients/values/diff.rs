//! A unified diff of two texts, line by line, with three lines of context.
//!
//! Edits here replace or insert a few lines in place and never move blocks, so a greedy walk that
//! resynchronises on the nearest matching line gives the minimal diff in linear time, even for a
//! 5 MB file with a hundred changes (a quadratic LCS would not).

const CONTEXT: usize = 3;
const WINDOW: usize = 400;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Same,
    Del,
    Add,
}

fn lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|c| *c == b'\n').collect()
}

/// The unified diff between `old` and `new`, headed `--- a/<path>` / `+++ b/<path>`; empty
/// when they are equal. Bytes that are not UTF-8 are shown lossily.
pub fn unified_diff(path: &str, old: &[u8], new: &[u8]) -> String {
    if old == new {
        return String::new();
    }
    let a = lines(old);
    let b = lines(new);
    let ops = script(&a, &b);
    let path = path.trim_start_matches('/');
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    // Group the script into hunks: changes closer than 2*CONTEXT share one.
    let changed: Vec<usize> = (0..ops.len()).filter(|i| ops[*i].0 != Op::Same).collect();
    let mut k = 0;
    while k < changed.len() {
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let lo = first.saturating_sub(CONTEXT);
        let hi = (last + CONTEXT + 1).min(ops.len());
        let (a0, b0) = (ops[lo].1, ops[lo].2);
        let (mut na, mut nb) = (0, 0);
        let mut body = String::new();
        for &(op, i, j) in &ops[lo..hi] {
            let (sign, line) = match op {
                Op::Same => {
                    na += 1;
                    nb += 1;
                    (' ', a[i])
                }
                Op::Del => {
                    na += 1;
                    ('-', a[i])
                }
                Op::Add => {
                    nb += 1;
                    ('+', b[j])
                }
            };
            body.push(sign);
            let text = String::from_utf8_lossy(line);
            body.push_str(&text);
            if !text.ends_with('\n') {
                body.push_str("\n\\ No newline at end of file\n");
            }
        }
        let start = |s: usize, n: usize| if n == 0 { s } else { s + 1 };
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n{body}",
            start(a0, na),
            na,
            start(b0, nb),
            nb
        ));
    }
    out
}

/// The edit script as (op, index in a, index in b); deletions come before additions.
fn script(a: &[&[u8]], b: &[&[u8]]) -> Vec<(Op, usize, usize)> {
    let mut ops = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((Op::Same, i, j));
            i += 1;
            j += 1;
            continue;
        }
        // Nearest (di, dj) with a[i+di] == b[j+dj], smallest di+dj first.
        let mut found = None;
        'search: for d in 1..=2 * WINDOW {
            for di in 0..=d.min(WINDOW) {
                let dj = d - di;
                if dj > WINDOW {
                    continue;
                }
                let (x, y) = (i + di, j + dj);
                if x < a.len() && y < b.len() && a[x] == b[y] {
                    found = Some((di, dj));
                    break 'search;
                }
            }
        }
        let (di, dj) = found.unwrap_or((a.len() - i, b.len() - j));
        for x in i..i + di {
            ops.push((Op::Del, x, j));
        }
        for y in j..j + dj {
            ops.push((Op::Add, i + di, y));
        }
        i += di;
        j += dj;
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_changed_line_gives_one_hunk() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified_diff("v.yaml", old.as_bytes(), new.as_bytes()),
            "--- a/v.yaml\n+++ b/v.yaml\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(unified_diff("v.yaml", b"x\n", b"x\n"), "");
    }

    #[test]
    fn insertions_and_far_apart_changes() {
        let old: String = (0..30).map(|i| format!("{i}\n")).collect();
        let new = old
            .replace("\n5\n", "\n5\nnew\n")
            .replace("\n25\n", "\ntwenty-five\n");
        let d = unified_diff("f", old.as_bytes(), new.as_bytes());
        assert!(
            d.contains("@@ -4,6 +4,7 @@\n 3\n 4\n 5\n+new\n 6\n 7\n 8\n"),
            "{d}"
        );
        assert!(
            d.contains("@@ -23,7 +24,7 @@\n 22\n 23\n 24\n-25\n+twenty-five\n"),
            "{d}"
        );
        let d = unified_diff("f", b"a", b"b");
        assert_eq!(d, "--- a/f\n+++ b/f\n@@ -1,1 +1,1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n");
    }
}
