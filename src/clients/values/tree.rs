//! A minimal node tree built from saphyr-parser events: just enough to find a scalar's exact
//! byte span, its style, anchors and aliases. It is never serialized back; edits are byte splices.

use super::ValuesError;
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// What a node is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A scalar with its decoded value and style, and the properties written before it (`!!str `,
    /// `&anchor `), which decide its type together with the text.
    Scalar {
        value: String,
        style: ScalarStyle,
        props: String,
    },
    /// A mapping: (key node, value node) pairs in source order.
    Map(Vec<(usize, usize)>),
    /// A sequence of node ids.
    Seq(Vec<usize>),
    /// An alias to the node anchored with this id.
    Alias(usize),
}

/// One node; positions are byte offsets into the text the tree was built from.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Anchor id (0 = none).
    pub anchor: usize,
    /// Byte range of the scalar token itself (quotes included, anchor and tag excluded); for
    /// collections, where they start.
    pub start: usize,
    pub end: usize,
    /// 1-based line and 0-based column (in chars) of the node.
    pub line: usize,
    pub col: usize,
    /// Written in flow style (`[..]`, `{..}`) or inside a flow collection.
    pub flow: bool,
}

/// All documents of a stream.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    pub docs: Vec<usize>,
    /// Anchor id → node id.
    pub anchors: HashMap<usize, usize>,
}

/// Limits applied while building.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_depth: usize,
    pub max_alias_nodes: usize,
}

/// Maps parser char indices to byte offsets; the identity for ASCII text.
struct CharMap(Option<Vec<usize>>);

impl CharMap {
    fn new(text: &str) -> CharMap {
        if text.is_ascii() {
            return CharMap(None);
        }
        let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        v.push(text.len());
        CharMap(Some(v))
    }
    fn byte(&self, ci: usize) -> usize {
        match &self.0 {
            None => ci,
            Some(v) => v[ci.min(v.len() - 1)],
        }
    }
}

enum Open {
    Map(usize, Vec<(usize, usize)>, Option<usize>),
    Seq(usize, Vec<usize>),
}

