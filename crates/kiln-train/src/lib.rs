//! kiln-train: from a `kiln.yaml` and a CSV to a fitted, evaluated model bundle.
pub mod estimators;
