//! MLflow's search grammar (`shared/spec/mlflow-compat.md` §3): `filter` strings and `order_by`
//! entries, parsed into clauses and compiled to SQL fragments whose values are always bound
//! parameters (user text never becomes SQL). Errors are 400 `INVALID_PARAMETER_VALUE` naming the
//! offending token and its position.

use kiln_wire::MlflowError;

/// What a key refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Attribute(String),
    Metric(String),
    Param(String),
    Tag(String),
    Dataset(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    List(Vec<String>),
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub key: Key,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub key: Key,
    pub ascending: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (may hold dots), or a quoted identifier.
    Word(String),
    /// `prefix.` followed by a quoted key.
    Prefixed(String, String),
    Quoted(String),
    /// A double-quoted string: a key or a value, by position.
    DoubleQuoted(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn err(input: &str, pos: usize, what: &str) -> MlflowError {
    MlflowError::invalid(format!("Invalid search expression '{input}': {what} at position {pos}"))
}

fn tokenize(input: &str) -> Result<Vec<(usize, Tok)>, MlflowError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let quoted = |i: &mut usize, q: char| -> Result<String, MlflowError> {
        let start = *i;
        *i += 1;
        let mut s = String::new();
        while *i < chars.len() {
            if chars[*i] == q {
                // A doubled quote inside is one quote.
                if *i + 1 < chars.len() && chars[*i + 1] == q {
                    s.push(q);
                    *i += 2;
                    continue;
                }
                *i += 1;
                return Ok(s);
            }
            s.push(chars[*i]);
            *i += 1;
        }
        Err(err(input, start, &format!("unterminated {q}")))
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((pos, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((pos, Tok::RParen));
                i += 1;
            }
            ',' => {
                out.push((pos, Tok::Comma));
                i += 1;
            }
            '\'' => out.push((pos, Tok::Quoted(quoted(&mut i, '\'')?))),
            '"' => out.push((pos, Tok::DoubleQuoted(quoted(&mut i, '"')?))),
            '`' => out.push((pos, Tok::Word(quoted(&mut i, '`')?))),
            '=' => {
                out.push((pos, Tok::Op("=")));
                i += 1;
            }
            '!' | '<' | '>' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    "!=" => "!=",
                    "<>" => "!=",
                    ">=" => ">=",
                    "<=" => "<=",
                    _ if c == '<' => "<",
                    _ if c == '>' => ">",
                    _ => return Err(err(input, pos, "unexpected `!`")),
                };
                i += if op.len() == 2 || two == "<>" { 2 } else { 1 };
                out.push((pos, Tok::Op(op)));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.') && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+')) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match text.parse::<f64>() {
                    Ok(v) => out.push((pos, Tok::Num(v))),
                    Err(_) => out.push((pos, Tok::Word(text))),
                }
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/') => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '-' | ':' | '/'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                // `tags.` followed by a quoted key: tags.`my key`, metrics."a b".
                if word.ends_with('.') && i < chars.len() && matches!(chars[i], '`' | '"') {
                    let q = chars[i];
                    let key = quoted(&mut i, q)?;
                    out.push((pos, Tok::Prefixed(word.trim_end_matches('.').to_owned(), key)));
                } else {
                    out.push((pos, Tok::Word(word)));
                }
            }
            other => return Err(err(input, pos, &format!("unexpected character `{other}`"))),
        }
    }
    Ok(out)
}

/// Splits `prefix.key`; no known prefix means an attribute.
fn key_of(prefix: Option<&str>, key: &str) -> Result<Key, String> {
    Ok(match prefix.map(str::to_ascii_lowercase).as_deref() {
        None => Key::Attribute(key.to_owned()),
        Some("metric" | "metrics") => Key::Metric(key.to_owned()),
        Some("param" | "params" | "parameter" | "parameters") => Key::Param(key.to_owned()),
        Some("tag" | "tags") => Key::Tag(key.to_owned()),
        Some("attribute" | "attributes" | "attr" | "run") => Key::Attribute(key.to_owned()),
        Some("dataset" | "datasets") => Key::Dataset(key.to_owned()),
        Some(other) => return Err(format!("invalid entity type '{other}'")),
    })
}

