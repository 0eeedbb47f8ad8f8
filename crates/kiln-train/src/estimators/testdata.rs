//! The real datasets the estimator tests compare with scikit-learn on, read from the copies in
//! the repository's `examples/` (the reference numbers were computed on the same files).

use kiln_model::matrix::{DenseMatrix, Features};

/// Rows of a numeric CSV under `examples/` (header skipped); the last column as text.
fn read_csv(example: &str) -> (Vec<Vec<f64>>, Vec<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/").to_owned() + example;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut rows = Vec::new();
    let mut last = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let (target, feats) = fields.split_last().expect("a row");
        rows.push(feats.iter().map(|f| f.trim().parse::<f64>().expect("a number")).collect());
        last.push(target.trim().to_owned());
    }
    (rows, last)
}

/// Rows as a dense feature matrix.
pub fn dense_rows(rows: &[Vec<f64>]) -> Features {
    let d = rows.first().map_or(0, Vec::len);
    Features::Dense(DenseMatrix::from_vec(rows.len(), d, rows.concat()))
}

/// Iris rows (4 features) and class indices in sorted-name order, as scikit-learn's `classes_`.
pub fn iris_rows() -> (Vec<Vec<f64>>, Vec<usize>) {
    let (rows, species) = read_csv("iris/iris.csv");
    let names = ["setosa", "versicolor", "virginica"];
    let y = species.iter().map(|s| names.iter().position(|n| n == s).expect("a species")).collect();
    (rows, y)
}

/// Diabetes rows (10 features, raw units) and the target.
pub fn diabetes_rows() -> (Vec<Vec<f64>>, Vec<f64>) {
    let (rows, target) = read_csv("diabetes/diabetes.csv");
    (rows, target.iter().map(|t| t.parse().expect("a number")).collect())
}

/// Iris as a dense matrix and class indices.
pub fn iris() -> (Features, Vec<usize>) {
    let (rows, y) = iris_rows();
    (dense_rows(&rows), y)
}

/// Diabetes as a dense matrix and the target.
pub fn diabetes() -> (Features, Vec<f64>) {
    let (rows, y) = diabetes_rows();
    (dense_rows(&rows), y)
}
