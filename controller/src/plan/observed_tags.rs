//! [`Tags`]: the tags the controller observed on an AWS resource, as one immutable value.
//!
//! Why not a `BTreeMap<String, String>`: the controller keeps the last sweep of every Region
//! (10,000 volumes and more), and heaptrack put ~1.5 KiB on each volume, most of it its tags:
//! a B-tree leaf (~544 B, jemalloc class 640) plus two heap strings per tag, ~5 tags on a
//! managed volume. That is ~10 MB at 10,000 volumes, twice while a new sweep is built beside
//! the old one. Observed tags are read, never edited in place, so they fit in ONE heap
//! allocation holding every pair; an empty set allocates nothing.
//!
//! Encoding: for each pair in key order, the key then the value, each as `<byte length>:<text>`
//! (the length in decimal). Lengths, not separators, delimit the text, so keys and values may
//! hold anything (`=`, `,`, `:`, digits, NUL, any Unicode) and values may be empty. Keys are
//! sorted and unique, so two sets with the same pairs have the same bytes (equality is byte
//! equality). Lookups scan: a resource has at most 50 tags, and usually ~5.
//!
//! Tags the controller *sends* (creation tags, CreateTags, the CRD spec) stay maps.

use std::collections::BTreeMap;
use std::fmt;

/// The tags observed on one resource: sorted, unique keys; immutable (see the module doc).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Tags(Box<str>);

impl Tags {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { rest: &self.0 }
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `key` to `value` by building a new set: for fakes and tests, off the hot path.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        *self = self
            .iter()
            .chain([(key.as_ref(), value.as_ref())])
            .collect();
    }

    /// Removes `key` by building a new set: for fakes and tests, off the hot path.
    pub fn remove(&mut self, key: &str) {
        *self = self.iter().filter(|(k, _)| *k != key).collect();
    }

    /// As a map, for code that sends tags on (copies them to a new resource).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// Later pairs with the same key win, as when collecting a `BTreeMap`.
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut pairs: Vec<(K, V)> = pairs.into_iter().collect();
        // Stable: among equal keys the input order stays, so the last of a run is the latest.
        pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let latest = |i: &usize| {
            pairs
                .get(i + 1)
                .is_none_or(|next| next.0.as_ref() != pairs[*i].0.as_ref())
        };
        let kept: Vec<usize> = (0..pairs.len()).filter(latest).collect();
        let encoded_len: usize = kept
            .iter()
            .map(|&i| field_len(pairs[i].0.as_ref()) + field_len(pairs[i].1.as_ref()))
            .sum();
        // Sized exactly, so boxing does not reallocate: one allocation per set.
        let mut out = String::with_capacity(encoded_len);
        for &i in &kept {
            push_field(&mut out, pairs[i].0.as_ref());
            push_field(&mut out, pairs[i].1.as_ref());
        }
        debug_assert_eq!(out.len(), encoded_len);
        Self(out.into_boxed_str())
    }
}

impl From<BTreeMap<String, String>> for Tags {
    fn from(map: BTreeMap<String, String>) -> Self {
        map.into_iter().collect()
    }
}

impl From<&BTreeMap<String, String>> for Tags {
    fn from(map: &BTreeMap<String, String>) -> Self {
        map.iter().collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for Tags {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Tags {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The pairs of a [`Tags`], in key order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.field()?;
        let value = self.field()?;
        Some((key, value))
    }
}

impl<'a> Iter<'a> {
    /// Reads one `<len>:<text>` field off the front; `None` at the end. (The encoding is
    /// ours and well formed, so the end is the only `None`.)
    fn field(&mut self) -> Option<&'a str> {
        let (len, rest) = self.rest.split_once(':')?;
        let (text, rest) = rest.split_at_checked(len.parse().ok()?)?;
        self.rest = rest;
        Some(text)
    }
}

/// The encoded size of `<len>:<text>`: the decimal digits of the length, the colon, the text.
fn field_len(text: &str) -> usize {
    let digits = text
        .len()
        .checked_ilog10()
        .map_or(1, |log| log as usize + 1);
    digits + 1 + text.len()
}

fn push_field(out: &mut String, text: &str) {
    use fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{}:{text}", text.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(tags: &Tags) -> Vec<(&str, &str)> {
        tags.iter().collect()
    }

    #[test]
    fn an_empty_set_is_empty_and_allocates_nothing() {
        let tags = Tags::default();
        assert!(tags.is_empty());
        assert_eq!(tags.len(), 0);
        assert_eq!(tags.get(""), None);
        assert_eq!(tags.iter().next(), None);
        // A zero-length box is a dangling pointer, not an allocation.
        assert_eq!(tags.0.len(), 0);
        assert_eq!(Tags::from_iter(Vec::<(&str, &str)>::new()), tags);
        assert_eq!(format!("{tags:?}"), "{}");
    }