fn word_key(w: &str) -> Result<Key, String> {
    match w.split_once('.') {
        Some((p, k)) if !k.is_empty() => key_of(Some(p), k),
        _ => key_of(None, w),
    }
}

fn is_kw(t: Option<&(usize, Tok)>, kw: &str) -> bool {
    matches!(t, Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case(kw))
}

/// Parses a filter; empty or blank is no clauses.
///
/// # Errors
/// Syntax errors, OR/NOT/parentheses outside IN lists, unknown prefixes.
pub fn parse_filter(input: &str) -> Result<Vec<Clause>, MlflowError> {
    let toks = tokenize(input)?;
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| toks.get(i).map_or(input.chars().count(), |t| t.0);
    while i < toks.len() {
        let key = match &toks[i].1 {
            Tok::Word(w) if !["and", "or", "not"].iter().any(|k| w.eq_ignore_ascii_case(k)) => word_key(w),
            Tok::Prefixed(p, k) => key_of(Some(p), k),
            Tok::DoubleQuoted(k) => key_of(None, k),
            _ => return Err(err(input, at(i), "expected a key")),
        }
        .map_err(|m| err(input, at(i), &m))?;
        i += 1;
        let (op, value) = if is_kw(toks.get(i), "is") {
            i += 1;
            let not = is_kw(toks.get(i), "not");
            if not {
                i += 1;
            }
            if !is_kw(toks.get(i), "null") {
                return Err(err(input, at(i), "expected NULL after IS"));
            }
            i += 1;
            (if not { Op::IsNotNull } else { Op::IsNull }, Value::None)
        } else {
            let op = match toks.get(i).map(|t| &t.1) {
                Some(Tok::Op("=")) => Op::Eq,
                Some(Tok::Op("!=")) => Op::Ne,
                Some(Tok::Op(">")) => Op::Gt,
                Some(Tok::Op(">=")) => Op::Ge,
                Some(Tok::Op("<")) => Op::Lt,
                Some(Tok::Op("<=")) => Op::Le,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") && is_kw(toks.get(i + 1), "in") => {
                    i += 1;
                    Op::NotIn
                }
                _ => return Err(err(input, at(i), "expected a comparator")),
            };
            i += 1;
            let value = match (op, toks.get(i).map(|t| &t.1)) {
                (Op::In | Op::NotIn, Some(Tok::LParen)) => {
                    i += 1;
                    let mut items = Vec::new();
                    loop {
                        match toks.get(i).map(|t| &t.1) {
                            Some(Tok::Quoted(s) | Tok::DoubleQuoted(s)) => items.push(s.clone()),
                            _ => return Err(err(input, at(i), "expected a quoted string in the IN list")),
                        }
                        i += 1;
                        match toks.get(i).map(|t| &t.1) {
                            Some(Tok::Comma) => i += 1,
                            Some(Tok::RParen) => break,
                            _ => return Err(err(input, at(i), "expected `,` or `)`")),
                        }
                    }
                    Value::List(items)
                }
                (Op::In | Op::NotIn, _) => return Err(err(input, at(i), "expected `(` after IN")),
                (_, Some(Tok::Quoted(s) | Tok::DoubleQuoted(s))) => Value::Str(s.clone()),
                (_, Some(Tok::Num(v))) => Value::Num(*v),
                _ => return Err(err(input, at(i), "expected a value (a quoted string or a number)")),
            };
            i += 1;
            (op, value)
        };
        out.push(Clause { key, op, value });
        match toks.get(i) {
            None => break,
            Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case("and") => {
                i += 1;
                if i == toks.len() {
                    return Err(err(input, at(i), "expected a clause after AND"));
                }
            }
            Some((p, Tok::Word(w))) if w.eq_ignore_ascii_case("or") => {
                return Err(err(input, *p, "OR is not supported"));
            }
            Some((p, _)) => return Err(err(input, *p, "expected AND")),
        }
    }
    Ok(out)
}

