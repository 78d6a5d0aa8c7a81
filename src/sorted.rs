//! Sets and maps built once by sorting and read by binary search, for the
//! cross-reference checks on request documents. A sort costs n log n
//! comparisons whatever the keys are, so a document cannot make the checks
//! slow by choosing its KIDs, and for the tens of keys of a real request it
//! is several times cheaper than hashing each one with SipHash.

/// The index (as given) of the first item equal to an item before it,
/// where "first" and "before" follow the order of the indices.
pub fn first_repeat<T: Ord>(items: impl IntoIterator<Item = (usize, T)>) -> Option<usize> {
    SortedSet::of_distinct(items).err()
}

/// A set of distinct items.
#[derive(Debug, Clone)]
pub struct SortedSet<T>(Vec<T>);

impl<T: Ord> SortedSet<T> {
    /// The set of `items` (each with its index), or, when some repeat,
    /// the index of the first item equal to an item before it ("first" and
    /// "before" in the order of the indices). One sort serves both.
    pub fn of_distinct(items: impl IntoIterator<Item = (usize, T)>) -> Result<Self, usize> {
        let mut v: Vec<(T, usize)> = items.into_iter().map(|(i, t)| (t, i)).collect();
        v.sort_unstable();
        // Within a run of equal items the indices are ascending, so each
        // window's second index is a repeat, and the smallest of those is
        // the first repeat.
        let repeat = v
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[1].1)
            .min();
        match repeat {
            Some(i) => Err(i),
            None => Ok(SortedSet(v.into_iter().map(|(t, _)| t).collect())),
        }
    }

    /// Whether `item` is in the set.
    pub fn contains(&self, item: &T) -> bool {
        self.0.binary_search(item).is_ok()
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut v: Vec<T> = items.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        SortedSet(v)
    }
}

/// A map from keys to values; of repeated keys, the first one's value is
/// kept.
#[derive(Debug, Clone)]
pub struct SortedMap<K, V>(Vec<(K, V)>);

impl<K: Ord, V> SortedMap<K, V> {
    /// The value for `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut v: Vec<(K, V)> = pairs.into_iter().collect();
        // Stable: the first of equal keys stays first, and dedup keeps it.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|later, earlier| later.0 == earlier.0);
        SortedMap(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_repeat_follows_index_order() {
        let items = ["a", "b", "c", "b", "a"];
        assert_eq!(first_repeat(items.iter().copied().enumerate()), Some(3));
        assert_eq!(first_repeat(["x", "y"].into_iter().enumerate()), None);
        assert_eq!(first_repeat(std::iter::empty::<(usize, u8)>()), None);
        // Indices need not be contiguous (items without an id skipped).
        assert_eq!(
            first_repeat([(2, "p"), (5, "q"), (9, "p"), (7, "q")]),
            Some(7)
        );
    }

    #[test]
    fn set_and_map() {
        let s: SortedSet<u32> = [5, 1, 5, 3].into_iter().collect();
        assert!(s.contains(&1) && s.contains(&5) && !s.contains(&2));
        let d = SortedSet::of_distinct([9u32, 4, 7].into_iter().enumerate()).unwrap();
        assert!(d.contains(&4) && d.contains(&9) && !d.contains(&5));
        assert_eq!(
            SortedSet::of_distinct([9u32, 4, 9].into_iter().enumerate()).err(),
            Some(2)
        );
        let m: SortedMap<&str, u32> = [("b", 1), ("a", 2), ("b", 3)].into_iter().collect();
        assert_eq!(m.get(&"b"), Some(&1));
        assert_eq!(m.get(&"a"), Some(&2));
        assert_eq!(m.get(&"c"), None);
    }
}