    #[test]
    fn one_tag() {
        let tags = Tags::from([("team", "a")]);
        assert_eq!(tags.len(), 1);
        assert!(!tags.is_empty());
        assert_eq!(tags.get("team"), Some("a"));
        assert!(tags.contains_key("team"));
        assert!(!tags.contains_key("tea"));
        assert!(!tags.contains_key("teams"));
        assert_eq!(pairs(&tags), [("team", "a")]);
    }

    #[test]
    fn keys_and_values_may_hold_anything_the_encoding_uses() {
        let awkward = [
            ("a=b", "c,d"),
            ("3:abc", "1:x"),
            (":", ":"),
            ("nul\0key", "nul\0value"),
            ("12", "345"),
            ("ключ", "значение ✓ 🦀"),
            ("empty", ""),
            ("", "empty key"),
        ];
        let tags = Tags::from(awkward);
        assert_eq!(tags.len(), awkward.len());
        for (k, v) in awkward {
            assert_eq!(tags.get(k), Some(v), "{k:?}");
        }
        let mut sorted = awkward.to_vec();
        sorted.sort();
        assert_eq!(pairs(&tags), sorted);
    }

    #[test]
    fn the_longest_keys_and_values_aws_allows_round_trip() {
        // 128 and 256 characters, 4 bytes each.
        let key = "🦀".repeat(128);
        let value = "𝄞".repeat(256);
        let tags = Tags::from([(key.as_str(), value.as_str()), ("b", "c")]);
        assert_eq!(tags.get(&key), Some(value.as_str()));
        assert_eq!(tags.get("b"), Some("c"));
    }

    #[test]
    fn later_pairs_with_the_same_key_win_as_in_a_map() {
        let input = [("k", "1"), ("a", "x"), ("k", "2"), ("k", "3"), ("z", "")];
        let tags = Tags::from(input);
        let map: BTreeMap<&str, &str> = input.into_iter().collect();
        assert_eq!(pairs(&tags), map.into_iter().collect::<Vec<_>>());
        assert_eq!(tags.get("k"), Some("3"));
    }

    #[test]
    fn pairs_come_out_in_key_order_and_order_in_does_not_matter() {
        let a = Tags::from([("b", "2"), ("c", "3"), ("a", "1")]);
        let b = Tags::from([("c", "3"), ("a", "1"), ("b", "2")]);
        assert_eq!(a, b);
        assert_eq!(a.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_ne!(a, Tags::from([("a", "1"), ("b", "2")]));
        assert_ne!(a, Tags::from([("a", "1"), ("b", "2"), ("c", "4")]));
    }

    #[test]
    fn converts_from_and_to_a_map() {
        let map = BTreeMap::from([
            ("team".to_owned(), "a".to_owned()),
            ("env".to_owned(), String::new()),
        ]);
        let tags = Tags::from(&map);
        assert_eq!(tags, Tags::from(map.clone()));
        assert_eq!(tags.to_map(), map);
        assert_eq!(format!("{tags:?}"), format!("{map:?}"));
    }

    #[test]
    fn insert_and_remove_rebuild_the_set() {
        let mut tags = Tags::from([("a", "1"), ("b", "2")]);
        tags.insert("b", "3");
        assert_eq!(tags, Tags::from([("a", "1"), ("b", "3")]));
        tags.insert("0", "");
        assert_eq!(tags, Tags::from([("0", ""), ("a", "1"), ("b", "3")]));
        tags.remove("a");
        tags.remove("x");
        assert_eq!(tags, Tags::from([("0", ""), ("b", "3")]));
        tags.remove("0");
        tags.remove("b");
        assert_eq!(tags, Tags::default());
    }

    #[test]
    fn a_managed_volume_s_tags_are_one_small_allocation() {
        assert!(std::mem::size_of::<Tags>() <= 16);
        let input = [
            ("ec2.reconciler.dev/cluster", "prod"),
            ("ec2.reconciler.dev/kind", "EbsVolume"),
            ("ec2.reconciler.dev/owner", "team-a/data"),
            (
                "ec2.reconciler.dev/uid",
                "0f6c7a52-3f0e-4d3c-9a57-2b1f5d7c8e90",
            ),
            ("team", "a"),
        ];
        let tags = Tags::from(input);
        assert_eq!(pairs(&tags), input);
        // The one buffer holds the text plus a length prefix of at most 3 bytes per field.
        let text: usize = input.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(tags.0.len() <= text + 10 * 3);
    }
}
