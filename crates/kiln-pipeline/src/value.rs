//! A YAML value that keeps mappings in document order. `dvc.lock` stores a whole params
//! section as a sub-map "in file order", and `${…}` interpolation must render numbers the way
//! Python's `str()` does (`1.0` stays `1.0`), so neither a sorted map nor a float-only number
//! will do.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A loaded YAML/JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The entry `key` of a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A dotted path (`train.model.alpha`) into nested mappings.
    #[must_use]
    pub fn dotted(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(self, |v, k| v.get(k))
    }

    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as Python's `str()` renders a scalar (what `${…}` splices into a string).
    #[must_use]
    pub fn python_str(&self) -> Option<String> {
        Some(match self {
            Self::Null => "None".to_owned(),
            Self::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => python_float(*f),
            Self::Str(s) => s.clone(),
            Self::List(_) | Self::Map(_) => return None,
        })
    }

    /// A JSON rendering (for hashing and `--json` output); maps keep their order.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Int(i) => serde_json::Value::from(*i),
            Self::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Self::Str(s) => serde_json::Value::String(s.clone()),
            Self::List(l) => serde_json::Value::Array(l.iter().map(Self::to_json).collect()),
            Self::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

impl Value {
    /// Python's `str()` of the value as DVC's tables print it: `True`/`None`, floats as Python
    /// writes them, strings bare, lists and maps as their `repr` (`['the', 'a']`).
    #[must_use]
    pub fn python_display(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            other => other.python_repr(),
        }
    }

    /// The value as one YAML flow scalar or collection, as DVC's ruamel writes a value on its
    /// key's line (`0.1`, `true`, `null`, `'1'`, `[a, b]`, `{}`).
    #[must_use]
    pub fn yaml_flow(&self) -> String {
        let scalar = kiln_cache::dvcfile::yaml_scalar;
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => python_float(*f),
            Self::Str(s) => scalar(s),
            Self::List(l) => format!("[{}]", l.iter().map(Self::yaml_flow).collect::<Vec<_>>().join(", ")),
            Self::Map(m) => format!(
                "{{{}}}",
                m.iter().map(|(k, v)| format!("{}: {}", scalar(k), v.yaml_flow())).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Python's `repr()` of the value.
    #[must_use]
    pub fn python_repr(&self) -> String {
        let mut out = String::new();
        self.repr_into(&mut out);
        out
    }

    fn repr_into(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("None"),
            Self::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Self::Int(i) => out.push_str(&i.to_string()),
            Self::Float(f) => out.push_str(&python_float(*f)),
            Self::Str(s) => python_str_repr(s, out),
            Self::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.repr_into(out);
                }
                out.push(']');
            }
            Self::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    python_str_repr(k, out);
                    out.push_str(": ");
                    v.repr_into(out);
                }
                out.push('}');
            }
        }
    }

    /// The value as Python's `json.dumps` writes it (`", "` and `": "` separators, ASCII only,
    /// maps in their order): DVC's `--json` output.
    #[must_use]
    pub fn python_json(&self) -> String {
        let mut out = String::new();
        self.json_into(&mut out, false, &[]);
        out
    }

    /// `json.dumps(v, sort_keys=True)` leaving out the map keys `skip` at every level (the
    /// run-cache hashes entries so, without `size` and `nfiles`).
    #[must_use]
    pub fn python_json_sorted(&self, skip: &[&str]) -> String {
        let mut out = String::new();
        self.json_into(&mut out, true, skip);
        out
    }

    fn json_into(&self, out: &mut String, sort: bool, skip: &[&str]) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Int(i) => out.push_str(&i.to_string()),
            Self::Float(f) if f.is_nan() => out.push_str("NaN"),
            Self::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" }),
            Self::Float(f) => out.push_str(&python_float(*f)),
            Self::Str(s) => kiln_cache::hash::python_json_string(s, out),
            Self::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.json_into(out, sort, skip);
                }
                out.push(']');
            }
            Self::Map(m) => {
                let mut items: Vec<&(String, Value)> = m.iter().filter(|(k, _)| !skip.contains(&k.as_str())).collect();
                if sort {
                    items.sort_by(|a, b| a.0.cmp(&b.0));
                }
                out.push('{');
                for (i, (k, v)) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    kiln_cache::hash::python_json_string(k, out);
                    out.push_str(": ");
                    v.json_into(out, sort, skip);
                }
                out.push('}');
            }
        }
    }
}

