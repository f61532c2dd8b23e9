//! Letters as a reader takes them: case and accents set aside, so that "Øystein" sorts among
//! the O's and a search for "oystein" finds him. One table serves the order of names and the
//! search for text, so that what a list puts together a search finds together.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Letters whose mark is part of their shape, so that Unicode does not decompose them, each with
/// the plain letters a reader takes it for.
const SHAPED_LETTERS: [(char, &str); 26] = [
    ('ø', "o"),
    ('Ø', "o"),
    ('ł', "l"),
    ('Ł', "l"),
    ('đ', "d"),
    ('Đ', "d"),
    ('ð', "d"),
    ('Ð', "d"),
    ('ħ', "h"),
    ('Ħ', "h"),
    ('ŧ', "t"),
    ('Ŧ', "t"),
    ('ı', "i"),
    ('ƒ', "f"),
    ('ŀ', "l"),
    ('Ŀ', "l"),
    ('æ', "ae"),
    ('Æ', "ae"),
    ('œ', "oe"),
    ('Œ', "oe"),
    ('ß', "ss"),
    ('ẞ', "ss"),
    ('þ', "th"),
    ('Þ', "th"),
    ('ĳ', "ij"),
    ('Ĳ', "ij"),
];

/// Appends `c` as a reader takes it: lower case, without accents.
fn push_folded(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    if let Some((_, plain)) = SHAPED_LETTERS.iter().find(|(letter, _)| *letter == c) {
        out.push_str(plain);
        return;
    }
    for part in std::iter::once(c).nfd().filter(|p| !is_combining_mark(*p)) {
        match SHAPED_LETTERS.iter().find(|(letter, _)| *letter == part) {
            Some((_, plain)) => out.push_str(plain),
            None => out.extend(part.to_lowercase()),
        }
    }
}

/// `text` as a reader takes it: lower case, without accents.
pub(crate) fn folded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_folded(c, &mut out);
    }
    out
}

/// The Latin letters that may stand for one another in a search once folded: the plain letter
/// and every accented form of it in Latin-1 and the Latin Extended blocks.
fn latin_variants() -> &'static HashMap<char, Vec<char>> {
    static VARIANTS: OnceLock<HashMap<char, Vec<char>>> = OnceLock::new();
    VARIANTS.get_or_init(|| {
        let mut by_plain: HashMap<char, Vec<char>> = HashMap::new();
        let latin = ('A'..='Z')
            .chain('a'..='z')
            .chain('\u{C0}'..='\u{24F}')
            .chain('\u{1E00}'..='\u{1EFF}');
        for c in latin.filter(|c| c.is_alphabetic()) {
            let mut plain = String::new();
            push_folded(c, &mut plain);
            let mut chars = plain.chars();
            if let (Some(one), None) = (chars.next(), chars.next()) {
                by_plain.entry(one).or_default().push(c);
            }
        }
        by_plain
    })
}

/// Every single character a search for `c` accepts in its place: its other cases and, for a
/// Latin letter, the same letter with or without any accent ("o" accepts "Ø" and "ö").
pub(crate) fn letter_forms(c: char) -> Vec<char> {
    let mut forms = vec![c];
    let mut add = |one: char| {
        if !forms.contains(&one) {
            forms.push(one);
        }
    };
    for other in case_forms(c) {
        add(other);
    }
    let mut plain = String::new();
    push_folded(c, &mut plain);
    let mut chars = plain.chars();
    if let (Some(one), None) = (chars.next(), chars.next())
        && let Some(variants) = latin_variants().get(&one)
    {
        for variant in variants {
            for other in case_forms(*variant) {
                add(other);
            }
        }
    }
    forms
}

/// A character and the other single characters it reads as in another case.
fn case_forms(c: char) -> Vec<char> {
    let mut forms = vec![c];
    let mut add = |mapped: &mut dyn Iterator<Item = char>| {
        if let (Some(one), None) = (mapped.next(), mapped.next())
            && !forms.contains(&one)
        {
            forms.push(one);
        }
    };
    add(&mut c.to_lowercase());
    add(&mut c.to_uppercase());
    let lower: Vec<char> = c.to_lowercase().collect();
    if let [lower] = lower[..] {
        add(&mut lower.to_uppercase());
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaped_and_accented_letters_read_as_their_plain_letters() {
        assert_eq!(
            folded("Øystein Łukasz Æsir Straße Þór"),
            "oystein lukasz aesir strasse thor"
        );
        assert_eq!(folded("Émile ÖZİL"), "emile ozil");
    }

    #[test]
    fn a_plain_letter_accepts_its_accented_forms_and_they_accept_it() {
        let o = letter_forms('o');
        for c in ['o', 'O', 'ø', 'Ø', 'ö', 'Ö', 'ó', 'ő'] {
            assert!(o.contains(&c), "o should accept {c}");
        }
        assert!(!o.contains(&'e'));
        assert!(letter_forms('Ø').contains(&'o'));
        assert!(letter_forms('é').contains(&'E'));
        // A letter read as two keeps to its own cases.
        assert_eq!(letter_forms('æ'), vec!['æ', 'Æ']);
        // Outside the Latin script only case is set aside.
        assert_eq!(letter_forms('ж'), vec!['ж', 'Ж']);
        assert_eq!(letter_forms('7'), vec!['7']);
    }
}
