//! Model selection: the train/test split and k-fold cross-validation indices.
//!
//! Both are stratified by class when asked (each class keeps its share in every part, as
//! scikit-learn's `StratifiedShuffleSplit`/`StratifiedKFold`), shuffled with the configured seed.

use kiln_core::rng::Rng;

/// Groups row indices by class (or one group when `y` is `None`).
fn groups(n: usize, y: Option<(&[usize], usize)>) -> Vec<Vec<usize>> {
    match y {
        None => vec![(0..n).collect()],
        Some((y, k)) => {
            let mut g = vec![Vec::new(); k];
            for (i, &c) in y.iter().enumerate() {
                g[c].push(i);
            }
            g.into_iter().filter(|v| !v.is_empty()).collect()
        }
    }
}

/// Splits `0..n` into (train, test) with about `test_size` of each group in test; both sorted.
#[must_use]
pub fn train_test_split(n: usize, y: Option<(&[usize], usize)>, test_size: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut g in groups(n, y) {
        rng.shuffle(&mut g);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let mut n_test = (g.len() as f64 * test_size).round() as usize;
        // Keep at least one row of a class on each side when the class has two or more.
        if g.len() >= 2 {
            n_test = n_test.clamp(1, g.len() - 1);
        }
        test.extend_from_slice(&g[..n_test]);
        train.extend_from_slice(&g[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// `k` folds over `0..n` as (fit rows, validation rows); each row validates exactly once.
/// Stratified folds deal each class's shuffled rows round-robin.
#[must_use]
pub fn k_fold(n: usize, y: Option<(&[usize], usize)>, k: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut rng = Rng::derive(seed, 1);
    let mut fold_of = vec![0usize; n];
    let mut next = 0usize;
    for mut g in groups(n, y) {
        rng.shuffle(&mut g);
        for i in g {
            fold_of[i] = next % k;
            next += 1;
        }
    }
    (0..k)
        .map(|f| {
            let (mut fit, mut val) = (Vec::new(), Vec::new());
            for (i, &fi) in fold_of.iter().enumerate() {
                if fi == f { val.push(i) } else { fit.push(i) }
            }
            (fit, val)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_keeps_class_shares() {
        let y: Vec<usize> = (0..100).map(|i| usize::from(i % 10 == 0)).collect();
        let (train, test) = train_test_split(100, Some((&y, 2)), 0.2, 1);
        assert_eq!(train.len() + test.len(), 100);
        assert_eq!(test.iter().filter(|&&i| y[i] == 1).count(), 2);
        assert_eq!(test.len(), 20);
        assert_eq!(train_test_split(100, Some((&y, 2)), 0.2, 1), (train.clone(), test.clone()));
        assert_ne!(train_test_split(100, Some((&y, 2)), 0.2, 2).1, test);
    }

    #[test]
    fn folds_partition_rows() {
        let y: Vec<usize> = (0..23).map(|i| i % 3).collect();
        let folds = k_fold(23, Some((&y, 3)), 5, 0);
        let mut all: Vec<usize> = folds.iter().flat_map(|f| f.1.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..23).collect::<Vec<_>>());
        for (fit, val) in &folds {
            assert_eq!(fit.len() + val.len(), 23);
            assert!(val.len() >= 4);
        }
    }
}
