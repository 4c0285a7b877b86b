//! The surgical edit: resolve each path on the saphyr tree, splice the new scalar text into the
//! bytes, then prove with a second parser (yaml_serde) that only the targeted values changed.

use super::path::{Path, Segment};
use super::render::{plain_ok, reads_as_string, render};
use super::tree::{Kind, Limits, Node, Tree};
use super::{Change, EditOptions, Edited, SetOp, ValuesError};
use saphyr_parser::ScalarStyle;
use std::collections::BTreeMap;
use yaml_serde::Value;

/// A concrete step once `[name=web]` is resolved to an index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A value path in one document, as the verification walks it.
type Concrete = (usize, Vec<Step>);

/// What one targeted value became.
struct Record {
    display: String,
    at: Concrete,
    /// The value before any set (`None` = the key was created).
    orig: Option<String>,
    value: String,
    /// Whether the bytes differ from the original (a null set to "" does; `"1"` set to 1 not).
    changed: bool,
    typed: Value,
    /// Other places that show the same node through aliases (with `--allow-anchor`).
    aliases: Vec<Concrete>,
}

/// A found target: its node, its concrete path and the anchors on the way (for alias checks).
struct Found {
    doc: usize,
    node: usize,
    steps: Vec<Step>,
    anchors: Vec<(usize, Vec<Step>)>,
}

/// Why a path did not resolve in one document.
enum Miss {
    /// Nothing there; `depth` segments resolved, ending at `node`.
    Absent {
        depth: usize,
        node: usize,
        detail: String,
    },
    /// Something is there but editing it would be a guess.
    Refused(String),
}

