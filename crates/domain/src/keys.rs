//! The keys a complete listing named, kept compactly until the listing ends and what it lacked
//! is archived. A large tenant's listing names a million keys (user principal names, object
//! ids); as one `HashSet<String>` they took about 100 bytes each, here about 50: the text of
//! every key in one buffer, and a sorted index into it.

use std::ops::Range;

/// What a complete listing named, asked key by key when what it lacked is archived.
pub trait Listed: Sync {
    fn names(&self, key: &str) -> bool;
}

impl Listed for std::collections::HashSet<String> {
    fn names(&self, key: &str) -> bool {
        self.contains(key)
    }
}

impl Listed for ListedKeys {
    fn names(&self, key: &str) -> bool {
        self.contains(key)
    }
}

/// Keys being gathered while a listing is read, in any order, repeats allowed.
#[derive(Debug, Default)]
pub struct KeyList {
    text: String,
    spans: Vec<Span>,
}

/// Where one key lies in the shared text.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start..self.start + self.len
    }
}

impl KeyList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, key: &str) {
        let start = self.text.len();
        self.text.push_str(key);
        self.spans.push(Span {
            start,
            len: key.len(),
        });
    }

    /// Keys pushed so far, repeats counted.
    pub fn pushed(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The keys, sorted once and without repeats, ready to be asked about.
    pub fn finish(self) -> ListedKeys {
        let Self { text, mut spans } = self;
        spans.sort_unstable_by(|a, b| text[a.range()].cmp(&text[b.range()]));
        spans.dedup_by(|a, b| text[a.range()] == text[b.range()]);
        spans.shrink_to_fit();
        ListedKeys { text, spans }
    }
}

impl<'k> FromIterator<&'k str> for KeyList {
    fn from_iter<I: IntoIterator<Item = &'k str>>(keys: I) -> Self {
        let mut list = Self::new();
        for key in keys {
            list.push(key);
        }
        list
    }
}

/// The distinct keys a listing named, sorted; asked whether it named a key.
#[derive(Debug, Default)]
pub struct ListedKeys {
    text: String,
    spans: Vec<Span>,
}

impl ListedKeys {
    pub fn contains(&self, key: &str) -> bool {
        self.spans
            .binary_search_by(|span| self.text[span.range()].cmp(key))
            .is_ok()
    }

    /// Distinct keys.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The keys in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.spans.iter().map(|span| &self.text[span.range()])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn keys_pushed_are_found_and_others_are_not() {
        let listed = ["b@x", "a@x", "b@x", "", "c@x"]
            .into_iter()
            .collect::<KeyList>()
            .finish();
        assert_eq!(listed.len(), 4);
        assert!(listed.contains("a@x"));
        assert!(listed.contains("b@x"));
        assert!(listed.contains(""));
        assert!(!listed.contains("a@"));
        assert!(!listed.contains("a@xx"));
        assert_eq!(listed.iter().collect::<Vec<_>>(), ["", "a@x", "b@x", "c@x"]);
    }

    #[test]
    fn nothing_listed_contains_nothing() {
        let listed = KeyList::new().finish();
        assert!(listed.is_empty());
        assert!(!listed.contains(""));
    }

    proptest! {
        #[test]
        fn answers_as_a_set_of_the_same_keys_does(
            pushed in prop::collection::vec("[a-cé:]{0,4}", 0..60),
            asked in prop::collection::vec("[a-cé:]{0,4}", 0..20),
        ) {
            let set: BTreeSet<&str> = pushed.iter().map(String::as_str).collect();
            let listed = pushed.iter().map(String::as_str).collect::<KeyList>().finish();
            prop_assert_eq!(listed.len(), set.len());
            prop_assert_eq!(listed.iter().collect::<Vec<_>>(), set.iter().copied().collect::<Vec<_>>());
            for key in pushed.iter().chain(&asked) {
                prop_assert_eq!(listed.contains(key), set.contains(key.as_str()));
            }
        }
    }
}
