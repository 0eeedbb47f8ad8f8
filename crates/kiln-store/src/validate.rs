//! MLflow's rules for keys, values and batch sizes (`shared/spec/mlflow-compat.md` §2), each
//! answered with 400 `INVALID_PARAMETER_VALUE` and a message naming the offending item.

use kiln_wire::{KeyValue, Metric, MlflowError};

pub const MAX_PARAM_VALUE: usize = 6000;
pub const MAX_TAG_VALUE: usize = 8000;
pub const MAX_EXPERIMENT_TAG_VALUE: usize = 20_000;
pub const MAX_KEY: usize = 250;
pub const MAX_EXPERIMENT_NAME: usize = 500;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A param or metric key: word characters, `-`, `.`, space, `/`, `:`, at most 250, and a
/// normalised relative path (`a//b`, `a/./b`, `../x`, `/x`, trailing `/` are refused).
///
/// # Errors
/// A key that breaks a rule.
pub fn key(kind: &str, key: &str) -> Result<(), MlflowError> {
    if key.is_empty() {
        return Err(MlflowError::invalid(format!("Missing value for required parameter 'key' ({kind})")));
    }
    if chars(key) > MAX_KEY {
        return Err(MlflowError::invalid(format!(
            "{kind} key '{}…' had length {}, which exceeded length limit of {MAX_KEY}",
            key.chars().take(40).collect::<String>(),
            chars(key)
        )));
    }
    if !key.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':')) {
        return Err(MlflowError::invalid(format!(
            "Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons(:) and slashes (/)."
        )));
    }
    let normalized = key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if normalized || key == "." {
        return Err(MlflowError::invalid(format!(
            "Invalid {kind} name: '{key}'. Names cannot contain empty path segments, '.' or '..', or start or end with '/'."
        )));
    }
    Ok(())
}

/// # Errors
/// A bad key, or a value longer than MLflow allows.
pub fn param(p: &KeyValue) -> Result<(), MlflowError> {
    key("param", &p.key)?;
    if chars(&p.value) > MAX_PARAM_VALUE {
        return Err(MlflowError::invalid(format!(
            "Param value '{}…' had length {}, which exceeded length limit of {MAX_PARAM_VALUE}",
            p.value.chars().take(40).collect::<String>(),
            chars(&p.value)
        )));
    }
    Ok(())
}

/// # Errors
/// A bad key.
pub fn metric(m: &Metric) -> Result<(), MlflowError> {
    key("metric", &m.key)
}

/// # Errors
/// An empty or long key, or a long value.
pub fn run_tag(t: &KeyValue) -> Result<(), MlflowError> {
    if t.key.is_empty() || chars(&t.key) > MAX_KEY {
        return Err(MlflowError::invalid(format!("Tag key '{}' must be 1 to {MAX_KEY} characters", t.key)));
    }
    if chars(&t.value) > MAX_TAG_VALUE {
        return Err(MlflowError::invalid(format!(
            "Tag value for '{}' had length {}, which exceeded length limit of {MAX_TAG_VALUE}",
            t.key,
            chars(&t.value)
        )));
    }
    Ok(())
}

/// # Errors
/// An empty or long key, or a long value.
pub fn experiment_tag(t: &KeyValue) -> Result<(), MlflowError> {
    if t.key.is_empty() || chars(&t.key) > MAX_KEY {
        return Err(MlflowError::invalid(format!("Tag key '{}' must be 1 to {MAX_KEY} characters", t.key)));
    }
    if chars(&t.value) > MAX_EXPERIMENT_TAG_VALUE {
        return Err(MlflowError::invalid(format!(
            "Tag value for '{}' had length {}, which exceeded length limit of {MAX_EXPERIMENT_TAG_VALUE}",
            t.key,
            chars(&t.value)
        )));
    }
    Ok(())
}

