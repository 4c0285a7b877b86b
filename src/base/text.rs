//! Text shaped for the places it is shown: the runner's lines and Markdown cells.

/// Splits text where the runner's `ReadLine` does: at `\r\n`, `\r` and `\n`.
pub fn runner_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        match t.find(['\r', '\n']) {
            Some(i) => {
                let skip = if t[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&t[i + skip..]);
                Some(&t[..i])
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

/// Escapes a Markdown table cell from untrusted text: a `|` would end the cell and a line break
/// the row.
pub fn md_cell(s: &str) -> String {
    runner_lines(&s.replace('|', "\\|"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first 12 characters of a SHA, as people read them in logs and summaries.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_keep_their_row() {
        assert_eq!(md_cell("a|b\r\nc\rd\ne"), "a\\|b c d e");
    }
}