/// Parses one `order_by` entry: `<key> [ASC|DESC]`.
///
/// # Errors
/// More than two tokens, an unknown direction, an invalid key.
pub fn parse_order_by(input: &str) -> Result<OrderBy, MlflowError> {
    let toks = tokenize(input)?;
    let key = match toks.first().map(|t| &t.1) {
        Some(Tok::Word(w)) => word_key(w),
        Some(Tok::Prefixed(p, k)) => key_of(Some(p), k),
        Some(Tok::DoubleQuoted(k)) => key_of(None, k),
        _ => return Err(err(input, 0, "expected a key")),
    }
    .map_err(|m| err(input, 0, &m))?;
    let ascending = match toks.get(1).map(|t| &t.1) {
        None => true,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("asc") => true,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("desc") => false,
        Some(_) => return Err(err(input, toks[1].0, "expected ASC or DESC")),
    };
    if toks.len() > 2 {
        return Err(err(input, toks[2].0, "unexpected text after the direction"));
    }
    Ok(OrderBy { key, ascending })
}

/// A value bound into compiled SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Str(String),
    F64(f64),
    I64(i64),
}

/// SQL with `?` placeholders and the values for them, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

fn invalid(msg: String) -> MlflowError {
    MlflowError::invalid(msg)
}

/// A run attribute's column and whether it is numeric.
fn run_attribute(name: &str) -> Result<(&'static str, bool), MlflowError> {
    Ok(match name {
        "run_id" => ("r.run_uuid", false),
        "run_name" | "run name" | "Run name" | "Run Name" => ("r.name", false),
        "user_id" => ("r.user_id", false),
        "status" => ("r.status", false),
        "artifact_uri" => ("r.artifact_uri", false),
        "lifecycle_stage" => ("r.lifecycle_stage", false),
        "start_time" | "created" | "Created" => ("r.start_time", true),
        "end_time" => ("r.end_time", true),
        other => {
            return Err(invalid(format!(
                "Invalid attribute key '{other}' specified. Valid keys are: run_id, run_name, user_id, status, artifact_uri, start_time, end_time"
            )));
        }
    })
}

pub(crate) fn comparison(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        _ => "=",
    }
}

/// `col <op> ?` for a string comparison (LIKE case-sensitive, ILIKE by lowering both sides).
pub(crate) fn string_predicate(
    col: &str,
    op: Op,
    value: &Value,
    binds: &mut Vec<Bind>,
    what: &str,
) -> Result<String, MlflowError> {
    match (op, value) {
        (Op::Eq | Op::Ne, Value::Str(s)) => {
            binds.push(Bind::Str(s.clone()));
            Ok(format!("{col} {} ?", comparison(op)))
        }
        (Op::Like, Value::Str(s)) => {
            binds.push(Bind::Str(s.clone()));
            Ok(format!("{col} LIKE ?"))
        }
        (Op::ILike, Value::Str(s)) => {
            binds.push(Bind::Str(s.clone()));
            Ok(format!("LOWER({col}) LIKE LOWER(?)"))
        }
        (Op::In | Op::NotIn, Value::List(items)) => {
            binds.extend(items.iter().cloned().map(Bind::Str));
            let marks = crate::marks(items.len());
            Ok(format!("{col} {} ({marks})", if op == Op::In { "IN" } else { "NOT IN" }))
        }
        _ => Err(invalid(format!("Invalid comparison for {what}: it takes =, !=, LIKE or ILIKE with a quoted string"))),
    }
}

