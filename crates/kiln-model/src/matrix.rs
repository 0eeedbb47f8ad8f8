//! Feature matrices: dense row-major and sparse CSR, behind one [`Features`] type.
//!
//! Text pipelines produce sparse rows (a message uses a handful of an 8,000-word vocabulary), so
//! every linear model and naive Bayes works on [`CsrMatrix`] directly; trees and Gaussian NB need
//! dense rows and call [`Features::to_dense`].

use serde::{Deserialize, Serialize};

/// A dense row-major matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseMatrix {
    pub n_rows: usize,
    pub n_cols: usize,
    /// `n_rows * n_cols` values, row after row.
    pub data: Vec<f64>,
}

impl DenseMatrix {
    #[must_use]
    pub fn zeros(n_rows: usize, n_cols: usize) -> Self {
        Self { n_rows, n_cols, data: vec![0.0; n_rows * n_cols] }
    }

    /// # Panics
    /// If `data.len() != n_rows * n_cols` (a programming error).
    #[must_use]
    pub fn from_vec(n_rows: usize, n_cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(data.len(), n_rows * n_cols, "matrix data length");
        Self { n_rows, n_cols, data }
    }

    #[must_use]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    #[must_use]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n_cols + j]
    }

    /// Row-wise arg-max (first maximum wins, as numpy's `argmax`).
    #[must_use]
    pub fn argmax_rows(&self) -> Vec<usize> {
        (0..self.n_rows)
            .map(|i| {
                let r = self.row(i);
                let mut best = 0;
                for (j, &v) in r.iter().enumerate() {
                    if v > r[best] {
                        best = j;
                    }
                }
                best
            })
            .collect()
    }
}

/// A compressed-sparse-row matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsrMatrix {
    pub n_rows: usize,
    pub n_cols: usize,
    /// `n_rows + 1` offsets into `indices`/`data`.
    pub indptr: Vec<usize>,
    /// Column of each stored value; sorted within a row.
    pub indices: Vec<u32>,
    pub data: Vec<f64>,
}

impl CsrMatrix {
    #[must_use]
    pub fn empty(n_cols: usize) -> Self {
        Self { n_rows: 0, n_cols, indptr: vec![0], indices: Vec::new(), data: Vec::new() }
    }

    /// Appends a row given as (column, value) pairs sorted by column.
    pub fn push_row(&mut self, entries: impl IntoIterator<Item = (u32, f64)>) {
        for (j, v) in entries {
            self.indices.push(j);
            self.data.push(v);
        }
        self.indptr.push(self.indices.len());
        self.n_rows += 1;
    }

    /// The stored (columns, values) of row `i`.
    #[must_use]
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    #[must_use]
    pub fn nnz(&self) -> usize {
        self.data.len()
    }
}

/// The input of an estimator: dense or sparse rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    Dense(DenseMatrix),
    Sparse(CsrMatrix),
}

impl Features {
    #[must_use]
    pub fn n_rows(&self) -> usize {
        match self {
            Self::Dense(m) => m.n_rows,
            Self::Sparse(m) => m.n_rows,
        }
    }

    #[must_use]
    pub fn n_cols(&self) -> usize {
        match self {
            Self::Dense(m) => m.n_cols,
            Self::Sparse(m) => m.n_cols,
        }
    }

    /// `x_i · w` for row `i` (`w.len() >= n_cols`).
    #[must_use]
    pub fn row_dot(&self, i: usize, w: &[f64]) -> f64 {
        match self {
            Self::Dense(m) => m.row(i).iter().zip(w).map(|(a, b)| a * b).sum(),
            Self::Sparse(m) => {
                let (idx, val) = m.row(i);
                idx.iter().zip(val).map(|(&j, v)| v * w[j as usize]).sum()
            }
        }
    }

    /// `out += alpha * x_i` for row `i` (`out.len() >= n_cols`).
    pub fn add_row_scaled(&self, i: usize, alpha: f64, out: &mut [f64]) {
        match self {
            Self::Dense(m) => out.iter_mut().zip(m.row(i)).for_each(|(o, v)| *o += alpha * v),
            Self::Sparse(m) => {
                let (idx, val) = m.row(i);
                idx.iter().zip(val).for_each(|(&j, v)| out[j as usize] += alpha * v);
            }
        }
    }

