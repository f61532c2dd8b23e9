//! Who owns each field of a synced contact, and where Microsoft's value lands: a connection's
//! field mapping (the "primary sync location").
//!
//! Every Microsoft field a contact takes is owned by Microsoft 365 unless the mapping says
//! otherwise, so the default (empty) mapping is a sync that writes every field.
//!
//! - **Owned by Microsoft 365** (the default): each sync writes the field into the contact's own
//!   field, and a hand edit of it is refused.
//! - **Local** (the technician's): the sync fills the field once, when it creates the contact (or
//!   links one that has it empty), and never compares or writes it after; a hand edit survives
//!   every sync.
//! - **To a custom field**: Microsoft 365 owns the value, but it lands in a custom field of the
//!   contact with the name the admin chose (`department` into `Cost centre`); the contact's own
//!   field is then the technician's, as for a local field, but never filled by the sync.
//!
//! The identity fields (`userPrincipalName`, `mail`, `proxyAddresses`, `accountEnabled`,
//! `userType`, and the licences) always stay Microsoft 365's: they link a user to its contact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::InputError;
use crate::plan::Fields;
use crate::records::{ContactRecord, fingerprint};

/// The fields a mapping may give to the technician or send to a custom field, by Graph name.
pub const MAPPABLE: [&str; 8] = [
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "officeLocation",
    "mobilePhone",
    "businessPhones",
];

/// The fields that always stay Microsoft 365's.
pub const IDENTITY: [&str; 7] = [
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "accountEnabled",
    "userType",
    "assignedLicenses",
    "disabledPlans",
];

/// Where one field goes when the mapping says other than the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The technician owns the field.
    Local,
    /// Microsoft 365 owns the value; it lands in the custom field of this name.
    Custom(String),
}

/// A connection's field mapping: the fields that are not simply Microsoft 365's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldMapping {
    pub fields: BTreeMap<String, Placement>,
}

/// Who owns a field, for showing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldOwnership {
    pub field: &'static str,
    /// `microsoft_365` or `local`.
    pub owner: &'static str,
    /// The custom field Microsoft's value lands in, when not the contact's own field.
    pub custom_field: Option<String>,
}

/// The Graph name as spelled in `MAPPABLE` or `IDENTITY`, matched without regard to case.
fn known(field: &str) -> Option<&'static str> {
    MAPPABLE
        .iter()
        .chain(IDENTITY.iter())
        .find(|f| f.eq_ignore_ascii_case(field.trim()))
        .copied()
}

/// Checks that `field` is one a mapping may change, and returns its Graph spelling.
pub fn mappable(field: &str) -> Result<&'static str, InputError> {
    match known(field) {
        Some(f) if MAPPABLE.contains(&f) => Ok(f),
        Some(f) => Err(InputError::new(
            "field",
            format!("'{f}' links a user to its contact, so Microsoft 365 always owns it"),
            format!("map one of {} instead", MAPPABLE.join(", ")),
        )),
        None => Err(InputError::new(
            "field",
            format!("'{}' is not a contact field m365sync syncs", field.trim()),
            format!("name one of {}", MAPPABLE.join(", ")),
        )),
    }
}

fn custom_name(name: &str) -> Result<String, InputError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(InputError::new(
            "custom field",
            format!("'{name}' is not a usable custom field name"),
            "give a name of 1 to 100 printable characters, e.g. FIELD=\"Cost centre\"",
        ));
    }
    Ok(name.to_string())
}

impl FieldMapping {
    /// True for the mapping of a connection that never set one: Microsoft 365 owns everything.
    pub fn is_default(&self) -> bool {
        self.fields.is_empty()
    }

    /// The technician owns `field` from now on.
    pub fn set_local(&mut self, field: &str) -> Result<(), InputError> {
        let field = mappable(field)?;
        self.fields.insert(field.to_string(), Placement::Local);
        Ok(())
    }

    /// Microsoft 365 owns `field` again, in the contact's own field.
    pub fn set_owned(&mut self, field: &str) -> Result<(), InputError> {
        let field = mappable(field)?;
        self.fields.remove(field);
        Ok(())
    }