/// Compiles run filter clauses to a `WHERE` fragment (joined with AND; empty: `1 = 1`) over
/// `runs r`.
///
/// # Errors
/// A comparator or value the key does not take, an unknown attribute, datasets (not built yet).
pub fn compile_run_filter(clauses: &[Clause]) -> Result<Sql, MlflowError> {
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    for c in clauses {
        let part = match &c.key {
            Key::Attribute(name) => {
                let (col, numeric) = run_attribute(name)?;
                if numeric {
                    let Value::Num(v) = c.value else {
                        return Err(invalid(format!("Invalid value for attribute '{name}': expected a number")));
                    };
                    if matches!(c.op, Op::Like | Op::ILike | Op::In | Op::NotIn | Op::IsNull | Op::IsNotNull) {
                        return Err(invalid(format!("Invalid comparator for numeric attribute '{name}'")));
                    }
                    binds.push(Bind::F64(v));
                    format!("{col} {} ?", comparison(c.op))
                } else {
                    if matches!(c.op, Op::In | Op::NotIn) && name != "run_id" {
                        return Err(invalid(format!("IN is only supported for run_id, not '{name}'")));
                    }
                    string_predicate(col, c.op, &c.value, &mut binds, &format!("attribute '{name}'"))?
                }
            }
            Key::Metric(k) => {
                let cmp = metric_comparison(k, c, &mut binds)?;
                format!(
                    "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.metric_key = ? AND m.is_nan = 0 AND m.metric_value {cmp} ?)"
                )
            }
            Key::Param(k) | Key::Tag(k) => {
                let (table, kcol, vcol) = if matches!(c.key, Key::Param(_)) {
                    ("params", "param_key", "param_value")
                } else {
                    ("tags", "tag_key", "tag_value")
                };
                binds.push(Bind::Str(k.clone()));
                match c.op {
                    Op::IsNull => {
                        format!("NOT EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.{kcol} = ?)")
                    }
                    Op::IsNotNull => {
                        format!("EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.{kcol} = ?)")
                    }
                    Op::In | Op::NotIn | Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                        return Err(invalid(format!(
                            "Invalid comparator for '{k}': params and tags take =, !=, LIKE, ILIKE, IS NULL"
                        )));
                    }
                    _ => {
                        let pred =
                            string_predicate(&format!("x.{vcol}"), c.op, &c.value, &mut binds, &format!("'{k}'"))?;
                        format!(
                            "EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.{kcol} = ? AND {pred})"
                        )
                    }
                }
            }
            Key::Dataset(_) => {
                return Err(MlflowError::new(
                    kiln_wire::ErrorCode::NotImplemented,
                    "dataset filters are not implemented by kiln server yet",
                ));
            }
        };
        parts.push(part);
    }
    Ok(Sql { text: if parts.is_empty() { "1 = 1".to_owned() } else { parts.join(" AND ") }, binds })
}

/// Compiles run `order_by` entries to LEFT JOINs (bound first) and ORDER BY terms. Missing
/// values sort last in both directions; NaN metrics after numbers. `start_time DESC` is added
/// unless ordered by it, then `run_uuid` as the final tie-break.
///
/// # Errors
/// An unknown attribute or the same key twice.
pub fn compile_run_order(entries: &[OrderBy]) -> Result<(Sql, String), MlflowError> {
    let mut joins = Sql::default();
    let mut terms = Vec::new();
    let mut seen: Vec<&Key> = Vec::new();
    let mut by_start = false;
    for (n, o) in entries.iter().enumerate() {
        if seen.contains(&&o.key) {
            return Err(invalid(format!("order_by contains the same key twice: {:?}", o.key)));
        }
        seen.push(&o.key);
        let dir = if o.ascending { "ASC" } else { "DESC" };
        match &o.key {
            Key::Attribute(name) => {
                let (col, _) = run_attribute(name)?;
                by_start |= col == "r.start_time";
                terms.push(format!("CASE WHEN {col} IS NULL THEN 1 ELSE 0 END, {col} {dir}"));
            }
            Key::Metric(k) => {
                joins.text.push_str(&format!(
                    " LEFT JOIN latest_metrics o{n} ON o{n}.run_uuid = r.run_uuid AND o{n}.metric_key = ?"
                ));
                joins.binds.push(Bind::Str(k.clone()));
                terms.push(format!(
                    "CASE WHEN o{n}.run_uuid IS NULL THEN 2 WHEN o{n}.is_nan = 1 THEN 1 ELSE 0 END, o{n}.metric_value {dir}"
                ));
            }
            Key::Param(k) | Key::Tag(k) => {
                let (table, kcol, vcol) = if matches!(o.key, Key::Param(_)) {
                    ("params", "param_key", "param_value")
                } else {
                    ("tags", "tag_key", "tag_value")
                };
                joins
                    .text
                    .push_str(&format!(" LEFT JOIN {table} o{n} ON o{n}.run_uuid = r.run_uuid AND o{n}.{kcol} = ?"));
                joins.binds.push(Bind::Str(k.clone()));
                terms.push(format!("CASE WHEN o{n}.run_uuid IS NULL THEN 1 ELSE 0 END, o{n}.{vcol} {dir}"));
            }
            Key::Dataset(_) => return Err(invalid("order_by on datasets is not supported".to_owned())),
        }
    }
    if !by_start {
        terms.push("r.start_time DESC".to_owned());
    }
    terms.push("r.run_uuid ASC".to_owned());
    Ok((joins, terms.join(", ")))
}

