//! Python params files (`params.py`), read as DVC reads them (`dvc/utils/serialize/_py.py`):
//! module-level assignments of literals, class bodies as nested maps, and `self.x = …` in
//! `__init__`; any statement whose value is not a literal (`ast.literal_eval` fails) is skipped.
//! Nothing is executed. Written by hand because no crate parses Python literals, and kiln needs
//! only this small subset: logical lines (brackets, strings and `\` continue a line), their
//! indentation, and literals.

use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Num(String),
    Str(String),
    /// `f"…"` and `b"…"` strings: not literals kiln can hold, so the statement is skipped.
    OtherStr,
    Op(char),
}

/// One logical line: its indentation and tokens.
#[derive(Debug)]
struct Line {
    indent: usize,
    toks: Vec<Tok>,
}

/// Parses the file's text into a map.
///
/// # Errors
/// Text that does not tokenize (an unterminated string or bracket): DVC's "Python file
/// structure is corrupted".
pub fn parse(text: &str) -> Result<Value, String> {
    let lines = logical_lines(text)?;
    let mut pos = 0;
    Ok(Value::Map(block(&lines, &mut pos, 0, false)))
}

fn logical_lines(text: &str) -> Result<Vec<Line>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let (mut i, mut line_no) = (0, 1);
    while i < chars.len() {
        // Indentation of a new logical line.
        let mut indent = 0;
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            indent += if chars[i] == '\t' { 8 - indent % 8 } else { 1 };
            i += 1;
        }
        let mut toks = Vec::new();
        let mut depth = 0i32;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\n' => {
                    line_no += 1;
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                '\\' if chars.get(i + 1) == Some(&'\n') => {
                    line_no += 1;
                    i += 2;
                }
                '#' => {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                }
                ' ' | '\t' | '\r' | '\x0c' => i += 1,
                '(' | '[' | '{' => {
                    depth += 1;
                    toks.push(Tok::Op(c));
                    i += 1;
                }
                ')' | ']' | '}' => {
                    depth -= 1;
                    toks.push(Tok::Op(c));
                    i += 1;
                }
                c if c.is_alphabetic() || c == '_' => {
                    let start = i;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    let word: String = chars[start..i].iter().collect();
                    let prefix = word.to_ascii_lowercase();
                    if matches!(chars.get(i), Some('"' | '\''))
                        && prefix.len() <= 2
                        && prefix.chars().all(|p| matches!(p, 'r' | 'b' | 'u' | 'f'))
                    {
                        let (s, next, lines_in) = string(&chars, i, prefix.contains('r'))
                            .ok_or_else(|| format!("line {line_no}: unterminated string"))?;
                        line_no += lines_in;
                        i = next;
                        toks.push(if prefix.contains('b') || prefix.contains('f') {
                            Tok::OtherStr
                        } else {
                            Tok::Str(s)
                        });
                    } else {
                        toks.push(Tok::Name(word));
                    }
                }
                c if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                    let start = i;
                    while i < chars.len()
                        && (chars[i].is_ascii_alphanumeric()
                            || chars[i] == '_'
                            || chars[i] == '.'
                            || (matches!(chars[i], '+' | '-')
                                && matches!(chars[i - 1], 'e' | 'E')
                                && !chars[start..i].iter().any(|c| matches!(c, 'x' | 'X'))))
                    {
                        i += 1;
                    }
                    toks.push(Tok::Num(chars[start..i].iter().collect()));
                }
                '"' | '\'' => {
                    let (s, next, lines_in) =
                        string(&chars, i, false).ok_or_else(|| format!("line {line_no}: unterminated string"))?;
                    line_no += lines_in;
                    i = next;
                    toks.push(Tok::Str(s));
                }
                c => {
                    toks.push(Tok::Op(c));
                    i += 1;
                }
            }
        }
        if depth != 0 {
            return Err(format!("line {line_no}: unbalanced brackets"));
        }
        if !toks.is_empty() {
            lines.push(Line { indent, toks });
        }
    }
    Ok(lines)
}