impl Tree {
    /// Parses `text` (no BOM) into a tree.
    ///
    /// # Errors
    /// Malformed YAML with line and column, nesting deeper than the limit, or aliases that would
    /// expand to more nodes than allowed.
    pub fn parse(text: &str, limits: Limits) -> Result<Tree, ValuesError> {
        let map = CharMap::new(text);
        let bytes = text.as_bytes();
        let mut tree = Tree::default();
        let mut stack: Vec<Open> = Vec::new();
        let mut sizes: Vec<u64> = Vec::new();
        let mut alias_total: u64 = 0;
        let mut parser = Parser::new_from_str(text);
        while let Some(ev) = parser.next_event() {
            let (ev, span) = ev.map_err(|e| ValuesError::Malformed {
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: e.info().to_string(),
            })?;
            let start = map.byte(span.start.index());
            let end = map.byte(span.end.index());
            let in_flow = stack.iter().any(|o| {
                let id = match o {
                    Open::Map(id, ..) | Open::Seq(id, _) => *id,
                };
                tree.nodes[id].flow
            });
            let mut node = Node {
                kind: Kind::Alias(0),
                anchor: 0,
                start,
                end,
                line: span.start.line(),
                col: span.start.col(),
                flow: in_flow,
            };
            let id = tree.nodes.len();
            match ev {
                Event::StreamEnd => break,
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => continue,
                Event::DocumentStart(_) => continue,
                Event::Scalar(value, style, anchor, _tag) => {
                    let (s, e) = token_span(bytes, start, end, style);
                    node.start = s;
                    node.end = e;
                    node.anchor = anchor;
                    node.kind = Kind::Scalar {
                        value: value.into_owned(),
                        style,
                        props: text[start.min(s)..s].to_string(),
                    };
                }
                Event::Alias(a) => node.kind = Kind::Alias(a),
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    if stack.len() >= limits.max_depth {
                        return Err(ValuesError::TooDeep {
                            max: limits.max_depth,
                            line: node.line,
                        });
                    }
                    node.anchor = anchor;
                    node.flow = in_flow || (end > start && matches!(bytes[end - 1], b'[' | b'{'));
                    let is_map = matches!(ev, Event::MappingStart(..));
                    node.kind = if is_map {
                        Kind::Map(vec![])
                    } else {
                        Kind::Seq(vec![])
                    };
                    if anchor != 0 {
                        tree.anchors.insert(anchor, id);
                    }
                    tree.nodes.push(node);
                    sizes.push(1);
                    stack.push(if is_map {
                        Open::Map(id, vec![], None)
                    } else {
                        Open::Seq(id, vec![])
                    });
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let done = match stack.pop() {
                        Some(Open::Map(id, entries, _)) => {
                            tree.nodes[id].kind = Kind::Map(entries);
                            tree.nodes[id].end = end;
                            id
                        }
                        Some(Open::Seq(id, items)) => {
                            tree.nodes[id].kind = Kind::Seq(items);
                            tree.nodes[id].end = end;
                            id
                        }
                        None => continue,
                    };
                    sizes[done] = tree.expanded_size(&sizes, done);
                    tree.attach(&mut stack, done);
                    continue;
                }
            }
            if node.anchor != 0 {
                tree.anchors.insert(node.anchor, id);
            }
            tree.nodes.push(node);
            sizes.push(1);
            sizes[id] = tree.expanded_size(&sizes, id);
            if matches!(tree.nodes[id].kind, Kind::Alias(_)) {
                // Count what every alias adds: typed readers (yaml_serde, Helm) expand them all.
                alias_total = alias_total.saturating_add(sizes[id]);
                if alias_total > limits.max_alias_nodes as u64 {
                    return Err(ValuesError::AliasExpansion {
                        max: limits.max_alias_nodes,
                        line: tree.nodes[id].line,
                    });
                }
            }
            tree.attach(&mut stack, id);
        }
        Ok(tree)
    }

    fn attach(&mut self, stack: &mut [Open], id: usize) {
        match stack.last_mut() {
            None => self.docs.push(id),
            Some(Open::Seq(_, items)) => items.push(id),
            Some(Open::Map(_, entries, pending)) => match pending.take() {
                None => *pending = Some(id),
                Some(k) => entries.push((k, id)),
            },
        }
    }

    /// The number of nodes `id` stands for once every alias in it is expanded. Called when the
    /// node is complete; an alias always follows its (complete) anchor, so one pass suffices.
    fn expanded_size(&self, sizes: &[u64], id: usize) -> u64 {
        match &self.nodes[id].kind {
            Kind::Scalar { .. } => 1,
            Kind::Map(e) => 1 + e.iter().map(|(k, v)| sizes[*k] + sizes[*v]).sum::<u64>(),
            Kind::Seq(items) => 1 + items.iter().map(|i| sizes[*i]).sum::<u64>(),
            Kind::Alias(a) => self
                .anchors
                .get(a)
                .and_then(|t| sizes.get(*t).copied())
                .unwrap_or(1),
        }
    }
}

/// Narrows a scalar event's span to the token: the span starts at an anchor or tag written
/// before the scalar, and for quoted scalars it runs on through trailing blanks and a comment.
fn token_span(b: &[u8], start: usize, end: usize, style: ScalarStyle) -> (usize, usize) {
    let mut s = start;
    // Skip `&anchor` and `!tag` properties and the blanks after them.
    while s < b.len() && matches!(b[s], b'&' | b'!') {
        while s < b.len() && !matches!(b[s], b' ' | b'\t' | b'\r' | b'\n') {
            s += 1;
        }
        while s < b.len() && matches!(b[s], b' ' | b'\t' | b'\r' | b'\n') {
            s += 1;
        }
    }
    match style {
        ScalarStyle::SingleQuoted => {
            let mut i = s + 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return (s, i + 1);
                }
                i += 1;
            }
            (s, end)
        }
        ScalarStyle::DoubleQuoted => {
            let mut i = s + 1;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'"' => return (s, i + 1),
                    _ => i += 1,
                }
            }
            (s, end)
        }
        _ => (s.min(end.max(s)), end.max(s)),
    }
}