    /// Microsoft's `field` lands in the custom field `name`. Two fields cannot share a name.
    pub fn set_custom(&mut self, field: &str, name: &str) -> Result<(), InputError> {
        let field = mappable(field)?;
        let name = custom_name(name)?;
        if let Some((other, _)) = self
            .fields
            .iter()
            .find(|(f, p)| f.as_str() != field && **p == Placement::Custom(name.clone()))
        {
            return Err(InputError::new(
                "custom field",
                format!("'{name}' already takes Microsoft's {other}"),
                "give each field a custom field of its own",
            ));
        }
        self.fields
            .insert(field.to_string(), Placement::Custom(name));
        Ok(())
    }

    /// Checks a mapping read from elsewhere (a stored document, an API body): every field it
    /// names must be mappable, and every custom name usable and unique.
    pub fn validated(self) -> Result<Self, InputError> {
        let mut checked = Self::default();
        for (field, placement) in self.fields {
            match placement {
                Placement::Local => checked.set_local(&field)?,
                Placement::Custom(name) => checked.set_custom(&field, &name)?,
            }
        }
        Ok(checked)
    }

    /// Where the mapping sends `field`; `None` when Microsoft 365 owns it in its own field.
    pub fn placement(&self, field: &str) -> Option<&Placement> {
        self.fields.get(field)
    }

    /// Whether the technician owns `field` (it is local, or its value goes to a custom field).
    pub fn is_local(&self, field: &str) -> bool {
        self.placement(field).is_some()
    }