/// Python's `repr()` of a string: single quotes unless the text has a `'` and no `"`.
fn python_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `round(f, digits)` (correctly rounded, ties to even on the exact binary value, as
/// Rust's fixed-precision formatting also does).
#[must_use]
pub fn python_round(f: f64, digits: usize) -> f64 {
    if !f.is_finite() {
        return f;
    }
    format!("{f:.digits$}").parse().unwrap_or(f)
}

/// Python's `repr`/`str` of a float: shortest round-trip digits, always with a `.` or an
/// exponent (`1.0`, `0.25`, `1e-05`), `inf`/`nan` spelled as Python does.
#[must_use]
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Python switches to exponent notation outside [1e-4, 1e16): `1e-05`, `1e+16`.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        return format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
                i64::try_from(u).map(Value::Int).map_err(|_| E::custom(format!("integer {u} is too large")))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
                Ok(Value::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Value, E> {
                Ok(Value::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Value::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut m: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = a.next_entry::<KeyString, Value>()? {
                    if m.iter().any(|(e, _)| *e == k.0) {
                        return Err(de::Error::custom(format!("duplicate key `{}`", k.0)));
                    }
                    m.push((k.0, v));
                }
                Ok(Value::Map(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping key: YAML allows numbers and booleans as keys; DVC treats them as their text.
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Str(s) => Ok(Self(s)),
            other => other.python_str().map(Self).ok_or_else(|| de::Error::custom("a mapping key must be a scalar")),
        }
    }
}

/// Parses YAML (1.2 booleans: only `true`/`false`, as DVC's ruamel reads them).
///
/// # Errors
/// Invalid YAML, with its line and column.
pub fn from_yaml(text: &str) -> Result<Value, serde_saphyr::Error> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str_with_options(text, serde_saphyr::options! { strict_booleans: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_types() {
        let v = from_yaml("split:\n  test_ratio: 0.25\n  seed: 42\nflag: true\nname: x\nlr: 1.0\n").unwrap();
        let Value::Map(m) = &v else { panic!() };
        assert_eq!(m.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["split", "flag", "name", "lr"]);
        assert_eq!(v.dotted("split.seed"), Some(&Value::Int(42)));
        assert_eq!(v.dotted("lr").unwrap().python_str().unwrap(), "1.0");
        assert_eq!(v.get("flag"), Some(&Value::Bool(true)));
        assert!(from_yaml("a: 1\na: 2\n").is_err());
    }

    #[test]
    fn floats_like_python() {
        for (f, s) in
            [(1.0, "1.0"), (0.25, "0.25"), (1e-5, "1e-05"), (1e16, "1e+16"), (123.456, "123.456"), (0.0, "0.0")]
        {
            assert_eq!(python_float(f), s);
        }
    }

    #[test]
    fn reprs_and_json_like_python() {
        let v = from_yaml("a: [the, \"it's\", 1, 2.5, true, null]\nb: {c: 'x\"y'}\nd: é\n").unwrap();
        assert_eq!(v.python_repr(), r#"{'a': ['the', "it's", 1, 2.5, True, None], 'b': {'c': 'x"y'}, 'd': 'é'}"#);
        assert_eq!(v.python_json(), r#"{"a": ["the", "it's", 1, 2.5, true, null], "b": {"c": "x\"y"}, "d": "\u00e9"}"#);
        assert_eq!(Value::Bool(false).python_display(), "False");
        assert_eq!(Value::Str("a".into()).python_display(), "a");
        assert_eq!(python_round(0.712_345_678_9, 5), 0.71235);
        assert_eq!(python_round(0.028_599_999_999_999_96, 5), 0.0286);
        assert_eq!(python_round(2.675, 2), 2.67);
    }

    #[test]
    fn toml_params_keep_types_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("params.toml");
        std::fs::write(&f, "title = \"x\"\n[train]\nlr = 1.0\nepochs = 10\nbig = 1e20\nflag = true\n[train.sub]\nz = 0.5\nb = 2\n[[items]]\nn = 1\n").unwrap();
        let v = crate::load_params_file(&f).unwrap();
        assert_eq!(
            v.python_repr(),
            "{'title': 'x', 'train': {'lr': 1.0, 'epochs': 10, 'big': 1e+20, 'flag': True, 'sub': {'z': 0.5, 'b': 2}}, 'items': [{'n': 1}]}"
        );
        std::fs::write(&f, "[a]\nd = 1979-05-27\n").unwrap();
        let e = crate::load_params_file(&f).unwrap_err().to_string();
        assert!(e.contains("params.toml") && e.contains("'date'") && e.contains("a.d"), "{e}");
        let py = dir.path().join("params.py");
        std::fs::write(&py, "LR = 1\n").unwrap();
        assert_eq!(crate::load_params_file(&py).unwrap(), Value::Map(vec![("LR".into(), Value::Int(1))]));
        std::fs::write(&py, "LR = (1,\n").unwrap();
        assert!(crate::load_params_file(&py).unwrap_err().to_string().contains("params.py"));
    }
}