/// Compiles experiment filter clauses to a `WHERE` fragment over `experiments e`: `name`,
/// `experiment_id`, `creation_time`, `last_update_time` and `tags.*`.
///
/// # Errors
/// A key, comparator or value experiments do not take.
pub fn compile_experiment_filter(clauses: &[Clause]) -> Result<Sql, MlflowError> {
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    for c in clauses {
        let part = match &c.key {
            Key::Attribute(a) if a == "name" => {
                string_predicate("e.name", c.op, &c.value, &mut binds, "attribute 'name'")?
            }
            Key::Attribute(a) if a == "experiment_id" => {
                // Ids are numbers in the database and strings on the wire.
                let id = |s: &str| s.parse::<i64>().unwrap_or(-1);
                match (c.op, &c.value) {
                    (Op::Eq | Op::Ne, Value::Str(s)) => {
                        binds.push(Bind::I64(id(s)));
                        format!("e.experiment_id {} ?", comparison(c.op))
                    }
                    (Op::In | Op::NotIn, Value::List(items)) => {
                        binds.extend(items.iter().map(|s| Bind::I64(id(s))));
                        let marks = crate::marks(items.len());
                        format!("e.experiment_id {} ({marks})", if c.op == Op::In { "IN" } else { "NOT IN" })
                    }
                    _ => return Err(invalid("experiment_id takes =, !=, IN or NOT IN with quoted ids".to_owned())),
                }
            }
            Key::Attribute(a) if a == "creation_time" || a == "last_update_time" => {
                let Value::Num(v) = c.value else {
                    return Err(invalid(format!("Invalid value for attribute '{a}': expected a number")));
                };
                if matches!(c.op, Op::Like | Op::ILike | Op::In | Op::NotIn | Op::IsNull | Op::IsNotNull) {
                    return Err(invalid(format!("Invalid comparator for numeric attribute '{a}'")));
                }
                binds.push(Bind::F64(v));
                format!("e.{a} {} ?", comparison(c.op))
            }
            Key::Tag(k) => {
                binds.push(Bind::Str(k.clone()));
                let base = "SELECT 1 FROM experiment_tags x WHERE x.experiment_id = e.experiment_id AND x.tag_key = ?";
                match c.op {
                    Op::IsNull => format!("NOT EXISTS ({base})"),
                    Op::IsNotNull => format!("EXISTS ({base})"),
                    Op::Eq | Op::Ne | Op::Like | Op::ILike => {
                        let pred = string_predicate("x.tag_value", c.op, &c.value, &mut binds, &format!("tag '{k}'"))?;
                        format!("EXISTS ({base} AND {pred})")
                    }
                    _ => return Err(invalid(format!("Invalid comparator for tag '{k}'"))),
                }
            }
            other => {
                return Err(invalid(format!(
                    "Invalid key {other:?} for experiments: they take name, experiment_id, creation_time, last_update_time and tags.*"
                )));
            }
        };
        parts.push(part);
    }
    Ok(Sql { text: if parts.is_empty() { "1 = 1".to_owned() } else { parts.join(" AND ") }, binds })
}

/// A `metrics.<key> <op> <number>` clause, for runs and logged models alike: checks the value
/// and comparator, binds the key then the number, and returns the SQL comparator.
fn metric_comparison(key: &str, c: &Clause, binds: &mut Vec<Bind>) -> Result<&'static str, MlflowError> {
    let Value::Num(v) = c.value else {
        return Err(invalid(format!("Invalid value for metric '{key}': expected a number (unquoted)")));
    };
    if matches!(c.op, Op::Like | Op::ILike | Op::In | Op::NotIn | Op::IsNull | Op::IsNotNull) {
        return Err(invalid(format!("Invalid comparator for metric '{key}'")));
    }
    binds.push(Bind::Str(key.to_owned()));
    binds.push(Bind::F64(v));
    Ok(comparison(c.op))
}

