//! Importing contacts made elsewhere (a CSV from a PSA or a spreadsheet): which rows become new
//! contacts and which are already there. A contact is already there when a contact of the same
//! organisation, or an earlier row of the same import, has the row's mail or user principal name
//! as its mail or user principal name (case-insensitive): an import never makes a duplicate,
//! however often it is run.

use std::collections::HashMap;

use crate::plan::upn_key_of;

/// A contact as an import brings it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedContact {
    pub display_name: String,
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
    pub job_title: Option<String>,
    pub mobile_phone: Option<String>,
}

impl ImportedContact {
    /// The keys it is recognised by: its mail and its user principal name, folded.
    pub fn keys(&self) -> (Option<String>, Option<String>) {
        let email = self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_lowercase);
        let upn = self.user_principal_name.as_deref().and_then(upn_key_of);
        (email, upn)
    }
}

/// A contact the organisation already has, by its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownContact {
    pub id: i64,
    pub email_key: Option<String>,
    pub upn_key: Option<String>,
}

/// What becomes of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportDecision {
    Create,
    /// The organisation's contact with this id has the row's mail or user principal name.
    AlreadyThere(i64),
    /// An earlier row of this import (by index) is the same contact.
    SameAsRow(usize),
}

/// Decides each row of one organisation's import, in order.
pub fn plan_import(known: &[KnownContact], rows: &[ImportedContact]) -> Vec<ImportDecision> {
    // Either key of a contact finds it by either key of a row: a mail imported as a UPN is the
    // same person.
    let mut owners: HashMap<String, ImportDecision> = HashMap::new();
    for contact in known.iter().rev() {
        for key in [&contact.email_key, &contact.upn_key].into_iter().flatten() {
            owners.insert(key.clone(), ImportDecision::AlreadyThere(contact.id));
        }
    }
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let (email, upn) = row.keys();
            let keys: Vec<String> = [email, upn].into_iter().flatten().collect();
            if let Some(found) = keys.iter().find_map(|k| owners.get(k)) {
                return *found;
            }
            for key in keys {
                owners.insert(key, ImportDecision::SameAsRow(index));
            }
            ImportDecision::Create
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, email: Option<&str>, upn: Option<&str>) -> ImportedContact {
        ImportedContact {
            display_name: name.into(),
            email: email.map(String::from),
            user_principal_name: upn.map(String::from),
            job_title: None,
            mobile_phone: None,
        }
    }

    fn known(id: i64, email: Option<&str>, upn: Option<&str>) -> KnownContact {
        KnownContact {
            id,
            email_key: email.map(String::from),
            upn_key: upn.map(String::from),
        }
    }

    #[test]
    fn a_row_whose_mail_or_upn_a_contact_has_is_already_there() {
        let existing = [
            known(7, Some("ada@contoso.com"), None),
            known(8, None, Some("bob@contoso.com")),
        ];
        let rows = [
            row("Ada", Some("ADA@Contoso.com"), None),
            // A mail that is another contact's UPN is that contact.
            row("Bob", Some("bob@contoso.com"), None),
            row("Cy", Some("cy@contoso.com"), Some("cy@contoso.com")),
        ];
        assert_eq!(
            plan_import(&existing, &rows),
            vec![
                ImportDecision::AlreadyThere(7),
                ImportDecision::AlreadyThere(8),
                ImportDecision::Create
            ]
        );
    }

    #[test]
    fn a_row_repeating_an_earlier_row_is_not_a_second_contact() {
        let rows = [
            row("Ada", Some("ada@contoso.com"), None),
            row("Ada L.", None, Some("Ada@contoso.com")),
            row("Nameless", None, None),
            row("Nameless", None, None),
        ];
        assert_eq!(
            plan_import(&[], &rows),
            vec![
                ImportDecision::Create,
                ImportDecision::SameAsRow(0),
                // Nothing to recognise them by: each is a contact of its own.
                ImportDecision::Create,
                ImportDecision::Create,
            ]
        );
    }

    #[test]
    fn the_oldest_contact_wins_when_two_share_a_key() {
        let existing = [
            known(3, Some("ada@contoso.com"), None),
            known(9, Some("ada@contoso.com"), None),
        ];
        assert_eq!(
            plan_import(&existing, &[row("Ada", Some("ada@contoso.com"), None)]),
            vec![ImportDecision::AlreadyThere(3)]
        );
    }
}
