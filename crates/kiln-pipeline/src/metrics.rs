//! `metrics show` (`shared/spec/pipelines.md` §9): the pipeline's metrics files (stages'
//! `metrics:` outputs and top-level `metrics:`), flattened to dotted keys, as a table in DVC's
//! plain and markdown layouts, or DVC's JSON.

use crate::compare::flatten_docs;
use crate::dvcyaml::Pipeline;
use crate::repro::norm;
use crate::value::{Value, python_float, python_round};

/// The metrics files, relative to the pipeline's directory, each once, in declaration order.
#[must_use]
pub fn files(pipeline: &Pipeline) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let declared = pipeline
        .stages
        .iter()
        .flat_map(|s| s.outs.iter().filter(|o| o.metric).map(move |o| norm(&s.wdir, &o.path)))
        .chain(pipeline.metrics.iter().map(|m| norm(".", m)));
    for f in declared {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// The table: a `Path` column, then every flattened key (sorted); `-` where a file lacks one.
/// Floats are rounded to 5 digits, as DVC's default `--precision`.
#[must_use]
pub fn table(docs: &[(String, Value)]) -> (Vec<String>, Vec<Vec<String>>) {
    let flat = flatten_docs(docs);
    let mut keys: Vec<String> = flat.iter().flat_map(|(_, kv)| kv.iter().map(|(k, _)| k.clone())).collect();
    keys.sort();
    keys.dedup();
    let mut header = vec!["Path".to_owned()];
    header.extend(keys.iter().cloned());
    let rows = flat
        .iter()
        .map(|(f, kv)| {
            let mut row = vec![f.clone()];
            row.extend(keys.iter().map(|k| match kv.iter().find(|(x, _)| x == k) {
                Some((_, Value::Float(x))) => python_float(python_round(*x, 5)),
                Some((_, v)) => v.python_display(),
                None => "-".to_owned(),
            }));
            row
        })
        .collect();
    (header, rows)
}

/// Column widths as python-tabulate computes them with DVC's settings: the widest cell, and at
/// least the header plus 2.
fn widths(header: &[String], rows: &[Vec<String>]) -> Vec<usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| rows.iter().map(|r| r[i].chars().count()).chain([h.chars().count() + 2]).max().unwrap_or(0))
        .collect()
}

/// tabulate's `plain` format: left-aligned columns two spaces apart.
#[must_use]
pub fn plain(header: &[String], rows: &[Vec<String>]) -> String {
    let w = widths(header, rows);
    let line = |cells: &[String]| -> String {
        let s: Vec<String> = cells.iter().zip(&w).map(|(c, w)| format!("{c:<w$}")).collect();
        s.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// tabulate's `github` format (`--md`).
#[must_use]
pub fn markdown(header: &[String], rows: &[Vec<String>]) -> String {
    let w = widths(header, rows);
    let line = |cells: &[String]| -> String {
        let s: Vec<String> = cells.iter().zip(&w).map(|(c, w)| format!(" {c:<w$} ")).collect();
        format!("|{}|\n", s.join("|"))
    };
    let mut out = line(header);
    out.push_str(&format!("|{}|\n", w.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|")));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// DVC's `metrics show --json`: `{"": {"data": {file: {"data": …}}}}` (`""`: the workspace).
#[must_use]
pub fn json(docs: &[(String, Value)]) -> String {
    let data = docs.iter().map(|(f, v)| (f.clone(), Value::Map(vec![("data".to_owned(), v.clone())]))).collect();
    Value::Map(vec![(String::new(), Value::Map(vec![("data".to_owned(), Value::Map(data))]))]).python_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_yaml;

    #[test]
    fn tables_like_dvc() {
        let doc = from_yaml(
            r#"{"accuracy": 0.675, "n_test": 40, "spam": {"f1": 0.381, "precision": 0.5714, "recall": 0.2857}}"#,
        )
        .unwrap();
        let (h, rows) = table(&[("metrics.json".into(), doc)]);
        assert_eq!(
            plain(&h, &rows),
            "Path          accuracy    n_test    spam.f1    spam.precision    spam.recall\nmetrics.json  0.675       40        0.381      0.5714            0.2857\n"
        );
        assert_eq!(
            markdown(&h, &rows),
            "| Path         | accuracy   | n_test   | spam.f1   | spam.precision   | spam.recall   |\n|--------------|------------|----------|-----------|------------------|---------------|\n| metrics.json | 0.675      | 40       | 0.381     | 0.5714           | 0.2857        |\n"
        );
    }
}