/// A dataset a logged-model search narrows metric filters to (`datasets` in the request).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DatasetRef {
    pub dataset_name: String,
    pub dataset_digest: Option<String>,
}

/// One `order_by` entry of `logged-models/search`: an object, not the string grammar.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ModelOrder {
    pub field_name: String,
    #[serde(default = "ascending_default")]
    pub ascending: bool,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

fn ascending_default() -> bool {
    true
}

/// The `logged_models` column of an attribute name or alias.
fn logged_model_column(name: &str) -> Option<&'static str> {
    Some(match name {
        "name" => "m.name",
        "model_id" => "m.model_id",
        "model_type" => "m.model_type",
        "status" => "m.status",
        "source_run_id" => "m.source_run_id",
        "experiment_id" => "m.experiment_id",
        "creation_timestamp" | "creation_time" | "creation_timestamp_ms" => "m.creation_timestamp_ms",
        "last_updated_timestamp" | "last_updated_time" | "last_updated_timestamp_ms" => "m.last_updated_timestamp_ms",
        _ => return None,
    })
}

/// `ORDER BY` terms for logged models, as MLflow orders them: each entry nulls last, a metric
/// by the model's latest value of it (newest timestamp, then step; optionally on one dataset),
/// then `creation_timestamp DESC` and `model_id ASC` unless named.
///
/// # Errors
/// An unknown field, or an entity other than `metrics.`.
pub fn compile_logged_model_order(entries: &[ModelOrder]) -> Result<Sql, MlflowError> {
    let mut terms = Vec::new();
    let mut binds = Vec::new();
    let (mut has_created, mut has_id) = (false, false);
    for o in entries {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        let expr = if let Some(metric) = o.field_name.strip_prefix("metrics.") {
            let mut sql = "(SELECT x.metric_value FROM logged_model_metrics x WHERE x.model_id = m.model_id \
                           AND x.metric_name = ? AND x.is_nan = 0"
                .to_owned();
            let mut these = vec![Bind::Str(metric.to_owned())];
            if let Some(n) = &o.dataset_name {
                sql.push_str(" AND x.dataset_name = ?");
                these.push(Bind::Str(n.clone()));
            }
            if let Some(d) = &o.dataset_digest {
                sql.push_str(" AND x.dataset_digest = ?");
                these.push(Bind::Str(d.clone()));
            }
            sql.push_str(" ORDER BY x.metric_timestamp_ms DESC, x.metric_step DESC, x.run_id ASC LIMIT 1)");
            // The expression appears twice (nulls-last flag, then the value): bind it twice.
            binds.extend(these.iter().cloned());
            binds.extend(these);
            sql
        } else if o.field_name.contains('.') {
            return Err(invalid(format!("Invalid order by field name: {}. Only metrics are supported.", o.field_name)));
        } else {
            let col = logged_model_column(&o.field_name)
                .ok_or_else(|| invalid(format!("Invalid order by field name: {}", o.field_name)))?;
            has_created |= col == "m.creation_timestamp_ms";
            has_id |= col == "m.model_id";
            col.to_owned()
        };
        terms.push(format!("CASE WHEN {expr} IS NULL THEN 1 ELSE 0 END, {expr} {dir}"));
    }
    if !has_created {
        terms.push("m.creation_timestamp_ms DESC".to_owned());
    }
    if !has_id {
        terms.push("m.model_id ASC".to_owned());
    }
    Ok(Sql { text: terms.join(", "), binds })
}