    /// The custom fields Microsoft 365 fills, by custom name, with the Graph field each takes.
    pub fn custom_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().filter_map(|(field, p)| match p {
            Placement::Custom(name) => Some((name.as_str(), field.as_str())),
            Placement::Local => None,
        })
    }

    /// Whether Microsoft 365 fills the custom field `name`.
    pub fn owns_custom(&self, name: &str) -> bool {
        self.custom_fields().any(|(n, _)| n == name)
    }

    /// Each field, who owns it and where it lands, in Graph's names.
    pub fn ownership(&self) -> Vec<FieldOwnership> {
        MAPPABLE
            .iter()
            .chain(IDENTITY.iter())
            .map(|&field| match self.placement(field) {
                None => FieldOwnership {
                    field,
                    owner: "microsoft_365",
                    custom_field: None,
                },
                Some(Placement::Local) => FieldOwnership {
                    field,
                    owner: "local",
                    custom_field: None,
                },
                Some(Placement::Custom(name)) => FieldOwnership {
                    field,
                    owner: "microsoft_365",
                    custom_field: Some(name.clone()),
                },
            })
            .collect()
    }

    /// What Microsoft 365 manages on a contact, as shown in exports: its own fields by Graph
    /// name, then the custom fields it fills by their names.
    pub fn managed_by_microsoft_365(&self) -> Vec<String> {
        let own = MAPPABLE
            .iter()
            .chain(IDENTITY.iter())
            .filter(|f| !self.is_local(f))
            .map(|f| f.to_string());
        own.chain(self.custom_fields().map(|(name, _)| name.to_string()))
            .collect()
    }

    /// The contact's own fields that a sync compares and writes: the record's fields less those
    /// the technician owns.
    pub fn owned_fields(&self, record: &ContactRecord) -> Fields {
        let mut fields = record.fields();
        fields.retain(|field, _| !self.is_local(field));
        fields
    }

    /// The custom fields Microsoft 365 fills, with the values this user gives them.
    pub fn custom_values(&self, record: &ContactRecord) -> BTreeMap<String, Option<String>> {
        let fields = record.fields();
        self.custom_fields()
            .map(|(name, field)| (name.to_string(), fields.get(field).cloned().flatten()))
            .collect()
    }

    /// The fingerprint a sync keeps beside a contact: the record's own under the default
    /// mapping (so that nothing changes for a connection that never set one), else one of what
    /// the mapping lets Microsoft 365 write and of the mapping itself, so that a change of a
    /// field the technician owns is no change, and a new mapping is weighed field by field.
    pub fn fingerprint(&self, record: &ContactRecord) -> String {
        if self.is_default() {
            return record.fingerprint();
        }
        fingerprint(&(
            &self.fields,
            self.owned_fields(record),
            self.custom_values(record),
        ))
    }

    /// The record as a new contact takes it: a field sent to a custom field leaves the
    /// contact's own field empty. Local fields are filled this once.
    pub fn for_creation(&self, record: &ContactRecord) -> ContactRecord {
        let mut record = record.clone();
        for (_, field) in self.custom_fields() {
            match field {
                "displayName" => {}
                "givenName" => record.given_name = None,
                "surname" => record.surname = None,
                "jobTitle" => record.job_title = None,
                "department" => record.department = None,
                "officeLocation" => record.office_location = None,
                "mobilePhone" => record.mobile_phone = None,
                "businessPhones" => record.business_phones.clear(),
                _ => {}
            }
        }
        record
    }

    /// Whether a person may edit `field` of a contact by hand; the reason when not.
    pub fn hand_edit(&self, field: &str) -> Result<&'static str, InputError> {
        let field = mappable(field)?;
        if self.is_local(field) {
            Ok(field)
        } else {
            Err(InputError::new(
                "field",
                format!(
                    "Microsoft 365 owns {field} on this contact's connection, so the next sync would undo the edit"
                ),
                format!(
                    "change it in Microsoft 365, or make it local first with `m365sync connection mapping NAME --local {field}`"
                ),
            ))
        }
    }

    /// Whether a person may edit the custom field `name` by hand; the reason when not.
    pub fn hand_edit_custom(&self, name: &str) -> Result<String, InputError> {
        let name = custom_name(name)?;
        match self.custom_fields().find(|(n, _)| *n == name) {
            Some((_, field)) => Err(InputError::new(
                "custom field",
                format!(
                    "Microsoft 365 fills '{name}' with {field} on this contact's connection, so the next sync would undo the edit"
                ),
                format!(
                    "change {field} in Microsoft 365, or stop the mapping with `m365sync connection mapping NAME --owned {field}`"
                ),
            )),
            None => Ok(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_owns_everything_and_keeps_todays_fingerprint() {
        let mapping = FieldMapping::default();
        assert!(
            mapping
                .ownership()
                .iter()
                .all(|o| o.owner == "microsoft_365")
        );
        assert!(mapping.hand_edit("jobTitle").is_err());
        assert_eq!(serde_json::to_string(&mapping).unwrap(), r#"{"fields":{}}"#);
        assert_eq!(serde_json::from_str::<FieldMapping>("{}").unwrap(), mapping);
    }

    #[test]
    fn identity_fields_cannot_be_taken_from_microsoft() {
        let mut mapping = FieldMapping::default();
        for field in [
            "userPrincipalName",
            "mail",
            "accountEnabled",
            "assignedLicenses",
        ] {
            let error = mapping.set_local(field).unwrap_err();
            assert!(error.problem.contains("always owns it"), "{error}");
            assert!(mapping.set_custom(field, "Somewhere").is_err());
        }
        let error = mapping.set_local("shoeSize").unwrap_err();
        assert!(error.problem.contains("not a contact field"), "{error}");
        assert!(mapping.is_default());
        let stored = r#"{"fields":{"userPrincipalName":"local"}}"#;
        let read: FieldMapping = serde_json::from_str(stored).unwrap();
        assert!(read.validated().is_err());
    }

    #[test]
    fn a_field_is_local_owned_or_custom_one_at_a_time() {
        let mut mapping = FieldMapping::default();
        mapping.set_local("JOBTITLE").unwrap();
        mapping.set_custom("department", " Cost centre ").unwrap();
        assert_eq!(
            serde_json::to_string(&mapping).unwrap(),
            r#"{"fields":{"department":{"custom":"Cost centre"},"jobTitle":"local"}}"#
        );
        assert!(mapping.set_custom("officeLocation", "Cost centre").is_err());
        assert_eq!(mapping.hand_edit("jobTitle").unwrap(), "jobTitle");
        assert!(mapping.hand_edit_custom("Cost centre").is_err());
        assert!(mapping.hand_edit_custom("Desk").is_ok());
        let managed = mapping.managed_by_microsoft_365();
        assert!(managed.contains(&"displayName".to_string()));
        assert!(managed.contains(&"Cost centre".to_string()));
        assert!(!managed.contains(&"jobTitle".to_string()));
        assert!(!managed.contains(&"department".to_string()));
        mapping.set_owned("jobTitle").unwrap();
        assert!(mapping.hand_edit("jobTitle").is_err());
    }
}
