//! Names people give: one spelling for an organisation's name, and why a name is refused.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest organisation name: a name, not a document (and short enough for a file name or
/// a header that carries it).
pub const MAX_ORGANIZATION_NAME: usize = 200;

/// An organisation's name in one spelling: Unicode NFC, invisible format characters (zero-width
/// spaces and joiners, soft hyphens, direction marks, byte-order marks) dropped, every run of
/// white space one space, and no space at either end. Two names that look alike are spelt
/// alike, so "Acme  Ltd" and "Acme\u{200B} Ltd" are "Acme Ltd".
pub fn canonical_organization_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(4 * MAX_ORGANIZATION_NAME));
    let mut space = false;
    for c in name.nfc() {
        if c.general_category() == GeneralCategory::Format {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// What two organisation names are compared by when looking for a duplicate: the canonical
/// spelling in any case.
pub fn organization_name_key(name: &str) -> String {
    canonical_organization_name(name).to_lowercase()
}

/// The canonical spelling of a new organisation's name, or why it is refused, in words for the
/// person who typed it: empty, holding a control character (NUL, a line break, a tab), or
/// longer than [`MAX_ORGANIZATION_NAME`] characters.
pub fn organization_name(name: &str) -> Result<String, String> {
    if name.chars().any(char::is_control) {
        return Err(
            "the organisation's name holds a control character (such as NUL, a tab or a line break): give printable text only"
                .into(),
        );
    }
    let canonical = canonical_organization_name(name);
    if canonical.is_empty() {
        return Err("the organisation's name is empty: give the organisation a name".into());
    }
    let length = canonical.chars().count();
    if length > MAX_ORGANIZATION_NAME {
        return Err(format!(
            "the organisation's name is {length} characters long, more than {MAX_ORGANIZATION_NAME}: give a shorter one"
        ));
    }
    Ok(canonical)
}

/// The name of an organisation made for a tenant, from the tenant's display name as Microsoft
/// gives it: no one typed it here, so it is made fit rather than refused. Control characters
/// become spaces, the spelling is canonical and cut at [`MAX_ORGANIZATION_NAME`] characters;
/// a display name with nothing left takes `fallback` (the tenant's domain or id).
pub fn organization_name_for_tenant(display_name: &str, fallback: &str) -> String {
    let printable: String = display_name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let canonical = canonical_organization_name(&printable);
    let name: String = canonical.chars().take(MAX_ORGANIZATION_NAME).collect();
    match name.trim_end() {
        "" => fallback.to_string(),
        name => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_name_is_made_fit_for_an_organisation() {
        assert_eq!(
            organization_name_for_tenant(" Contoso\u{0}\nLtd\u{200B} ", "contoso.com"),
            "Contoso Ltd"
        );
        assert_eq!(
            organization_name_for_tenant("\u{200B}\t", "contoso.com"),
            "contoso.com"
        );
        let long = format!("{} tail", "n".repeat(MAX_ORGANIZATION_NAME - 1));
        let made = organization_name_for_tenant(&long, "x");
        assert_eq!(made, "n".repeat(MAX_ORGANIZATION_NAME - 1));
        assert_eq!(organization_name(&made).unwrap(), made);
    }

    #[test]
    fn a_name_is_trimmed_spaced_once_and_loses_invisible_characters() {
        assert_eq!(organization_name("  Acme   Ltd ").unwrap(), "Acme Ltd");
        assert_eq!(
            organization_name("Acme\u{200B} \u{2060}Ltd\u{FEFF}").unwrap(),
            "Acme Ltd"
        );
        assert_eq!(
            organization_name("Ac\u{AD}me\u{3000}Ltd").unwrap(),
            "Acme Ltd"
        );
        // The same letter, composed or not, is one spelling.
        assert_eq!(
            organization_name("Go\u{308}teborg").unwrap(),
            organization_name("G\u{F6}teborg").unwrap()
        );
        assert_eq!(
            organization_name_key("ACME  ltd"),
            organization_name_key("acme Ltd")
        );
        assert_eq!(organization_name("1").unwrap(), "1");
    }

    #[test]
    fn empty_control_and_long_names_are_refused_by_name() {
        for blank in ["", "   ", "\u{200B}", " \u{FEFF} "] {
            let problem = organization_name(blank).unwrap_err();
            assert!(
                problem.contains("give the organisation a name"),
                "{problem}"
            );
        }
        for control in ["Acme\0", "Ac\nme", "Acme\tLtd", "\u{7F}", "a\u{85}b"] {
            let problem = organization_name(control).unwrap_err();
            assert!(
                problem.contains("control character"),
                "{control:?}: {problem}"
            );
        }
        assert!(organization_name(&"n".repeat(MAX_ORGANIZATION_NAME)).is_ok());
        let problem = organization_name(&"n".repeat(2_000_000)).unwrap_err();
        assert!(problem.contains("more than 200"), "{problem}");
        assert!(problem.starts_with("the organisation's name"), "{problem}");
        // Spaces and invisible characters do not count.
        let padded = format!(
            "{}{}",
            "n".repeat(MAX_ORGANIZATION_NAME),
            " \u{200B}".repeat(50)
        );
        assert!(organization_name(&padded).is_ok());
    }
}