/// Applies `sets` in order to the YAML in `input` and returns the new bytes and what changed.
/// Pure: no files. A set whose value equals the current one changes nothing and yields no
/// [`Change`]. All sets apply or none: any error returns before producing bytes. `SetOp::file`
/// is not looked at: callers group the sets by file.
///
/// # Errors
/// Every [`ValuesError`] about the input (size, UTF-8, malformed YAML, depth, aliases), a path
/// that is missing or would need a guess, and a failed re-parse check.
pub fn apply(input: &[u8], sets: &[SetOp], opts: &EditOptions) -> Result<Edited, ValuesError> {
    if input.len() > opts.max_bytes {
        return Err(ValuesError::TooLarge {
            size: input.len(),
            max: opts.max_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| ValuesError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    // The BOM stays where it is; the parser and the spans work on the text after it.
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let limits = Limits {
        max_depth: opts.max_depth,
        max_alias_nodes: opts.max_alias_nodes,
    };
    let mut cur = body.to_string();
    let mut tree = Tree::parse(&cur, limits)?;
    if let Some(i) = opts.document {
        if i >= tree.docs.len() {
            return Err(ValuesError::NoSuchDocument {
                index: i,
                count: tree.docs.len(),
            });
        }
    }
    // Pending splices on `cur`, keyed by start byte: (end byte, new text).
    let mut pending: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    let mut records: Vec<Record> = Vec::new();

    for set in sets {
        let display = set.path.to_string();
        match locate(&tree, &set.path, opts)? {
            Ok(found) => {
                let node = &tree.nodes[found.node];
                let Kind::Scalar {
                    value,
                    style,
                    props,
                } = &node.kind
                else {
                    unreachable!("locate returns scalars only")
                };
                let at: Concrete = (found.doc, found.steps.clone());
                let idx = records.iter().position(|r| r.at == at);
                let orig = match idx {
                    Some(i) => records[i].orig.clone(),
                    None => Some(value.clone()),
                };
                let type_of = orig.clone().unwrap_or_default();
                let rendered = render(&type_of, *style, &set.value, node.flow);
                // A tag (`!!str 1.0`) decides the type together with the text.
                let typed = typed(&format!("{props}{}", rendered.text))?;
                let aliases = alias_sites(&tree, found.doc, &found.anchors);
                // Splices apply to `cur`, which still holds the original token: compare with it.
                let old_token = &cur[node.start..node.end];
                let changed = match idx {
                    Some(i) if records[i].orig.is_none() => true,
                    _ => rendered.text != old_token,
                };
                let (start, end, text) = if node.start == node.end {
                    empty_splice(cur.as_bytes(), node, &rendered.text, &display)?
                } else {
                    (node.start, node.end, rendered.text)
                };
                if changed {
                    pending.insert(start, (end, text));
                } else {
                    pending.remove(&start);
                }
                if let Kind::Scalar { value, .. } = &mut tree.nodes[found.node].kind {
                    *value = set.value.clone();
                }
                let rec = Record {
                    display,
                    at,
                    orig,
                    value: set.value.clone(),
                    changed,
                    typed,
                    aliases,
                };
                match idx {
                    Some(i) => records[i] = rec,
                    None => records.push(rec),
                }
            }
            Err((doc, depth, _)) => {
                // Splices are relative to `cur`: apply them before inserting lines, then re-parse.
                cur = splice(&cur, &pending);
                pending.clear();
                tree = Tree::parse(&cur, limits)?;
                let (parent, anchors) = match walk(&tree, doc, &set.path.prefix(depth)) {
                    Ok(f) if depth > 0 => (f.node, f.anchors),
                    _ => (tree.docs[doc], Vec::new()),
                };
                // A key added to an anchored mapping appears at every alias of it too.
                if !anchors.is_empty() && !opts.allow_anchor {
                    return Err(ValuesError::Refused {
                        path: display,
                        reason: "the new key would go inside an anchored collection (`&name`), so its aliases would change too; pass --allow-anchor if that is intended".into(),
                    });
                }
                let added: Vec<Step> = set.path.segments[depth..]
                    .iter()
                    .filter_map(|s| match s {
                        Segment::Key(k) => Some(Step::Key(k.clone())),
                        _ => None,
                    })
                    .collect();
                let anchors: Vec<(usize, Vec<Step>)> = anchors
                    .into_iter()
                    .map(|(a, mut rel)| {
                        rel.extend(added.iter().cloned());
                        (a, rel)
                    })
                    .collect();
                let aliases = alias_sites(&tree, doc, &anchors);
                let (text, steps) = create(&cur, &tree, doc, parent, &set.path, depth, &set.value)?;
                cur = text.0;
                tree = Tree::parse(&cur, limits)?;
                records.push(Record {
                    display,
                    at: (doc, steps),
                    orig: None,
                    value: set.value.clone(),
                    changed: true,
                    typed: text.1,
                    aliases,
                });
            }
        }
    }
    let out = splice(&cur, &pending);
    let changes: Vec<Change> = records
        .iter()
        .filter(|r| r.changed)
        .map(|r| Change {
            path: r.display.clone(),
            old: r.orig.clone().filter(|o| !o.is_empty()),
            new: r.value.clone(),
        })
        .collect();
    if !changes.is_empty() {
        verify(body, &out, &records)?;
        // Our own parser must read the result too, or the next promotion could not edit the file.
        // saphyr-parser refuses some spellings YAML allows (a tab after `key:` before most plain
        // scalars), which an edit can create from a value it accepted (`key:\t~` → `key:\tx`).
        Tree::parse(&out, limits).map_err(|e| {
            ValuesError::Verify(format!(
                "the edited file would not parse again ({e}); if a tab separates the key from its value, use a space"
            ))
        })?;
    }
    let mut bytes = Vec::with_capacity(bom.len() + out.len());
    bytes.extend_from_slice(bom.as_bytes());
    bytes.extend_from_slice(out.as_bytes());
    Ok(Edited { bytes, changes })
}

/// The typed value a rendered scalar stands for, read by yaml_serde (not by our own parser).
fn typed(text: &str) -> Result<Value, ValuesError> {
    yaml_serde::from_str(text)
        .map_err(|e| ValuesError::Verify(format!("cannot read back {text}: {e}")))
}

/// Applies splices (sorted, non-overlapping) to `text`.
fn splice(text: &str, pending: &BTreeMap<usize, (usize, String)>) -> String {
    if pending.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (start, (end, new)) in pending {
        out.push_str(&text[at..*start]);
        out.push_str(new);
        at = *end;
    }
    out.push_str(&text[at..]);
    out
}

/// Where the text for an empty value goes: after `key:` and one blank.
fn empty_splice(
    b: &[u8],
    node: &Node,
    text: &str,
    path: &str,
) -> Result<(usize, usize, String), ValuesError> {
    let p = node.start;
    // The parser puts an empty value at the `:` of `key:`, or after `-` and any blanks in a list.
    // A comment right after the insertion point needs a blank before it, or it joins the value.
    let sep = |at: usize| if b.get(at) == Some(&b'#') { " " } else { "" };
    if b.get(p) == Some(&b':') {
        return Ok(if b.get(p + 1) == Some(&b' ') {
            (p + 2, p + 2, format!("{text}{}", sep(p + 2)))
        } else {
            (p + 1, p + 1, format!(" {text}{}", sep(p + 1)))
        });
    }
    // After a comment the parser puts it at the end of the line: find the `-` or `:` that ends
    // the line's content before the comment.
    let line_start = b[..p]
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(0, |i| i + 1);
    let line = &b[line_start..p];
    let comment = (0..line.len())
        .find(|i| line[*i] == b'#' && (*i == 0 || matches!(line[i - 1], b' ' | b'\t')))
        .unwrap_or(line.len());
    let content = line[..comment].trim_ascii_end();
    if let Some(&c) = content.last() {
        let ind = line_start + content.len() - 1;
        let lone = content.len() == 1 || matches!(content[content.len() - 2], b' ' | b'\t');
        if (c == b'-' && lone) || c == b':' {
            return Ok(if b.get(ind + 1) == Some(&b' ') {
                (ind + 2, ind + 2, format!("{text}{}", sep(ind + 2)))
            } else {
                (ind + 1, ind + 1, format!(" {text}{}", sep(ind + 1)))
            });
        }
    }
    Err(ValuesError::Refused {
        path: path.into(),
        reason: "the value is empty in a place other than after `key:` or `- `".into(),
    })
}

/// Resolves `path` in the document(s) `opts` allows. `Ok(Ok(found))` is an editable scalar;
/// `Ok(Err((doc, depth, node)))` is a missing key that `--create-missing` may add below `node`.
#[allow(clippy::type_complexity)]
fn locate(
    tree: &Tree,
    path: &Path,
    opts: &EditOptions,
) -> Result<Result<Found, (usize, usize, usize)>, ValuesError> {
    let shown = path.to_string();
    let docs: Vec<usize> = match opts.document {
        Some(i) => vec![i],
        None => (0..tree.docs.len()).collect(),
    };
    if docs.is_empty() {
        return Err(ValuesError::Missing {
            path: shown,
            existing: "(root)".into(),
            detail: "the file has no YAML document".into(),
        });
    }
    let mut found = Vec::new();
    let mut misses = Vec::new();
    for d in &docs {
        match walk(tree, *d, path) {
            Ok(f) => found.push(f),
            Err(m) => misses.push((*d, m)),
        }
    }
    if found.len() > 1 {
        let list: Vec<String> = found.iter().map(|f| f.doc.to_string()).collect();
        return Err(ValuesError::Refused {
            path: shown,
            reason: format!(
                "it is present in documents {} of this multi-document file; pass --document N",
                list.join(", ")
            ),
        });
    }
    if let Some(f) = found.pop() {
        check_target(tree, &f, &shown, opts)?;
        return Ok(Ok(f));
    }
    // Prefer a refusal (it explains more), then the deepest miss.
    if let Some((_, Miss::Refused(reason))) =
        misses.iter().find(|(_, m)| matches!(m, Miss::Refused(_)))
    {
        return Err(ValuesError::Refused {
            path: shown,
            reason: reason.clone(),
        });
    }
    let (doc, depth, node, detail) = misses
        .into_iter()
        .filter_map(|(d, m)| match m {
            Miss::Absent {
                depth,
                node,
                detail,
            } => Some((d, depth, node, detail)),
            Miss::Refused(_) => None,
        })
        .max_by_key(|m| m.1)
        .expect("no refusal, so a miss");
    if !opts.create_missing {
        let existing = if depth == 0 {
            "(root)".to_string()
        } else {
            path.prefix(depth).to_string()
        };
        return Err(ValuesError::Missing {
            path: shown,
            existing,
            detail,
        });
    }
    if docs.len() > 1 {
        return Err(ValuesError::CannotCreate {
            path: shown,
            reason: "the file has several documents; pass --document N".into(),
        });
    }
    Ok(Err((doc, depth, node)))
}

/// Refusals that depend on the target itself: what it is and whether it is anchored.
fn check_target(
    tree: &Tree,
    f: &Found,
    shown: &str,
    opts: &EditOptions,
) -> Result<(), ValuesError> {
    let refuse = |reason: &str| {
        Err(ValuesError::Refused {
            path: shown.to_string(),
            reason: reason.to_string(),
        })
    };
    let node = &tree.nodes[f.node];
    match &node.kind {
        Kind::Scalar {
            style: ScalarStyle::Literal | ScalarStyle::Folded,
            ..
        } => {
            return refuse("the value is a block scalar (`|` or `>`); edit it by hand");
        }
        Kind::Scalar { .. } => {}
        Kind::Map(_) => return refuse("the value is a mapping, not a scalar"),
        Kind::Seq(_) => return refuse("the value is a sequence, not a scalar"),
        Kind::Alias(_) => return refuse("the value is an alias (`*name`); edit its anchor"),
    }
    if !opts.allow_anchor && !f.anchors.is_empty() {
        let what = if f.anchors.last().is_some_and(|(_, rel)| rel.is_empty()) {
            "the value is an anchored scalar (`&name`)"
        } else {
            "the value is inside an anchored collection (`&name`)"
        };
        return refuse(&format!(
            "{what}, so its aliases would change too; pass --allow-anchor if that is intended"
        ));
    }
    Ok(())
}

fn scalar_text(tree: &Tree, id: usize) -> Option<&str> {
    match &tree.nodes[id].kind {
        Kind::Scalar { value, .. } => Some(value),
        _ => None,
    }
}

fn map_get(tree: &Tree, entries: &[(usize, usize)], key: &str) -> Option<usize> {
    entries
        .iter()
        .find(|(k, _)| scalar_text(tree, *k) == Some(key))
        .map(|(_, v)| *v)
}

/// Whether `key` is reachable through a `<<` merge key of this mapping.
fn in_merge(tree: &Tree, entries: &[(usize, usize)], key: &str) -> bool {
    let Some(m) = map_get(tree, entries, "<<") else {
        return false;
    };
    let deref = |id: usize| match tree.nodes[id].kind {
        Kind::Alias(a) => tree.anchors.get(&a).copied(),
        _ => Some(id),
    };
    let sources: Vec<usize> = match &tree.nodes[m].kind {
        Kind::Seq(items) => items.iter().filter_map(|i| deref(*i)).collect(),
        _ => deref(m).into_iter().collect(),
    };
    sources.into_iter().any(|s| match &tree.nodes[s].kind {
        Kind::Map(e) => map_get(tree, e, key).is_some() || in_merge(tree, e, key),
        _ => false,
    })
}

fn walk(tree: &Tree, doc: usize, path: &Path) -> Result<Found, Miss> {
    let mut node = tree.docs[doc];
    let mut steps = Vec::new();
    let mut anchors = Vec::new();
    for (depth, seg) in path.segments.iter().enumerate() {
        if tree.nodes[node].anchor != 0 {
            anchors.push((tree.nodes[node].anchor, steps.clone()));
        }
        let shown = path.prefix(depth + 1).to_string();
        let absent = |detail: String| Miss::Absent {
            depth,
            node,
            detail,
        };
        let next = match (&tree.nodes[node].kind, seg) {
            (Kind::Alias(_), _) => {
                return Err(Miss::Refused(format!(
                    "`{}` is an alias (`*name`); the path only exists through it",
                    path.prefix(depth)
                )))
            }
            (Kind::Map(entries), Segment::Key(k)) => match map_get(tree, entries, k) {
                Some(v) => {
                    steps.push(Step::Key(k.clone()));
                    v
                }
                None if in_merge(tree, entries, k) => {
                    return Err(Miss::Refused(format!(
                        "`{shown}` only exists through a `<<` merge key; set it where the merged mapping defines it, or add the key here by hand"
                    )))
                }
                None => return Err(absent(format!("no key `{k}`"))),
            },
            (Kind::Seq(items), Segment::Index(i)) => match items.get(*i) {
                Some(v) => {
                    steps.push(Step::Index(*i));
                    *v
                }
                None => {
                    return Err(absent(format!(
                        "index {i} is out of range (the list has {} items)",
                        items.len()
                    )))
                }
            },
            (Kind::Seq(items), Segment::Match { key, value }) => {
                let hit = items.iter().enumerate().find(|(_, it)| {
                    let target = match tree.nodes[**it].kind {
                        Kind::Alias(a) => tree.anchors.get(&a).copied().unwrap_or(**it),
                        _ => **it,
                    };
                    match &tree.nodes[target].kind {
                        Kind::Map(e) => map_get(tree, e, key).and_then(|v| scalar_text(tree, v)) == Some(value),
                        _ => false,
                    }
                });
                match hit {
                    Some((i, v)) => {
                        steps.push(Step::Index(i));
                        *v
                    }
                    None => return Err(absent(format!("no item with `{key}: {value}`"))),
                }
            }
            (Kind::Scalar { .. }, _) => {
                return Err(absent(format!("`{}` is a scalar, not a collection", path.prefix(depth))))
            }
            (Kind::Map(_), _) => return Err(absent(format!("`{}` is a mapping; use `.key`", path.prefix(depth)))),
            (Kind::Seq(_), Segment::Key(_)) => {
                return Err(absent(format!("`{}` is a list; use `[N]` or `[key=value]`", path.prefix(depth))))
            }
        };
        node = next;
    }
    if let Kind::Alias(_) = tree.nodes[node].kind {
        return Err(Miss::Refused(
            "the value is an alias (`*name`); edit its anchor".into(),
        ));
    }
    if tree.nodes[node].anchor != 0 {
        anchors.push((tree.nodes[node].anchor, steps.clone()));
    }
    // Store each anchor with the steps from the anchored node down to the target.
    let anchors = anchors
        .into_iter()
        .map(|(a, prefix)| (a, steps[prefix.len()..].to_vec()))
        .collect();
    Ok(Found {
        doc,
        node,
        steps,
        anchors,
    })
}

/// Every place in `doc` that shows an edited anchored node through an alias, as concrete paths.
fn alias_sites(tree: &Tree, doc: usize, anchors: &[(usize, Vec<Step>)]) -> Vec<Concrete> {
    let mut out = Vec::new();
    if anchors.is_empty() {
        return out;
    }
    let mut stack = vec![(tree.docs[doc], Vec::new())];
    while let Some((id, at)) = stack.pop() {
        match &tree.nodes[id].kind {
            Kind::Alias(a) => {
                for (anchor, rel) in anchors {
                    if anchor == a {
                        let mut p: Vec<Step> = at.clone();
                        p.extend(rel.iter().cloned());
                        out.push((doc, p));
                    }
                }
            }
            Kind::Map(e) => {
                for (k, v) in e {
                    if let Some(key) = scalar_text(tree, *k) {
                        let mut p = at.clone();
                        p.push(Step::Key(key.to_string()));
                        stack.push((*v, p));
                    }
                }
            }
            Kind::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    let mut p = at.clone();
                    p.push(Step::Index(i));
                    stack.push((*v, p));
                }
            }
            Kind::Scalar { .. } => {}
        }
    }
    out
}

/// Adds the missing keys `path.segments[depth..]` under the block mapping `parent`, with the
/// parent's indentation. Returns the new text with the typed new value, and the concrete path.
#[allow(clippy::type_complexity)]
fn create(
    cur: &str,
    tree: &Tree,
    doc: usize,
    parent: usize,
    path: &Path,
    depth: usize,
    value: &str,
) -> Result<((String, Value), Vec<Step>), ValuesError> {
    let shown = path.to_string();
    let cannot = |reason: String| ValuesError::CannotCreate {
        path: shown.clone(),
        reason,
    };
    let mut keys = Vec::new();
    for s in &path.segments[depth..] {
        match s {
            Segment::Key(k) => keys.push(k.clone()),
            _ => {
                return Err(cannot(format!(
                    "only mapping keys can be created, not `{s}`"
                )))
            }
        }
    }
    let p = &tree.nodes[parent];
    let entries = match &p.kind {
        Kind::Map(e) if !p.flow && !e.is_empty() => e,
        Kind::Map(_) => {
            return Err(cannot(format!(
                "`{}` is a flow mapping (`{{...}}`); add the key by hand",
                path.prefix(depth)
            )))
        }
        _ => {
            return Err(cannot(format!(
                "`{}` is not a mapping",
                if depth == 0 {
                    "(root)".into()
                } else {
                    path.prefix(depth).to_string()
                }
            )))
        }
    };
    let b = cur.as_bytes();
    let indent = tree.nodes[entries[0].0].col;
    let step = indent_unit(tree);
    let nl = if cur.contains("\r\n") { "\r\n" } else { "\n" };
    let (_, last_v) = *entries.last().expect("non-empty");
    let end = content_end(tree, last_v).max(tree.nodes[entries.last().unwrap().0].end);
    let at = if end > 0 && b[end - 1] == b'\n' {
        end
    } else {
        match cur[end..].find('\n') {
            Some(i) => end + i + 1,
            None => cur.len(),
        }
    };
    let mut add = String::new();
    if at == cur.len() && !cur.is_empty() && !cur.ends_with('\n') {
        add.push_str(nl);
    }
    let rendered = render("", ScalarStyle::Plain, value, false);
    for (i, k) in keys.iter().enumerate() {
        add.push_str(&" ".repeat(indent + i * step));
        if plain_ok(k, false) && reads_as_string(k) && !k.contains(['"', '\'']) {
            add.push_str(k);
        } else {
            add.push_str(&render("", ScalarStyle::DoubleQuoted, k, false).text);
        }
        add.push(':');
        if i + 1 == keys.len() {
            add.push(' ');
            add.push_str(&rendered.text);
        }
        if at < cur.len() || i + 1 < keys.len() || cur.ends_with('\n') {
            add.push_str(nl);
        }
    }
    let mut text = String::with_capacity(cur.len() + add.len());
    text.push_str(&cur[..at]);
    text.push_str(&add);
    text.push_str(&cur[at..]);
    // The concrete path: resolved prefix steps then the created keys.
    let mut steps = concrete_prefix(tree, doc, path, depth);
    steps.extend(keys.into_iter().map(Step::Key));
    Ok(((text, typed(&rendered.text)?), steps))
}

fn concrete_prefix(tree: &Tree, doc: usize, path: &Path, depth: usize) -> Vec<Step> {
    if depth == 0 {
        return Vec::new();
    }
    walk(tree, doc, &path.prefix(depth))
        .map(|f| f.steps)
        .unwrap_or_default()
}

/// The end of the last token inside a node (block collections end where the next token starts,
/// which may be lines further on).
fn content_end(tree: &Tree, id: usize) -> usize {
    let n = &tree.nodes[id];
    match &n.kind {
        Kind::Map(e) if !n.flow => e
            .iter()
            .map(|(k, v)| content_end(tree, *k).max(content_end(tree, *v)))
            .max()
            .unwrap_or(n.start),
        Kind::Seq(items) if !n.flow => items
            .iter()
            .map(|i| content_end(tree, *i))
            .max()
            .unwrap_or(n.start),
        _ => n.end,
    }
}

/// The indentation step the file uses for nested mappings (2 when there is none to learn from).
fn indent_unit(tree: &Tree) -> usize {
    let mut best: Option<usize> = None;
    for n in &tree.nodes {
        if let Kind::Map(e) = &n.kind {
            if n.flow || e.is_empty() {
                continue;
            }
            let base = tree.nodes[e[0].0].col;
            for (_, v) in e {
                if let Kind::Map(inner) = &tree.nodes[*v].kind {
                    if tree.nodes[*v].flow || inner.is_empty() {
                        continue;
                    }
                    let c = tree.nodes[inner[0].0].col;
                    if c > base {
                        best = Some(best.map_or(c - base, |b: usize| b.min(c - base)));
                    }
                }
            }
        }
    }
    best.unwrap_or(2)
}

fn key_matches(k: &Value, key: &str) -> bool {
    match k {
        Value::String(s) => s == key,
        Value::Number(n) => n.to_string() == key,
        Value::Bool(b) => b.to_string() == key,
        Value::Null => key.is_empty() || key == "null" || key == "~",
        _ => false,
    }
}

/// Sets `v` at `steps` inside `root`, creating mappings for missing keys.
fn set_at(root: &mut Value, steps: &[Step], v: Value) -> Result<(), String> {
    let mut cur = root;
    for s in steps {
        if let Value::Tagged(t) = cur {
            cur = &mut t.value;
        }
        cur = match (cur, s) {
            (Value::Mapping(m), Step::Key(k)) => {
                let found = m.keys().find(|x| key_matches(x, k)).cloned();
                let key = found.unwrap_or_else(|| {
                    m.insert(Value::String(k.clone()), Value::Mapping(Default::default()));
                    Value::String(k.clone())
                });
                m.get_mut(&key).expect("present")
            }
            (Value::Sequence(s), Step::Index(i)) if *i < s.len() => &mut s[*i],
            (_, s) => return Err(format!("cannot follow {s:?}")),
        };
    }
    if let Value::Tagged(t) = cur {
        t.value = v;
    } else {
        *cur = v;
    }
    Ok(())
}

fn read_docs(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for d in yaml_serde::Deserializer::from_str(text) {
        docs.push(<Value as serde::Deserialize>::deserialize(d).map_err(|e| e.to_string())?);
    }
    Ok(docs)
}

/// Parses the old and new text with yaml_serde and checks that the new one is the old one with
/// exactly the recorded values changed.
fn verify(old: &str, new: &str, records: &[Record]) -> Result<(), ValuesError> {
    let mut expected =
        read_docs(old).map_err(|e| ValuesError::Verify(format!("reading the original: {e}")))?;
    let got = read_docs(new).map_err(ValuesError::Verify)?;
    for r in records.iter().filter(|r| r.changed) {
        for (doc, steps) in std::iter::once(&r.at).chain(r.aliases.iter()) {
            let d = expected
                .get_mut(*doc)
                .ok_or_else(|| ValuesError::Verify(format!("document {doc} is gone")))?;
            set_at(d, steps, r.typed.clone())
                .map_err(|e| ValuesError::Verify(format!("`{}`: {e}", r.display)))?;
        }
    }
    if expected.len() != got.len() {
        return Err(ValuesError::Verify(format!(
            "{} documents instead of {}",
            got.len(),
            expected.len()
        )));
    }
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        if let Some(at) = first_difference(e, g, String::new()) {
            return Err(ValuesError::Verify(format!(
                "document {i} differs from the original beyond the edited values, at `{at}`"
            )));
        }
    }
    Ok(())
}

