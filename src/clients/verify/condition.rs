//! The `success-condition` / `failure-condition` language: a small expression parser and evaluator
//! of our own, so user input is never handed to an interpreter or a shell.
//!
//! Grammar (loosest first): `or` (also `||`), `and` (also `&&`), `not` (also `!`), comparisons
//! `< <= > >= == !=` (not chained), then primaries: numbers (`0.05`, `1e-3`), `true`, `false`,
//! `result` or a query name, an index `result[0]`, `len(x)`, `isNaN(x)`, `isInf(x)` and parentheses.

use std::fmt;

/// A parse error: what is wrong and the 1-based column (in characters) where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based character column.
    pub column: usize,
    /// What was expected or found.
    pub message: String,
}

/// A value during evaluation: a query's result is a number or, for a vector of several samples, a
/// list; comparisons and logic produce booleans.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar, or a vector of one sample.
    Number(f64),
    /// A vector of several samples, in Prometheus's order.
    List(Vec<f64>),
    /// The outcome of a comparison or of logic.
    Bool(bool),
}

/// A number for people: six significant digits (`0.00100088`, `35.3834`), integers as they are.
/// Conditions always use the exact value; only logs and the summary round.
pub fn show_number(n: f64) -> String {
    if n.is_infinite() {
        // Spelled as Prometheus spells it.
        return if n > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if n.is_nan() || n == 0.0 || (n.fract() == 0.0 && n.abs() < 1e15) {
        return format!("{n}");
    }
    let digits = 5 - n.abs().log10().floor() as i32;
    if !(0..=15).contains(&digits) {
        return format!("{n:e}");
    }
    let s = format!("{n:.*}", digits as usize);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => f.write_str(&show_number(*n)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, n) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&show_number(*n))?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// Functions a condition may call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Func {
    /// Number of samples (1 for a number).
    Len,
    /// Whether a number is NaN.
    IsNan,
    /// Whether a number is infinite.
    IsInf,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `result` or a query name, with the column it starts at.
    Var(String, usize),
    /// `x[i]`.
    Index(Box<Expr>, usize, usize),
    /// `f(x)`.
    Call(Func, Box<Expr>, usize),
    /// `not x`.
    Not(Box<Expr>, usize),
    /// `a and b`.
    And(Box<Expr>, Box<Expr>),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>),
    /// `a < b`, with the operator's column.
    Cmp(CmpOp, Box<Expr>, Box<Expr>, usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Cmp(CmpOp),
    And,
    Or,
    Not,
    LParen,
    RParen,
    LBracket,
    RBracket,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number {n}"),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Cmp(op) => format!("`{}`", op.as_str()),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::End => "the end of the condition".into(),
        }
    }
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        column,
        message: message.into(),
    })
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            '<' if next == Some('=') => (Tok::Cmp(CmpOp::Le), 2),
            '<' => (Tok::Cmp(CmpOp::Lt), 1),
            '>' if next == Some('=') => (Tok::Cmp(CmpOp::Ge), 2),
            '>' => (Tok::Cmp(CmpOp::Gt), 1),
            '=' if next == Some('=') => (Tok::Cmp(CmpOp::Eq), 2),
            '=' => return err(col, "`=` is not an operator; compare with `==`"),
            '!' if next == Some('=') => (Tok::Cmp(CmpOp::Ne), 2),
            '!' => (Tok::Not, 1),
            '&' if next == Some('&') => (Tok::And, 2),
            '|' if next == Some('|') => (Tok::Or, 2),
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                    j += 1;
                }
                if j < chars.len() && (chars[j] == 'e' || chars[j] == 'E') {
                    let mut k = j + 1;
                    if k < chars.len() && (chars[k] == '+' || chars[k] == '-') {
                        k += 1;
                    }
                    if k < chars.len() && chars[k].is_ascii_digit() {
                        while k < chars.len() && chars[k].is_ascii_digit() {
                            k += 1;
                        }
                        j = k;
                    }
                }
                let text: String = chars[start..j].iter().collect();
                match text.parse::<f64>() {
                    Ok(n) => (Tok::Num(n), j - start),
                    Err(_) => return err(col, format!("`{text}` is not a number")),
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word: String = chars[start..j].iter().collect();
                let tok = match word.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Ident(word),
                };
                (tok, j - start)
            }
            '-' => return err(
                col,
                "negative numbers and arithmetic are not supported; compare the other way round",
            ),
            other => return err(col, format!("unexpected character `{other}`")),
        };
        out.push((tok, col));
        i += len;
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    names: &'a [&'a str],
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn expect(&mut self, want: Tok) -> Result<(), ParseError> {
        if *self.peek() == want {
            self.bump();
            Ok(())
        } else {
            err(
                self.col(),
                format!(
                    "expected {}, found {}",
                    want.describe(),
                    self.peek().describe()
                ),
            )
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while *self.peek() == Tok::Or {
            self.bump();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not()?;
        while *self.peek() == Tok::And {
            self.bump();
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::Not {
            let (_, col) = self.bump();
            return Ok(Expr::Not(Box::new(self.not()?), col));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let left = self.primary()?;
        if let Tok::Cmp(op) = *self.peek() {
            let (_, col) = self.bump();
            let right = self.primary()?;
            if let Tok::Cmp(_) = self.peek() {
                return err(
                    self.col(),
                    "comparisons cannot be chained; join them with `and`",
                );
            }
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(right), col));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let (tok, col) = self.bump();
        let mut e = match tok {
            Tok::Num(n) => Expr::Number(n),
            Tok::LParen => {
                let e = self.or()?;
                self.expect(Tok::RParen)?;
                e
            }
            Tok::Ident(w) => match w.as_str() {
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "len" | "isNaN" | "isInf" => {
                    let f = match w.as_str() {
                        "len" => Func::Len,
                        "isNaN" => Func::IsNan,
                        _ => Func::IsInf,
                    };
                    self.expect(Tok::LParen)?;
                    let arg = self.or()?;
                    self.expect(Tok::RParen)?;
                    Expr::Call(f, Box::new(arg), col)
                }
                _ if w == "result" || self.names.contains(&w.as_str()) => Expr::Var(w, col),
                _ => {
                    let known = std::iter::once("result")
                        .chain(self.names.iter().copied())
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return err(
                        col,
                        format!("unknown name `{w}` (known: {known}, len, isNaN, isInf)"),
                    );
                }
            },
            other => {
                return err(
                    col,
                    format!(
                        "expected a number, `result` or `(`, found {}",
                        other.describe()
                    ),
                )
            }
        };
        while *self.peek() == Tok::LBracket {
            let (_, bcol) = self.bump();
            let (tok, icol) = self.bump();
            let idx = match tok {
                Tok::Num(n) if n >= 0.0 && n.fract() == 0.0 => n as usize,
                other => {
                    return err(
                        icol,
                        format!("expected an index like 0, found {}", other.describe()),
                    )
                }
            };
            self.expect(Tok::RBracket)?;
            e = Expr::Index(Box::new(e), idx, bcol);
        }
        Ok(e)
    }
}

/// Parses `src`; `names` are the query names it may refer to besides `result`.
///
/// # Errors
/// A [`ParseError`] with the column of the first problem.
pub fn parse(src: &str, names: &[&str]) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    if toks.len() == 1 {
        return err(1, "the condition is empty");
    }
    let mut p = Parser {
        toks,
        pos: 0,
        names,
    };
    let e = p.or()?;
    if *p.peek() != Tok::End {
        return err(
            p.col(),
            format!(
                "expected `and`, `or` or the end, found {}",
                p.peek().describe()
            ),
        );
    }
    Ok(e)
}

/// Evaluates `e`, looking names up with `lookup` (`result` included).
///
/// # Errors
/// A message when the value's shape does not fit, e.g. a list compared with a number or an index
/// past the end; the gate records that as an Error measurement.
pub fn eval(e: &Expr, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
    match e {
        Expr::Number(n) => Ok(Value::Number(*n)),
        Expr::Bool(b) => Ok(Value::Bool(*b)),
        Expr::Var(name, col) => {
            lookup(name).ok_or_else(|| format!("column {col}: no value for `{name}`"))
        }
        Expr::Index(inner, idx, col) => match eval(inner, lookup)? {
            Value::Number(n) if *idx == 0 => Ok(Value::Number(n)),
            Value::List(l) => l.get(*idx).map(|n| Value::Number(*n)).ok_or_else(|| {
                format!(
                    "column {col}: index {idx} is past the end of {} samples",
                    l.len()
                )
            }),
            Value::Number(_) => Err(format!("column {col}: index {idx} of a single sample")),
            Value::Bool(_) => Err(format!("column {col}: cannot index a boolean")),
        },
        Expr::Call(f, arg, col) => {
            let v = eval(arg, lookup)?;
            match (f, v) {
                (Func::Len, Value::List(l)) => Ok(Value::Number(l.len() as f64)),
                (Func::Len, Value::Number(_)) => Ok(Value::Number(1.0)),
                (Func::IsNan, Value::Number(n)) => Ok(Value::Bool(n.is_nan())),
                (Func::IsInf, Value::Number(n)) => Ok(Value::Bool(n.is_infinite())),
                (f, v) => Err(format!("column {col}: {f:?} does not take {v}")),
            }
        }
        Expr::Not(inner, col) => match eval(inner, lookup)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            v => Err(format!("column {col}: `not` needs a comparison, got {v}")),
        },
        Expr::And(a, b) => Ok(Value::Bool(truth(a, lookup)? && truth(b, lookup)?)),
        Expr::Or(a, b) => Ok(Value::Bool(truth(a, lookup)? || truth(b, lookup)?)),
        Expr::Cmp(op, a, b, col) => {
            let (a, b) = (eval(a, lookup)?, eval(b, lookup)?);
            let ord = match (&a, &b) {
                (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
                (Value::Bool(x), Value::Bool(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                    Some(x.cmp(y))
                }
                _ => {
                    return Err(format!(
                        "column {col}: cannot compare {a} {} {b}; use result[i] or len(result) \
                         for several samples",
                        op.as_str()
                    ))
                }
            };
            use std::cmp::Ordering::*;
            // NaN compares unequal to everything, as in Go and PromQL: only `!=` holds.
            Ok(Value::Bool(match (op, ord) {
                (CmpOp::Ne, None) => true,
                (_, None) => false,
                (CmpOp::Lt, Some(o)) => o == Less,
                (CmpOp::Le, Some(o)) => o != Greater,
                (CmpOp::Gt, Some(o)) => o == Greater,
                (CmpOp::Ge, Some(o)) => o != Less,
                (CmpOp::Eq, Some(o)) => o == Equal,
                (CmpOp::Ne, Some(o)) => o != Equal,
            }))
        }
    }
}

fn truth(e: &Expr, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<bool, String> {
    match eval(e, lookup)? {
        Value::Bool(b) => Ok(b),
        v => Err(format!(
            "expected a comparison, got {v} (write e.g. `result < 0.05`)"
        )),
    }
}

/// Evaluates a whole condition to true or false.
///
/// # Errors
/// As [`eval`], and when the condition is a bare number or list rather than a comparison.
pub fn holds(e: &Expr, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<bool, String> {
    truth(e, lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, result: Value) -> bool {
        let e = parse(src, &["errors"]).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        holds(&e, &|n| {
            (n == "result" || n == "errors").then(|| result.clone())
        })
        .unwrap()
    }

    fn n(x: f64) -> Value {
        Value::Number(x)
    }

    #[test]
    fn numbers_show_six_significant_digits() {
        assert_eq!(show_number(0.0010008807750820723), "0.00100088");
        assert_eq!(show_number(35.383354000000004), "35.3834");
        assert_eq!(show_number(0.3), "0.3");
        assert_eq!(show_number(100.0), "100");
        assert_eq!(show_number(1.5e-20), "1.5e-20");
        assert_eq!(show_number(f64::NAN), "NaN");
        assert_eq!(show_number(f64::INFINITY), "+Inf");
        assert_eq!(show_number(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn each_comparison_operator() {
        assert!(check("result < 0.05", n(0.01)));
        assert!(!check("result < 0.05", n(0.05)));
        assert!(check("result <= 0.05", n(0.05)));
        assert!(check("result > 1e-3", n(0.01)));
        assert!(!check("result >= 0.99", n(0.98)));
        assert!(check("result >= .99", n(0.99)));
        assert!(check("result == 3", n(3.0)));
        assert!(check("result != 3", n(2.0)));
        assert!(check("0.5 > result", n(0.1)));
    }

    #[test]
    fn logic_and_precedence() {
        // `and` binds tighter than `or`: false or (true and true).
        assert!(check("result > 5 or result > 0 and result < 2", n(1.0)));
        // Parentheses change it: (false or true) and false.
        assert!(!check("(result > 5 or result > 0) and result > 2", n(1.0)));
        assert!(check("not result > 5", n(1.0)));
        assert!(check("!(result > 5) && result < 2 || false", n(1.0)));
        assert!(!check("not (result < 5 and result > 0)", n(1.0)));
        assert!(check("true", n(0.0)));
    }

    #[test]
    fn lists_indexes_and_functions() {
        let l = Value::List(vec![0.5, 7.0]);
        assert!(check(
            "len(result) == 2 and result[1] > result[0]",
            l.clone()
        ));
        assert!(
            check("result[0] < 1", n(0.2)),
            "a single sample indexes like a list"
        );
        assert!(check("isNaN(result)", n(f64::NAN)));
        assert!(check(
            "isInf(result) and not isNaN(result)",
            n(f64::INFINITY)
        ));
        assert!(!check("result < 1", n(f64::NAN)), "NaN fails comparisons");
        assert!(check("result != 1", n(f64::NAN)));
        assert!(check("errors < 1", n(0.2)), "query names are variables");
        let e = parse("result < 1", &[]).unwrap();
        let msg = holds(&e, &|_| Some(l.clone())).unwrap_err();
        assert!(
            msg.contains("column 8") && msg.contains("result[i]"),
            "{msg}"
        );
        let e = parse("result[2] < 1", &[]).unwrap();
        assert!(holds(&e, &|_| Some(l.clone()))
            .unwrap_err()
            .contains("past the end"));
        let e = parse("result", &[]).unwrap();
        assert!(holds(&e, &|_| Some(n(1.0)))
            .unwrap_err()
            .contains("expected a comparison"));
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            ("result <", 9, "expected a number"),
            ("result = 1", 8, "compare with `==`"),
            ("resutl < 1", 1, "unknown name `resutl`"),
            ("(result < 1", 12, "expected `)`"),
            ("result < 1 result", 12, "expected `and`, `or` or the end"),
            ("result < -1", 10, "negative numbers"),
            ("0 < result < 1", 12, "cannot be chained"),
            ("result[x] < 1", 8, "expected an index"),
            ("result < 1 $", 12, "unexpected character `$`"),
            ("  ", 1, "empty"),
            ("len result", 5, "expected `(`"),
        ];
        for (src, column, text) in cases {
            let e = parse(src, &[]).expect_err(src);
            assert_eq!(e.column, column, "{src}: {e:?}");
            assert!(e.message.contains(text), "{src}: {e:?}");
        }
    }
}
