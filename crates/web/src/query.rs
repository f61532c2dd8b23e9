//! What to say when a query string or an address cannot be read, in words a person can act on:
//! the framework's own text names Rust types and serde internals.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, QueryRejection};

/// The problem with a query string that could not be read, naming the parameter when it can.
pub(crate) fn query_problem(rejection: &QueryRejection) -> String {
    let text = rejection.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    if let Some(name) = between(detail, "duplicate field `", "`") {
        return format!("the query parameter '{name}' is given more than once; give it once");
    }
    if let Some(name) = between(detail, "unknown field `", "`") {
        return format!("the query parameter '{name}' is not one this address takes; leave it out");
    }
    if let Some(name) = between(detail, "missing field `", "`") {
        return format!("the query parameter '{name}' is needed; add it");
    }
    // serde_path_to_error puts the parameter's name before the first colon.
    if let Some((name, _)) = detail.split_once(": ")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return format!(
            "the query parameter '{name}' has a value it cannot take; correct or remove it"
        );
    }
    "the query string cannot be read; give each parameter once, as name=value joined by &".into()
}

/// The problem with an address whose parts could not be read, naming the part when it can.
pub(crate) fn path_problem(rejection: &PathRejection) -> String {
    let PathRejection::FailedToDeserializePathParams(failed) = rejection else {
        return "the address cannot be read".into();
    };
    match failed.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => format!(
            "the part '{key}' of the address is percent-encoded bytes that are not UTF-8 text (such as %FF); correct the address or follow a link to it"
        ),
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } if is_integer(expected_type) => format!(
            "the part '{key}' of the address is '{value}', which is not a whole number; give the number as it was listed"
        ),
        ErrorKind::ParseError {
            value,
            expected_type,
        }
        | ErrorKind::ParseErrorAtIndex {
            value,
            expected_type,
            ..
        } if is_integer(expected_type) => format!(
            "'{value}' in the address is not a whole number; give the number as it was listed"
        ),
        _ => "a part of the address cannot be read; correct the address or follow a link to it"
            .into(),
    }
}

fn is_integer(rust_type: &str) -> bool {
    rust_type.starts_with('i') || rust_type.starts_with('u')
}

/// The text of `text` between `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// Search text as the store can take it: a NUL ends a string in PostgreSQL and matches
/// nothing a person can type, so it is dropped instead of failing the search.
pub(crate) fn search_text(raw: &str) -> String {
    raw.chars().filter(|c| *c != '\0').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_dropped_from_search_text() {
        assert_eq!(search_text("a\0b\0"), "ab");
        assert_eq!(search_text("ålborg"), "ålborg");
    }
}