/// Compiles logged-model filter clauses to a `WHERE` fragment over `logged_models m`. A metric
/// clause matches a model with any point of that metric satisfying it (on one of `datasets`,
/// when given), as MLflow does.
///
/// # Errors
/// A key, comparator or value logged models do not take.
pub fn compile_logged_model_filter(clauses: &[Clause], datasets: &[DatasetRef]) -> Result<Sql, MlflowError> {
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    for c in clauses {
        let part = match &c.key {
            Key::Attribute(a) => match a.as_str() {
                "name" | "model_id" | "model_type" | "status" | "source_run_id" => {
                    string_predicate(&format!("m.{a}"), c.op, &c.value, &mut binds, &format!("attribute '{a}'"))?
                }
                "creation_timestamp" | "creation_time" | "last_updated_timestamp" | "last_updated_time" => {
                    let col = if a.starts_with("creation") {
                        "m.creation_timestamp_ms"
                    } else {
                        "m.last_updated_timestamp_ms"
                    };
                    let Value::Num(v) = c.value else {
                        return Err(invalid(format!("Invalid value for attribute '{a}': expected a number")));
                    };
                    if matches!(c.op, Op::Like | Op::ILike | Op::In | Op::NotIn | Op::IsNull | Op::IsNotNull) {
                        return Err(invalid(format!("Invalid comparator for numeric attribute '{a}'")));
                    }
                    binds.push(Bind::F64(v));
                    format!("{col} {} ?", comparison(c.op))
                }
                other => return Err(invalid(format!("Invalid attribute key '{other}' for logged models"))),
            },
            Key::Tag(k) | Key::Param(k) => {
                let (table, kcol, vcol) = if matches!(c.key, Key::Tag(_)) {
                    ("logged_model_tags", "tag_key", "tag_value")
                } else {
                    ("logged_model_params", "param_key", "param_value")
                };
                binds.push(Bind::Str(k.clone()));
                let pred = string_predicate(&format!("x.{vcol}"), c.op, &c.value, &mut binds, &format!("'{k}'"))?;
                format!("EXISTS (SELECT 1 FROM {table} x WHERE x.model_id = m.model_id AND x.{kcol} = ? AND {pred})")
            }
            Key::Metric(k) => {
                let cmp = metric_comparison(k, c, &mut binds)?;
                let mut ds = Vec::new();
                for d in datasets {
                    binds.push(Bind::Str(d.dataset_name.clone()));
                    match &d.dataset_digest {
                        Some(digest) => {
                            binds.push(Bind::Str(digest.clone()));
                            ds.push("(x.dataset_name = ? AND x.dataset_digest = ?)");
                        }
                        None => ds.push("x.dataset_name = ?"),
                    }
                }
                let on_datasets = if ds.is_empty() { String::new() } else { format!(" AND ({})", ds.join(" OR ")) };
                format!(
                    "EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model_id = m.model_id AND x.metric_name = ? \
                     AND x.is_nan = 0 AND x.metric_value {cmp} ?{on_datasets})"
                )
            }
            Key::Dataset(_) => {
                return Err(invalid(
                    "Invalid filter: logged models are narrowed to datasets with the request's `datasets` field"
                        .to_owned(),
                ));
            }
        };
        parts.push(part);
    }
    Ok(Sql { text: if parts.is_empty() { "1 = 1".to_owned() } else { parts.join(" AND ") }, binds })
}