/// A string literal at `chars[i]` (the quote): its value, the index after it, newlines inside.
fn string(chars: &[char], i: usize, raw: bool) -> Option<(String, usize, usize)> {
    let q = chars[i];
    let triple = chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let (mut out, mut newlines) = (String::new(), 0);
    loop {
        let c = *chars.get(j)?;
        if c == q && (!triple || (chars.get(j + 1) == Some(&q) && chars.get(j + 2) == Some(&q))) {
            return Some((out, if triple { j + 3 } else { j + 1 }, newlines));
        }
        if c == '\n' {
            if !triple {
                return None;
            }
            newlines += 1;
        }
        if c == '\\' && !raw {
            let e = *chars.get(j + 1)?;
            j += 2;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\n' => newlines += 1,
                '\\' | '\'' | '"' => out.push(e),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        out.push(c);
        j += 1;
    }
}

/// The statements of a block at `indent`: assignments of literals, classes (nested maps),
/// `__init__`'s `self.x = …` (`self_only`: inside `__init__`, only those count).
fn block(lines: &[Line], pos: &mut usize, indent: usize, self_only: bool) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let set = |out: &mut Vec<(String, Value)>, k: String, v: Value| match out.iter_mut().find(|(x, _)| *x == k) {
        Some(slot) => slot.1 = v,
        None => out.push((k, v)),
    };
    while *pos < lines.len() && lines[*pos].indent >= indent {
        let line = &lines[*pos];
        *pos += 1;
        let t = &line.toks;
        let body_indent = lines.get(*pos).map(|l| l.indent).filter(|i| *i > line.indent);
        match t.as_slice() {
            [Tok::Name(kw), Tok::Name(name), ..] if kw == "class" && t.last() == Some(&Tok::Op(':')) => {
                if let Some(bi) = body_indent {
                    let members = block(lines, pos, bi, false);
                    if !self_only {
                        set(&mut out, name.clone(), Value::Map(members));
                    }
                }
            }
            [Tok::Name(kw), Tok::Name(name), ..] if kw == "def" && t.last() == Some(&Tok::Op(':')) => {
                if let Some(bi) = body_indent {
                    let members = block(lines, pos, bi, true);
                    if name == "__init__" {
                        for (k, v) in members {
                            set(&mut out, k, v);
                        }
                    }
                }
            }
            _ if t.last() == Some(&Tok::Op(':')) => {
                // Another compound statement (if, for, with, …): its block is skipped.
                if let Some(bi) = body_indent {
                    let _ = block(lines, pos, bi, true);
                }
            }
            _ => {
                if let Some((k, v)) = assignment(t, self_only) {
                    set(&mut out, k, v);
                }
            }
        }
    }
    out
}

/// `name = literal`, `name: annotation = literal`, or (in `__init__`) `self.name = literal`.
fn assignment(t: &[Tok], self_only: bool) -> Option<(String, Value)> {
    let (name, rest) = match t {
        [Tok::Name(s), Tok::Op('.'), Tok::Name(n), rest @ ..] if self_only && s == "self" => (n, rest),
        [Tok::Name(n), rest @ ..] if !self_only => (n, rest),
        _ => return None,
    };
    let value = match rest {
        [Tok::Op('='), v @ ..] => v,
        [Tok::Op(':'), ann @ ..] => {
            // The annotation runs to the top-level `=`.
            let eq = ann.iter().position(|x| *x == Tok::Op('='))?;
            &ann[eq + 1..]
        }
        _ => return None,
    };
    // `a = b = 1` has two targets: DVC skips it.
    if value.contains(&Tok::Op('=')) && !value.iter().any(|x| matches!(x, Tok::Op('(' | '[' | '{'))) {
        return None;
    }
    let mut i = 0;
    let v = literal(value, &mut i)?;
    // A bare tuple: `x = 1, 2`.
    if i < value.len() && value[i] == Tok::Op(',') {
        let mut items = vec![v];
        while i < value.len() && value[i] == Tok::Op(',') {
            i += 1;
            if i == value.len() {
                break;
            }
            items.push(literal(value, &mut i)?);
        }
        return (i == value.len()).then(|| (name.clone(), Value::List(items)));
    }
    (i == value.len()).then(|| (name.clone(), v))
}