/// # Errors
/// An empty or long name.
pub fn experiment_name(name: &str) -> Result<(), MlflowError> {
    if name.is_empty() {
        return Err(MlflowError::invalid("Invalid experiment name: ''. Experiment name must not be empty."));
    }
    if chars(name) > MAX_EXPERIMENT_NAME {
        return Err(MlflowError::invalid(format!(
            "Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME}"
        )));
    }
    Ok(())
}

/// `log-batch` limits: ≤ 1000 metrics, ≤ 100 params, ≤ 100 tags, ≤ 1000 in all.
///
/// # Errors
/// A batch over a limit.
/// An experiment's `artifact_location`, as MLflow's server checks it and stricter where its
/// traversal CVEs were (CVE-2023-6831, CVE-2024-1483/-3848): not a `runs:` URI, no `#`
/// fragment, `;` params or `?` query, no `.`/`..` segment (also percent-encoded, once or
/// twice), no control characters, at most 2,048 characters.
///
/// # Errors
/// The first rule broken, naming the location.
pub fn artifact_location(loc: &str) -> Result<(), MlflowError> {
    if loc.starts_with("runs:") {
        return Err(MlflowError::invalid(format!("Artifact location cannot be a runs:/ URI. Given: '{loc}'")));
    }
    if loc.contains(['#', ';', '?']) {
        return Err(MlflowError::invalid("'artifact_location' URL can't include fragments, params or a query."));
    }
    if loc.chars().count() > 2048 {
        return Err(MlflowError::invalid(
            "Invalid artifact path length. The length of the artifact path cannot be greater than 2048 characters.",
        ));
    }
    let mut decoded = loc.to_owned();
    for _ in 0..3 {
        if decoded.chars().any(char::is_control) || decoded.split(['/', '\\']).any(|seg| matches!(seg, "." | "..")) {
            return Err(MlflowError::invalid(format!(
                "Invalid artifact location '{loc}': no '.' or '..' path segments or control characters"
            )));
        }
        decoded = percent_encoding::percent_decode_str(&decoded).decode_utf8_lossy().into_owned();
    }
    Ok(())
}

pub fn batch_limits(metrics: usize, params: usize, tags: usize) -> Result<(), MlflowError> {
    let over = |what: &str, n: usize, max: usize| {
        MlflowError::invalid(format!("A batch logging request can contain at most {max} {what}. Got {n} {what}."))
    };
    if metrics > 1000 {
        return Err(over("metrics", metrics, 1000));
    }
    if params > 100 {
        return Err(over("params", params, 100));
    }
    if tags > 100 {
        return Err(over("tags", tags, 100));
    }
    if metrics + params + tags > 1000 {
        return Err(over("entities", metrics + params + tags, 1000));
    }
    Ok(())
}

/// # Errors
/// `max_results` outside `1..=max`.
pub fn max_results(n: i64, max: i64) -> Result<(), MlflowError> {
    if !(1..=max).contains(&n) {
        return Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be between 1 and {max}."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_mlflow() {
        for ok in ["acc", "a:b", "loss/train", "my metric", "a.b-c_d", "ü"] {
            assert!(key("metric", ok).is_ok(), "{ok}");
        }
        for bad in ["", "../bad", "a//b", "a/./b", "/abs", "trail/", ".", "a\\b", "x;y"] {
            assert!(key("metric", bad).is_err(), "{bad}");
        }
        assert!(key("param", &"k".repeat(251)).is_err());
    }

    #[test]
    fn limits() {
        assert!(batch_limits(1000, 0, 0).is_ok());
        assert!(batch_limits(1001, 0, 0).unwrap_err().message.contains("at most 1000 metrics"));
        assert!(batch_limits(900, 100, 1).is_err());
        assert!(param(&KeyValue { key: "p".into(), value: "v".repeat(6001) }).is_err());
        assert!(max_results(0, 10).is_err() && max_results(11, 10).is_err() && max_results(10, 10).is_ok());
    }
}