/// ORDER BY terms for experiments. Default `creation_time DESC, experiment_id ASC`; a caller's
/// order gets `experiment_id DESC` as tie-break unless it names `experiment_id` itself.
///
/// # Errors
/// An unknown key or the same key twice.
pub fn compile_experiment_order(entries: &[OrderBy]) -> Result<String, MlflowError> {
    if entries.is_empty() {
        return Ok("e.creation_time DESC, e.experiment_id ASC".to_owned());
    }
    let mut terms = Vec::new();
    let mut seen = Vec::new();
    for o in entries {
        let Key::Attribute(a) = &o.key else {
            return Err(invalid(
                "experiments are ordered by name, experiment_id, creation_time or last_update_time".to_owned(),
            ));
        };
        if !["name", "experiment_id", "creation_time", "last_update_time"].contains(&a.as_str()) {
            return Err(invalid(format!("Invalid order_by key '{a}' for experiments")));
        }
        if seen.contains(a) {
            return Err(invalid(format!("order_by contains the same key twice: {a}")));
        }
        seen.push(a.clone());
        terms.push(format!("e.{a} {}", if o.ascending { "ASC" } else { "DESC" }));
    }
    if !seen.iter().any(|a| a == "experiment_id") {
        terms.push("e.experiment_id DESC".to_owned());
    }
    Ok(terms.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mlflow_filters() {
        let c = parse_filter("metrics.acc > 0.5 and params.model = 'rf' AND tags.`my tag` LIKE 'x%'").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], Clause { key: Key::Metric("acc".into()), op: Op::Gt, value: Value::Num(0.5) });
        assert_eq!(c[1].key, Key::Param("model".into()));
        assert_eq!(c[2], Clause { key: Key::Tag("my tag".into()), op: Op::Like, value: Value::Str("x%".into()) });
        let c = parse_filter("tags.mlflow.parentRunId = 'abc' and attributes.run_id IN ('a', \"b\")").unwrap();
        assert_eq!(c[0].key, Key::Tag("mlflow.parentRunId".into()));
        assert_eq!(c[1].value, Value::List(vec!["a".into(), "b".into()]));
        let c =
            parse_filter("params.lr IS NOT NULL AND status != 'FAILED' AND metrics.\"my metric\" <= -1e-3").unwrap();
        assert_eq!(c[0].op, Op::IsNotNull);
        assert_eq!(c[2], Clause { key: Key::Metric("my metric".into()), op: Op::Le, value: Value::Num(-1e-3) });
        assert!(parse_filter("").unwrap().is_empty());
    }

    #[test]
    fn bad_filters_point_at_the_token() {
        for (f, want) in [
            ("metrics.acc > 0.5 OR params.a = 'b'", "OR is not supported at position 18"),
            ("metrics.acc >", "expected a value"),
            ("foo.bar = 'x'", "invalid entity type 'foo'"),
            ("params.a = 'unterminated", "unterminated '"),
            ("params.a 'x'", "expected a comparator at position 9"),
            ("params.a = 'x' AND", "expected a clause after AND"),
            ("run_id IN 'a'", "expected `(` after IN"),
        ] {
            let e = parse_filter(f).unwrap_err();
            assert!(e.message.contains(want), "{f}: {}", e.message);
        }
    }

    #[test]
    fn compiles_to_bound_sql() {
        let c = parse_filter("metrics.acc > 0.5 and params.model = 'rf'; DROP TABLE runs").unwrap_err();
        assert!(c.message.contains("unexpected character `;`"), "{}", c.message);
        let sql = compile_run_filter(&parse_filter("metrics.acc > 0.5 and params.model = 'it''s'").unwrap()).unwrap();
        assert!(!sql.text.contains("it's") && !sql.text.contains("0.5"), "{}", sql.text);
        assert_eq!(
            sql.binds,
            vec![Bind::Str("acc".into()), Bind::F64(0.5), Bind::Str("model".into()), Bind::Str("it's".into())]
        );
        assert!(compile_run_filter(&parse_filter("metrics.acc = 'high'").unwrap()).is_err());
        assert!(compile_run_filter(&parse_filter("params.a > 'b'").unwrap()).is_err());
        assert!(compile_run_filter(&parse_filter("nope = 'x'").unwrap()).is_err());
        assert!(compile_run_filter(&parse_filter("status IN ('a')").unwrap()).is_err());
    }

    #[test]
    fn experiment_filters() {
        let sql = compile_experiment_filter(
            &parse_filter("name LIKE 'kiln%' AND tags.team = 'ml' AND experiment_id IN ('1', '2')").unwrap(),
        )
        .unwrap();
        assert_eq!(sql.binds.len(), 5);
        assert!(compile_experiment_filter(&parse_filter("metrics.a > 1").unwrap()).is_err());
        assert_eq!(compile_experiment_order(&[]).unwrap(), "e.creation_time DESC, e.experiment_id ASC");
        assert_eq!(
            compile_experiment_order(&[parse_order_by("name").unwrap()]).unwrap(),
            "e.name ASC, e.experiment_id DESC"
        );
        assert!(compile_experiment_order(&[parse_order_by("params.x").unwrap()]).is_err());
    }

    #[test]
    fn order_by_entries() {
        assert_eq!(
            parse_order_by("metrics.acc DESC").unwrap(),
            OrderBy { key: Key::Metric("acc".into()), ascending: false }
        );
        assert_eq!(parse_order_by("start_time").unwrap().key, Key::Attribute("start_time".into()));
        assert!(parse_order_by("metrics.acc DOWN").is_err());
        assert!(parse_order_by("a b c").is_err());
        let twice = [parse_order_by("params.a").unwrap(), parse_order_by("params.a DESC").unwrap()];
        assert!(compile_run_order(&twice).is_err());
    }
}
