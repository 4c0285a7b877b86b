//! Property tests: generated documents in many styles, one random scalar edited; only its bytes
//! may change and the re-parse must equal the expected document.

use super::{apply, EditOptions, SetOp};
use proptest::prelude::*;
use yaml_serde::Value;

#[derive(Debug, Clone)]
enum G {
    Plain(String),
    Single(String),
    Double(String),
    Int(i64),
    /// An empty value (`key:` or `- `), a null.
    Empty,
    /// Entries, and whether to write the map in flow style when all its values are scalars.
    Map(Vec<G>, bool),
    Seq(Vec<G>, bool),
}

/// Layout choices that apply to the whole document.
#[derive(Debug, Clone)]
struct Style {
    indent: usize,
    indented_seqs: bool,
    crlf: bool,
    comments: bool,
    blanks: bool,
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// A scalar written into the text: where, which path, and whether it is a string.
#[derive(Debug, Clone)]
struct Leaf {
    start: usize,
    end: usize,
    path: Vec<Step>,
    string: bool,
}

fn leaf() -> impl Strategy<Value = G> {
    prop_oneof![
        "x[a-z0-9]{0,6}".prop_map(G::Plain),
        "[ -~é]{0,8}".prop_map(G::Single),
        "[ -~é]{0,8}".prop_map(G::Double),
        any::<i32>().prop_map(|i| G::Int(i.into())),
        Just(G::Empty),
    ]
}

fn node() -> impl Strategy<Value = G> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 1..5), any::<bool>())
                .prop_map(|(v, f)| G::Map(v, f)),
            (prop::collection::vec(inner, 1..5), any::<bool>()).prop_map(|(v, f)| G::Seq(v, f)),
        ]
    })
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(2usize), Just(4)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(indent, indented_seqs, crlf, comments, blanks)| Style {
            indent,
            indented_seqs,
            crlf,
            comments,
            blanks,
        })
}

struct Writer<'a> {
    out: String,
    leaves: Vec<Leaf>,
    s: &'a Style,
}

impl Writer<'_> {
    fn nl(&mut self) {
        self.out.push_str(if self.s.crlf { "\r\n" } else { "\n" });
    }

    fn scalar(&mut self, g: &G, path: &[Step]) {
        let start = self.out.len();
        let (text, string) = match g {
            G::Plain(s) => (s.clone(), true),
            G::Single(s) => (format!("'{}'", s.replace('\'', "''")), true),
            G::Double(s) => (
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
                true,
            ),
            G::Int(i) => (i.to_string(), false),
            // A null takes any new text as a string (quoted where it would not read as one).
            G::Empty => (String::new(), true),
            _ => unreachable!(),
        };
        self.out.push_str(&text);
        self.leaves.push(Leaf {
            start,
            end: self.out.len(),
            path: path.to_vec(),
            string,
        });
    }

    fn is_flow(g: &G) -> bool {
        match g {
            G::Map(v, f) | G::Seq(v, f) => {
                *f && v
                    .iter()
                    .all(|c| !matches!(c, G::Map(..) | G::Seq(..) | G::Empty))
            }
            _ => false,
        }
    }

    fn flow(&mut self, g: &G, path: &[Step]) {
        let (items, map) = match g {
            G::Map(v, _) => (v, true),
            G::Seq(v, _) => (v, false),
            _ => unreachable!(),
        };
        self.out.push(if map { '{' } else { '[' });
        for (i, c) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            let mut p = path.to_vec();
            if map {
                self.out.push_str(&format!("k{i}: "));
                p.push(Step::Key(format!("k{i}")));
            } else {
                p.push(Step::Index(i));
            }
            self.scalar(c, &p);
        }
        self.out.push(if map { '}' } else { ']' });
    }

    /// Writes a value after `key:` or `- ` (the cursor is right after the indicator).
    fn value(&mut self, g: &G, indent: usize, path: &[Step], in_seq: bool) {
        match g {
            G::Map(..) | G::Seq(..) if Self::is_flow(g) => {
                self.out.push(' ');
                self.flow(g, path);
                self.nl();
            }
            G::Map(v, _) if in_seq => {
                self.out.push(' ');
                self.map(v, indent + 2, path, true);
            }
            G::Map(v, _) => {
                self.nl();
                self.map(v, indent + self.s.indent, path, false);
            }
            G::Seq(v, _) => {
                self.nl();
                let ind = if self.s.indented_seqs || in_seq {
                    indent + self.s.indent
                } else {
                    indent
                };
                self.seq(v, ind, path);
            }
            _ => {
                self.out.push(' ');
                self.scalar(g, path);
                if self.s.comments {
                    self.out.push_str("  # note: é");
                }
                self.nl();
            }
        }
    }

    fn map(&mut self, entries: &[G], indent: usize, path: &[Step], first_inline: bool) {
        for (i, v) in entries.iter().enumerate() {
            if !(first_inline && i == 0) {
                if self.s.blanks && i % 2 == 1 {
                    self.nl();
                }
                if self.s.comments && i % 3 == 2 {
                    self.out.push_str(&" ".repeat(indent));
                    self.out.push_str("# old: value");
                    self.nl();
                }
                self.out.push_str(&" ".repeat(indent));
            }
            self.out.push_str(&format!("k{i}:"));
            let mut p = path.to_vec();
            p.push(Step::Key(format!("k{i}")));
            self.value(v, indent, &p, false);
        }
    }

    fn seq(&mut self, items: &[G], indent: usize, path: &[Step]) {
        for (i, v) in items.iter().enumerate() {
            self.out.push_str(&" ".repeat(indent));
            self.out.push('-');
            let mut p = path.to_vec();
            p.push(Step::Index(i));
            self.value(v, indent, &p, true);
        }
    }
}

fn path_text(p: &[Step]) -> String {
    let mut s = String::new();
    for st in p {
        match st {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn set_expected(v: &mut Value, p: &[Step], new: Value) {
    let mut cur = v;
    for st in p {
        cur = match st {
            Step::Key(k) => cur.get_mut(k.as_str()).unwrap(),
            Step::Index(i) => cur.get_mut(*i).unwrap(),
        };
    }
    *cur = new;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn only_the_target_span_changes(
        entries in prop::collection::vec(node(), 1..6),
        s in style(),
        pick in any::<prop::sample::Index>(),
        new_str in "[ -~éü]{0,10}",
        new_int in any::<i32>(),
    ) {
        let mut w = Writer { out: String::new(), leaves: vec![], s: &s };
        w.out.push_str("# generated values");
        w.nl();
        w.map(&entries, 0, &[], false);
        let input = w.out.clone();
        let target = w.leaves[pick.index(w.leaves.len())].clone();
        let new = if target.string { new_str } else { new_int.to_string() };
        let set = SetOp { file: None, path: super::Path::parse(&path_text(&target.path)).unwrap(), value: new.clone() };
        let out = apply(input.as_bytes(), &[set], &EditOptions::default())
            .unwrap_or_else(|e| panic!("{e}\n{input}"));
        let b = &out.bytes;
        let tail = input.len() - target.end;
        prop_assert_eq!(&b[..target.start], &input.as_bytes()[..target.start]);
        prop_assert_eq!(&b[b.len() - tail..], &input.as_bytes()[target.end..]);
        let mut expected: Value = yaml_serde::from_str(&input).unwrap();
        let typed = if target.string { Value::String(new.clone()) } else { Value::Number(new_int.into()) };
        set_expected(&mut expected, &target.path, typed);
        let got: Value = yaml_serde::from_slice(b).unwrap();
        prop_assert_eq!(got, expected, "{}", String::from_utf8_lossy(b));
    }
}