/// The path of the first place where two documents differ, for the error message.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    let here = || {
        Some(if at.is_empty() {
            "(root)".to_string()
        } else {
            at.clone()
        })
    };
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            for (k, v) in x {
                let name = match k {
                    Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                let sub = if at.is_empty() {
                    name
                } else {
                    format!("{at}.{name}")
                };
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, sub) {
                            return Some(d);
                        }
                    }
                    None => return Some(sub),
                }
            }
            (x.len() != y.len()).then(|| here().unwrap_or_default())
        }
        (Value::Sequence(x), Value::Sequence(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => here(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(list: &[&str]) -> Vec<SetOp> {
        list.iter().map(|s| SetOp::parse(s).unwrap()).collect()
    }

    fn edit(input: &str, list: &[&str]) -> String {
        edit_with(input, list, &EditOptions::default())
    }

    fn edit_with(input: &str, list: &[&str], opts: &EditOptions) -> String {
        let out = apply(input.as_bytes(), &sets(list), opts).unwrap();
        String::from_utf8(out.bytes).unwrap()
    }

    fn error(input: &str, list: &[&str], opts: &EditOptions) -> String {
        apply(input.as_bytes(), &sets(list), opts)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn kargo_table_quoted_stays_quoted_plain_stays_plain() {
        let cases = [
            ("a: \"42\"\n", "a=43", "a: \"43\"\n"),
            ("a: 42\n", "a=43", "a: 43\n"),
            ("a: '42' # why\n", "a=43", "a: '43' # why\n"),
            ("a: x # c\n", "a=z", "a: z # c\n"),
            ("a: x\n", "a=y", "a: \"y\"\n"),
            ("a: \"x\"   # c\n", "a=yy", "a: \"yy\"   # c\n"),
            ("a: v1\n", "a=1.5", "a: \"1.5\"\n"),
            ("a: v1\n", "a=true", "a: \"true\"\n"),
            ("a:\n", "a=web", "a: web\n"),
            ("a: \n", "a=web", "a: web\n"),
            ("a:\n", "a=5", "a: \"5\"\n"),
            ("a: ~\n", "a=web", "a: web\n"),
            ("a: true\n", "a=false", "a: false\n"),
            ("a: {b: 1, c: x}\n", "a.c=y,z", "a: {b: 1, c: \"y,z\"}\n"),
            ("a: [1, \"2\"]\n", "a[1]=3", "a: [1, \"3\"]\n"),
            ("a: !!str 1.0\n", "a=2.0", "a: !!str 2.0\n"),
            ("l:\n- \n-\n- x\n", "l[0]=a", "l:\n- a\n-\n- x\n"),
            ("l:\n- \n-\n- x\n", "l[1]=b", "l:\n- \n- b\n- x\n"),
            ("m: {a: , b: 1}\n", "m.a=v", "m: {a: v, b: 1}\n"),
            (
                "l:\n  -   # c\n# x\nk: 1\n",
                "l[0]=v",
                "l:\n  - v  # c\n# x\nk: 1\n",
            ),
            ("k: # c\n", "k=v", "k: v # c\n"),
            ("k:\n", "k=", "k: \"\"\n"),
            ("a: !!str\n  1.0\n", "a=x", "a: !!str\n  x\n"),
        ];
        for (input, set, want) in cases {
            assert_eq!(edit(input, &[set]), want, "{input:?} {set}");
        }
    }

    /// Found by the fuzz smoke: `key:<tab>~` parses, `key:<tab>zz` does not (saphyr-parser), so
    /// the edit is refused instead of writing a file the next promotion cannot read.
    #[test]
    fn an_edit_our_parser_could_not_read_again_is_refused() {
        let e = error("list:\t~ x\n", &["list=zz"], &EditOptions::default());
        assert!(
            e.contains("would not parse again") && e.contains("tab"),
            "{e}"
        );
        // With a space the same edit is fine.
        assert_eq!(edit("list: ~ x\n", &["list=zz"]), "list: zz\n");
    }

    #[test]
    fn bytes_around_the_scalar_survive() {
        let crlf = "\u{feff}# é\r\nimage:\r\n    tag: \"1.0\"  \r\n    name: ü # ö\r\n";
        assert_eq!(
            edit(crlf, &["image.tag=2.0", "image.name=ä"]),
            "\u{feff}# é\r\nimage:\r\n    tag: \"2.0\"  \r\n    name: ä # ö\r\n"
        );
    }

    #[test]
    fn setting_the_same_value_changes_nothing() {
        let out = apply(
            b"a: \"1\"\nb: 2\n",
            &sets(&["a=1", "b=2"]),
            &EditOptions::default(),
        )
        .unwrap();
        assert!(out.changes.is_empty());
        assert_eq!(out.bytes, b"a: \"1\"\nb: 2\n");
        let out = apply(b"a: x\n", &sets(&["a=y", "a=x"]), &EditOptions::default()).unwrap();
        assert!(out.changes.is_empty());
        assert_eq!(out.bytes, b"a: x\n");
        let out = apply(b"a: x\n", &sets(&["a=y", "a=z"]), &EditOptions::default()).unwrap();
        assert_eq!(
            out.changes,
            vec![Change {
                path: "a".into(),
                old: Some("x".into()),
                new: "z".into()
            }]
        );
    }

    #[test]
    fn later_sets_see_earlier_ones() {
        let input = "c:\n  - name: a\n    image: a:1\n";
        assert_eq!(
            edit(input, &["c[0].name=web", "c[name=web].image=web:2"]),
            "c:\n  - name: web\n    image: web:2\n"
        );
    }

    #[test]
    fn create_missing_uses_the_parent_indentation() {
        let opts = EditOptions {
            create_missing: true,
            ..EditOptions::default()
        };
        let input = "image:\n    repo: x # c\n# trailing\nother: 1\n";
        assert_eq!(
            edit_with(input, &["image.tag=1.5.0", "image.extra.deep=v"], &opts),
            "image:\n    repo: x # c\n    tag: 1.5.0\n    extra:\n        deep: v\n# trailing\nother: 1\n"
        );
        assert_eq!(edit_with("a: 1", &["b=x"], &opts), "a: 1\nb: x");
        assert_eq!(
            edit_with("a: 1\r\n", &["\"c.d\"=x"], &opts),
            "a: 1\r\nc.d: x\r\n"
        );
        let anchored = "d: &d\n  a: 1\nb: *d\n";
        let e = error(anchored, &["d.c=1"], &opts);
        assert_eq!(e, "refusing to edit `d.c`: the new key would go inside an anchored collection (`&name`), so its aliases would change too; pass --allow-anchor if that is intended");
        let both = EditOptions {
            allow_anchor: true,
            ..opts.clone()
        };
        assert_eq!(
            edit_with(anchored, &["d.c=x"], &both),
            "d: &d\n  a: 1\n  c: x\nb: *d\n"
        );
        let e = error("a: {b: 1}\n", &["a.c=1"], &opts);
        assert_eq!(
            e,
            "cannot create `a.c`: `a` is a flow mapping (`{...}`); add the key by hand"
        );
        let e = error("a: [1]\n", &["a[3]=1"], &opts);
        assert_eq!(
            e,
            "cannot create `a[3]`: only mapping keys can be created, not `[3]`"
        );
    }

    #[test]
    fn every_refusal_says_why() {
        let d = EditOptions::default();
        let cases = [
            ("a: &x 1\nb: *x\n", "a=2", "refusing to edit `a`: the value is an anchored scalar (`&name`), so its aliases would change too; pass --allow-anchor if that is intended"),
            ("a: &x 1\nb: *x\n", "b=2", "refusing to edit `b`: the value is an alias (`*name`); edit its anchor"),
            ("a: &x {c: 1}\nb: *x\n", "b.c=2", "refusing to edit `b.c`: `b` is an alias (`*name`); the path only exists through it"),
            ("d: &d {c: 1}\nb:\n  <<: *d\n", "d.c=2", "refusing to edit `d.c`: the value is inside an anchored collection (`&name`), so its aliases would change too; pass --allow-anchor if that is intended"),
            ("a: |\n  text\n", "a=x", "refusing to edit `a`: the value is a block scalar (`|` or `>`); edit it by hand"),
            ("a: >-\n  text\n", "a=x", "refusing to edit `a`: the value is a block scalar (`|` or `>`); edit it by hand"),
            ("a: {b: 1}\n", "a=x", "refusing to edit `a`: the value is a mapping, not a scalar"),
            ("a: [1]\n", "a=x", "refusing to edit `a`: the value is a sequence, not a scalar"),
            ("a: 1\n---\na: 2\n", "a=3", "refusing to edit `a`: it is present in documents 0, 1 of this multi-document file; pass --document N"),
        ];
        for (input, set, want) in cases {
            assert_eq!(error(input, &[set], &d), want, "{input:?}");
        }
        let merged = "d: &d {c: 1}\nb:\n  <<: *d\n  e: 2\n";
        assert_eq!(
            error(merged, &["b.c=2"], &EditOptions { allow_anchor: true, ..d.clone() }),
            "refusing to edit `b.c`: `b.c` only exists through a `<<` merge key; set it where the merged mapping defines it, or add the key here by hand"
        );
    }

    #[test]
    fn allowed_anchor_edits_change_aliases_and_pass_the_check() {
        let opts = EditOptions {
            allow_anchor: true,
            ..EditOptions::default()
        };
        assert_eq!(
            edit_with("a: &x 1\nb: *x\n", &["a=2"], &opts),
            "a: &x 2\nb: *x\n"
        );
        assert_eq!(
            edit_with("d: &d\n  c: 1\nb:\n  <<: *d\n  e: 2\n", &["d.c=5"], &opts),
            "d: &d\n  c: 5\nb:\n  <<: *d\n  e: 2\n"
        );
    }

    #[test]
    fn the_check_names_where_documents_differ() {
        let old = "a:\n  b: 1\n  c: [x, y]\n";
        let rec = |at: Vec<Step>| Record {
            display: "a.b".into(),
            at: (0, at),
            orig: Some("1".into()),
            value: "2".into(),
            changed: true,
            typed: Value::Number(2.into()),
            aliases: vec![],
        };
        let good = [rec(vec![Step::Key("a".into()), Step::Key("b".into())])];
        verify(old, "a:\n  b: 2\n  c: [x, y]\n", &good).unwrap();
        let e = verify(old, "a:\n  b: 2\n  c: [x, z]\n", &good).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the edited file does not parse back as expected: document 0 differs from the original beyond the edited values, at `a.c[1]`"
        );
    }

    #[test]
    fn documents_are_picked_by_index() {
        let input = "a: 1\n---\na: 2\n";
        let opts = EditOptions {
            document: Some(1),
            ..EditOptions::default()
        };
        assert_eq!(edit_with(input, &["a=3"], &opts), "a: 1\n---\na: 3\n");
        assert_eq!(edit("a: 1\n---\nb: 2\n", &["b=3"]), "a: 1\n---\nb: 3\n");
        let opts = EditOptions {
            document: Some(2),
            ..EditOptions::default()
        };
        assert_eq!(
            error(input, &["a=3"], &opts),
            "document 2 does not exist (the file has 2)"
        );
    }

    #[test]
    fn missing_keys_name_the_deepest_part_that_exists() {
        let d = EditOptions::default();
        let input = "image:\n  repo: x\nlist:\n  - name: web\n";
        for (set, want) in [
            ("image.tag=1", "`image.tag` not found: no key `tag` (deepest existing part: `image`)"),
            ("nope.tag=1", "`nope.tag` not found: no key `nope` (deepest existing part: `(root)`)"),
            ("list[3].x=1", "`list[3].x` not found: index 3 is out of range (the list has 1 items) (deepest existing part: `list`)"),
            ("list[name=api].x=1", "`list[name=api].x` not found: no item with `name: api` (deepest existing part: `list`)"),
            ("image.repo.x=1", "`image.repo.x` not found: `image.repo` is a scalar, not a collection (deepest existing part: `image.repo`)"),
        ] {
            assert_eq!(error(input, &[set], &d), want);
        }
    }

    #[test]
    fn bounds_are_enforced_with_clear_errors() {
        let d = EditOptions::default();
        let small = EditOptions {
            max_bytes: 4,
            ..d.clone()
        };
        assert_eq!(
            error("a: 12\n", &["a=1"], &small),
            "the file is 6 bytes, more than the limit of 4 bytes"
        );
        assert_eq!(
            apply(b"a: \xff\n", &sets(&["a=1"]), &d)
                .unwrap_err()
                .to_string(),
            "the file is not valid UTF-8 (byte 3)"
        );
        let e = error("a: [1\nb: 2\n", &["a=1"], &d);
        assert!(e.starts_with("malformed YAML at line "), "{e}");
        let deep = format!("{}1{}\n", "[".repeat(80), "]".repeat(80));
        assert_eq!(
            error(&deep, &["a=1"], &d),
            "nesting deeper than 64 levels at line 1"
        );
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (p, n) in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f")] {
            bomb.push_str(&format!(
                "{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            ));
        }
        bomb.push_str("t: 1\n");
        let e = error(&bomb, &["t=2"], &d);
        assert!(
            e.starts_with("aliases expand to more than 100000 nodes"),
            "{e}"
        );
    }
}