    /// Calls `f(column, value)` for each stored value of row `i` (every column when dense).
    pub fn for_each_in_row(&self, i: usize, mut f: impl FnMut(usize, f64)) {
        match self {
            Self::Dense(m) => m.row(i).iter().enumerate().for_each(|(j, &v)| f(j, v)),
            Self::Sparse(m) => {
                let (idx, val) = m.row(i);
                idx.iter().zip(val).for_each(|(&j, &v)| f(j as usize, v));
            }
        }
    }

    /// The rows as a dense matrix: borrowed when already dense, converted when sparse.
    #[must_use]
    pub fn dense(&self) -> std::borrow::Cow<'_, DenseMatrix> {
        match self {
            Self::Dense(m) => std::borrow::Cow::Borrowed(m),
            Self::Sparse(_) => std::borrow::Cow::Owned(self.to_dense()),
        }
    }

    /// A dense copy.
    #[must_use]
    pub fn to_dense(&self) -> DenseMatrix {
        match self {
            Self::Dense(m) => m.clone(),
            Self::Sparse(m) => {
                let mut d = DenseMatrix::zeros(m.n_rows, m.n_cols);
                for i in 0..m.n_rows {
                    let (idx, val) = m.row(i);
                    let row = d.row_mut(i);
                    for (&j, &v) in idx.iter().zip(val) {
                        row[j as usize] = v;
                    }
                }
                d
            }
        }
    }

    /// A sparse copy (zeros dropped).
    #[must_use]
    pub fn to_sparse(&self) -> Self {
        match self {
            Self::Sparse(_) => self.clone(),
            Self::Dense(d) => {
                let mut s = CsrMatrix::empty(d.n_cols);
                for i in 0..d.n_rows {
                    s.push_row(
                        d.row(i)
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| **v != 0.0)
                            .map(|(j, v)| (u32::try_from(j).unwrap_or(u32::MAX), *v)),
                    );
                }
                Self::Sparse(s)
            }
        }
    }

    /// The rows at `idx`, in that order.
    #[must_use]
    pub fn take_rows(&self, idx: &[usize]) -> Self {
        match self {
            Self::Dense(m) => {
                let mut data = Vec::with_capacity(idx.len() * m.n_cols);
                for &i in idx {
                    data.extend_from_slice(m.row(i));
                }
                Self::Dense(DenseMatrix::from_vec(idx.len(), m.n_cols, data))
            }
            Self::Sparse(m) => {
                let mut out = CsrMatrix::empty(m.n_cols);
                for &i in idx {
                    let (c, v) = m.row(i);
                    out.push_row(c.iter().copied().zip(v.iter().copied()));
                }
                Self::Sparse(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_and_dense_agree() {
        let mut s = CsrMatrix::empty(3);
        s.push_row([(0, 1.0), (2, 2.0)]);
        s.push_row([]);
        s.push_row([(1, 3.0)]);
        let sp = Features::Sparse(s);
        let de = Features::Dense(sp.to_dense());
        assert_eq!(de.to_sparse(), sp);
        let w = [1.0, 10.0, 100.0];
        for i in 0..3 {
            assert_eq!(sp.row_dot(i, &w), de.row_dot(i, &w));
            let (mut a, mut b) = (vec![1.0; 3], vec![1.0; 3]);
            sp.add_row_scaled(i, 2.0, &mut a);
            de.add_row_scaled(i, 2.0, &mut b);
            assert_eq!(a, b);
        }
        assert_eq!(sp.take_rows(&[2, 0]).to_dense().data, vec![0.0, 3.0, 0.0, 1.0, 0.0, 2.0]);
        assert_eq!(de.take_rows(&[2, 0]).to_dense().data, vec![0.0, 3.0, 0.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn argmax_takes_first_maximum() {
        let m = DenseMatrix::from_vec(2, 3, vec![1.0, 3.0, 3.0, 0.5, 0.2, 0.1]);
        assert_eq!(m.argmax_rows(), vec![1, 0]);
    }
}