fn literal(t: &[Tok], i: &mut usize) -> Option<Value> {
    let tok = t.get(*i)?.clone();
    *i += 1;
    match tok {
        Tok::Name(n) => match n.as_str() {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => None,
        },
        Tok::Num(n) => number(&n),
        Tok::Op(sign @ ('-' | '+')) => match literal(t, i)? {
            Value::Int(x) => Some(Value::Int(if sign == '-' { x.checked_neg()? } else { x })),
            Value::Float(x) => Some(Value::Float(if sign == '-' { -x } else { x })),
            _ => None,
        },
        Tok::Str(mut s) => {
            // Adjacent literals concatenate.
            while let Some(Tok::Str(more)) = t.get(*i) {
                s.push_str(more);
                *i += 1;
            }
            Some(Value::Str(s))
        }
        Tok::OtherStr => None,
        Tok::Op(open @ ('[' | '(' | '{')) => {
            let close = match open {
                '[' => ']',
                '(' => ')',
                _ => '}',
            };
            let mut items = Vec::new();
            let mut pairs = Vec::new();
            loop {
                if t.get(*i) == Some(&Tok::Op(close)) {
                    *i += 1;
                    break;
                }
                let v = literal(t, i)?;
                if open == '{' && t.get(*i) == Some(&Tok::Op(':')) {
                    *i += 1;
                    let val = literal(t, i)?;
                    let key = match v {
                        Value::Str(s) => s,
                        other => other.python_repr(),
                    };
                    pairs.push((key, val));
                } else {
                    items.push(v);
                }
                match t.get(*i) {
                    Some(Tok::Op(',')) => *i += 1,
                    Some(Tok::Op(c)) if *c == close => {}
                    _ => return None,
                }
            }
            match (open, pairs.is_empty(), items.is_empty()) {
                ('{', false, true) | ('{', true, true) => Some(Value::Map(pairs)),
                ('{', true, false) => Some(Value::List(items)), // a set
                ('[' | '(', true, _) => Some(Value::List(items)),
                _ => None,
            }
        }
        Tok::Op(_) => None,
    }
}

fn number(n: &str) -> Option<Value> {
    let clean: String = n.chars().filter(|c| *c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = lower.strip_prefix(prefix) {
            return i64::from_str_radix(digits, radix).ok().map(Value::Int);
        }
    }
    if lower.ends_with('j') {
        return None; // complex
    }
    if lower.contains(['.', 'e']) || lower == "inf" {
        return lower.parse::<f64>().ok().map(Value::Float);
    }
    lower.parse::<i64>().ok().map(Value::Int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_dvc_reads() {
        let text = r#"import math  # skipped
SEED = 42
LR: float = 1e-3
NAME = 'nb' "-v2"
WORDS = ["the", 'a',
         "an"]
SHAPE = (1, 2)
NEG = -0.5
HEX = 0xFF
MIXED = {"a": 1, 'b': [True, None]}
COMPUTED = math.sqrt(2)
A = B = 3
FSTR = f"x{SEED}"


class Train:
    epochs = 10
    opt = {"name": "adam"}

    class Inner:
        depth = 2

    def __init__(self):
        self.dropout = 0.1
        local = 5

    def other(self):
        self.ignored = 1


if SEED > 1:
    SKIPPED = 1
DOC = """multi
line"""
"#;
        let v = parse(text).unwrap();
        assert_eq!(
            v.python_repr(),
            "{'SEED': 42, 'LR': 0.001, 'NAME': 'nb-v2', 'WORDS': ['the', 'a', 'an'], 'SHAPE': [1, 2], 'NEG': -0.5, \
             'HEX': 255, 'MIXED': {'a': 1, 'b': [True, None]}, 'Train': {'epochs': 10, 'opt': {'name': 'adam'}, \
             'Inner': {'depth': 2}, 'dropout': 0.1}, 'DOC': 'multi\\nline'}"
        );
        assert!(parse("X = 'open").is_err());
        assert!(parse("X = [1, 2").is_err());
    }
}
