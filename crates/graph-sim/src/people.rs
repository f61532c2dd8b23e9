//! Deterministic synthetic people. Every user is a pure function of (seed, tenant, index), so a
//! tenant of a million users is served page by page without ever being held in memory.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::catalog::{SKUS, TenantLicensing};

/// splitmix64: small, fast, and good enough to spread seeds into independent-looking streams.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(mix(mix(a) ^ b.wrapping_mul(0x2545_F491_4F6C_DD1D)) ^ c.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A bijection on 48-bit numbers (odd multiplier modulo 2^48), so neighbouring indexes give
/// unrelated-looking ids.
const MULTIPLIER: u64 = 0x0005_DEEC_E66D;
const INVERSE: u64 = 0xDFE0_5BCB_1365; // MULTIPLIER⁻¹ mod 2^48
const LOW48: u64 = 0xFFFF_FFFF_FFFF;

fn scramble(index: u64) -> u64 {
    index.wrapping_mul(MULTIPLIER) & LOW48
}

fn unscramble(value: u64) -> u64 {
    value.wrapping_mul(INVERSE) & LOW48
}

/// A v4-shaped GUID from a hash.
pub fn guid(h1: u64, h2: u64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&h1.to_be_bytes());
    bytes[8..].copy_from_slice(&h2.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

const GIVEN: &[&str] = &[
    "Ann", "Bob", "Zoë", "José", "Łukasz", "Søren", "Chloé", "Mateus", "Aisha", "Björn", "Siobhán",
    "Mei", "Ravi", "Olga", "Fatima", "Kenji", "Ingrid", "Pierre", "Ayşe", "Dmitri", "Elena",
    "Omar", "Priya", "Tomás", "Hana", "Ève", "Jürgen", "Noa", "Kwame", "伟", "Nikolaj", "Grace",
];
const SURNAMES: &[&str] = &[
    "Müller",
    "García",
    "O'Brien",
    "Smith",
    "Kowalski",
    "Nguyen",
    "Øvergaard",
    "Dubois",
    "Rossi",
    "Yılmaz",
    "Tanaka",
    "Johansson",
    "Papadopoulos",
    "Ivanova",
    "Khan",
    "da Silva",
    "van der Berg",
    "Ng",
    "Walsh",
    "Fernández",
    "Lindqvist",
    "Novák",
    "Schmidt",
    "Brown",
    "Okafor",
    "Kim",
    "Wójcik",
    "Haddad",
    "Costa",
    "Ó Súilleabháin",
    "张",
    "Andersen",
];
const TITLES: &[&str] = &[
    "Accountant",
    "Sales Manager",
    "Software Engineer",
    "Office Manager",
    "Chief Executive Officer",
    "Nurse",
    "Technician",
    "Marketing Specialist",
    "Customer Service Representative",
    "Warehouse Operative",
    "HR Business Partner",
    "Architect",
];
const DEPARTMENTS: &[&str] = &[
    "Finance",
    "Sales",
    "Engineering",
    "Operations",
    "Management",
    "Care",
    "Support",
    "Marketing",
    "HR",
];
const OFFICES: &[&str] = &[
    "London",
    "Leeds",
    "Dublin",
    "Amsterdam",
    "Remote",
    "Head Office",
    "Kraków",
    "München",
];
const SHARED: &[&str] = &[
    "Info",
    "Accounts Payable",
    "Reception",
    "Sales Enquiries",
    "Careers",
    "Support Desk",
    "Bookings",
];
const EXTERNAL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "partner-consulting.co.uk",
    "fabrikam.example",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Licensed,
    Kiosk,
    Unlicensed,
    Disabled,
    Guest,
    SharedMailbox,
}

/// Changes made through the control API on top of the generated user.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub account_enabled: Option<bool>,
    pub mobile_phone: Option<String>,
    pub mail: Option<String>,
    /// The user's addresses (`SMTP:` primary, `smtp:` aliases), replacing the generated ones; the
    /// primary becomes the user's `mail`.
    pub proxy_addresses: Option<Vec<String>>,
    /// Part numbers the user holds, replacing the generated assignment.
    pub licenses: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct SimUser {
    pub index: u64,
    pub id: Uuid,
    pub kind: Kind,
    pub upn: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub account_enabled: bool,
    pub user_type: &'static str,
    /// (index into SKUS, disabled plan ids)
    pub licenses: Vec<(usize, Vec<&'static str>)>,
    pub has_mailbox: bool,
    /// When the account was made, in seconds since 1970.
    pub created: i64,
    /// `SMTP:` the primary address, `smtp:` each alias; empty for a user with no mail.
    pub proxy_addresses: Vec<String>,
    pub other_mails: Vec<String>,
    pub mail_nickname: String,
    /// Set for an account synced from an on-premises Active Directory.
    pub on_premises: Option<OnPremises>,
}

/// Where a synced account comes from in the on-premises Active Directory.
#[derive(Debug, Clone)]
pub struct OnPremises {
    pub immutable_id: String,
    pub sam_account_name: String,
    pub domain_name: String,
    pub user_principal_name: String,
    pub distinguished_name: String,
    pub security_identifier: String,
}

/// When every simulated organisation was created (its `createdDateTime`): 2016-03-01T09:12:44Z.
pub(crate) const ORGANIZATION_CREATED: i64 = 1_456_823_564;
/// Users were made over the eight and a half years after it.
const ACCOUNT_SPAN_SECONDS: i64 = 3_100 * 86_400;

/// What a tenant needs to know to generate its people.
pub struct Population {
    pub seed: u64,
    pub tenant_index: u64,
    pub initial_domain: String,
    pub custom_domain: String,
    pub licensing: TenantLicensing,
    /// The high 80 bits of every user id in this tenant; the low 48 are the user's index,
    /// scrambled by `id_mask` so that ids look as random as Entra's.
    id_prefix: [u8; 10],
    id_mask: u64,
}

impl Population {
    pub fn new(
        seed: u64,
        tenant_index: u64,
        initial_domain: String,
        custom_domain: String,
    ) -> Self {
        let h = hash3(seed, tenant_index, 0x005e_ed1d);
        let mut id_prefix = [0u8; 10];
        id_prefix[..8].copy_from_slice(&h.to_be_bytes());
        id_prefix[8..].copy_from_slice(&(mix(h) as u16).to_be_bytes());
        let id_mask = mix(h ^ 0x1d) & LOW48;
        Self {
            seed,
            tenant_index,
            initial_domain,
            custom_domain,
            licensing: TenantLicensing::for_style(mix(seed ^ tenant_index)),
            id_prefix,
            id_mask,
        }
    }

    fn user_id(&self, index: u64) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..10].copy_from_slice(&self.id_prefix);
        bytes[10..].copy_from_slice(&(scramble(index) ^ self.id_mask).to_be_bytes()[2..]);
        // Version and variant bits live in bytes 6 and 8, inside the prefix: the index survives.
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// The index of a user id of this tenant, if it is one.
    pub fn index_of(&self, id: &Uuid) -> Option<u64> {
        let expected = self.user_id(0);
        let (a, b) = (id.as_bytes(), expected.as_bytes());
        if a[..10] != b[..10] {
            return None;
        }
        let mut low = [0u8; 8];
        low[2..].copy_from_slice(&a[10..]);
        Some(unscramble(u64::from_be_bytes(low) ^ self.id_mask))
    }

    fn kind(&self, index: u64) -> Kind {
        // The first account is always the licensed admin every tenant has.
        if index == 0 {
            return Kind::Licensed;
        }
        match hash3(self.seed, self.tenant_index, index) % 100 {
            0..=64 => Kind::Licensed,
            65..=69 => Kind::Kiosk,
            70..=77 => Kind::Unlicensed,
            78..=83 => Kind::Disabled,
            84..=90 => Kind::Guest,
            _ => Kind::SharedMailbox,
        }
    }

    /// Only the licence assignment, cheaply: used to count consumed units over a whole tenant.
    pub fn licenses_of(&self, index: u64) -> Vec<(usize, Vec<&'static str>)> {
        let r = hash3(self.seed ^ 0x11c, self.tenant_index, index);
        let primary = || {
            let sku = self.licensing.primary[r.is_multiple_of(3) as usize];
            // Some users have Teams switched off in their main SKU.
            let disabled = if r % 10 == 7 {
                SKUS[sku]
                    .plans
                    .iter()
                    .filter(|p| p.name == "TEAMS1")
                    .map(|p| p.id)
                    .collect()
            } else {
                vec![]
            };
            (sku, disabled)
        };
        let mut licenses = match self.kind(index) {
            Kind::Licensed => vec![primary()],
            Kind::Kiosk => vec![(self.licensing.kiosk, vec![])],
            // Leavers whose licence nobody took back: the waste MSPs look for.
            Kind::Disabled if r.is_multiple_of(2) => vec![primary()],
            _ => vec![],
        };
        if !licenses.is_empty() && (r >> 8).is_multiple_of(5) {
            licenses.push((self.licensing.addons[((r >> 12) % 3) as usize], vec![]));
        }
        licenses
    }

    pub fn user(&self, index: u64) -> SimUser {
        let kind = self.kind(index);
        let r = hash3(self.seed ^ 0xa11ce, self.tenant_index, index);
        let pick = |list: &'static [&'static str], salt: u64| {
            list[(mix(r ^ salt) % list.len() as u64) as usize]
        };
        let given = pick(GIVEN, 1);
        let surname = pick(SURNAMES, 2);
        let alias_base = match (ascii_alias(given), ascii_alias(surname)) {
            (g, s) if !g.is_empty() && !s.is_empty() => format!("{g}.{s}"),
            _ => "user".to_string(),
        };
        // Some UPNs carry capitals as typed by an admin; reports write them in lower case.
        let alias = if r % 4 == 1 {
            format!("{}{index}", capitalise_parts(&alias_base))
        } else {
            format!("{alias_base}{index}")
        };
        let id = self.user_id(index);
        let phone = format!("+44 20 7946 {:04}", r % 10_000);
        let mut user = SimUser {
            index,
            id,
            kind,
            upn: format!("{alias}@{}", self.custom_domain),
            display_name: format!("{given} {surname}"),
            given_name: Some(given.to_string()),
            surname: Some(surname.to_string()),
            mail: Some(format!("{alias}@{}", self.custom_domain)),
            job_title: Some(pick(TITLES, 3).to_string()),
            department: Some(pick(DEPARTMENTS, 4).to_string()),
            office_location: Some(pick(OFFICES, 5).to_string()),
            mobile_phone: (!r.is_multiple_of(3))
                .then(|| format!("+44 7700 {:06}", mix(r) % 1_000_000)),
            business_phones: if r.is_multiple_of(4) {
                vec![]
            } else {
                vec![phone]
            },
            account_enabled: true,
            user_type: "Member",
            licenses: self.licenses_of(index),
            has_mailbox: false,
            created: 0,
            proxy_addresses: vec![],
            other_mails: vec![],
            mail_nickname: String::new(),
            on_premises: None,
        };
        match kind {
            Kind::Licensed | Kind::Kiosk => {}
            Kind::Unlicensed => user.mail = None,
            Kind::Disabled => user.account_enabled = false,
            Kind::Guest => {
                let external = pick(EXTERNAL_DOMAINS, 6);
                let guest_alias = format!("{alias_base}{index}");
                user.upn = format!("{guest_alias}_{external}#EXT#@{}", self.initial_domain);
                user.mail = Some(format!("{guest_alias}@{external}"));
                user.user_type = "Guest";
                user.job_title = None;
                user.department = None;
                user.office_location = None;
                user.business_phones = vec![];
            }
            Kind::SharedMailbox => {
                let name = pick(SHARED, 7);
                let shared_alias = format!("{}{index}", ascii_alias(name));
                user.upn = format!("{shared_alias}@{}", self.custom_domain);
                user.mail = Some(user.upn.clone());
                user.display_name = format!("{name} {index}");
                user.given_name = None;
                user.surname = None;
                user.job_title = None;
                user.mobile_phone = None;
                user.business_phones = vec![];
                // Shared mailboxes have sign-in blocked, as Exchange creates them.
                user.account_enabled = false;
            }
        }
        user.has_mailbox =
            kind == Kind::SharedMailbox || user.licenses.iter().any(|(sku, _)| SKUS[*sku].mailbox);
        // The admin came with the organisation; everyone else joined over the years after.
        user.created = if index == 0 {
            ORGANIZATION_CREATED + 600
        } else {
            ORGANIZATION_CREATED + 86_400 + (mix(r ^ 8) % ACCOUNT_SPAN_SECONDS as u64) as i64
        };
        user.mail_nickname = user.upn.split('@').next().unwrap_or_default().to_string();
        if let Some(mail) = &user.mail {
            user.proxy_addresses.push(format!("SMTP:{mail}"));
        }
        let local = user
            .mail
            .as_deref()
            .and_then(|m| m.split('@').next())
            .map(str::to_string);
        match (kind, local) {
            (Kind::Guest, _) => {
                // An invited guest: the address they were invited at is also their other mail.
                user.other_mails = user.mail.iter().cloned().collect();
            }
            (_, Some(local)) => {
                // Exchange gives every recipient an address on the initial domain; some people
                // also keep a short alias on the organisation's own domain.
                user.proxy_addresses
                    .push(format!("smtp:{local}@{}", self.initial_domain));
                let given = ascii_alias(given);
                let short = ascii_alias(surname);
                if kind != Kind::SharedMailbox
                    && (r >> 20).is_multiple_of(3)
                    && !given.is_empty()
                    && !short.is_empty()
                {
                    user.proxy_addresses.push(format!(
                        "smtp:{}{short}{index}@{}",
                        &given[..1],
                        self.custom_domain
                    ));
                }
            }
            _ => {}
        }
        if kind != Kind::Guest && (r >> 24).is_multiple_of(6) {
            user.other_mails
                .push(format!("{alias_base}{index}@outlook.com"));
        }
        let synced = matches!(
            kind,
            Kind::Licensed | Kind::Kiosk | Kind::Unlicensed | Kind::Disabled
        ) && index != 0
            && (r >> 28) % 5 < 2;
        if synced {
            user.on_premises = Some(self.on_premises(index, &alias_base, &user.display_name));
        }
        user
    }

    /// The on-premises side of a synced account: a `.local` forest named after the tenant.
    fn on_premises(&self, index: u64, alias_base: &str, display_name: &str) -> OnPremises {
        use base64::Engine;
        let forest = self.custom_domain.split('.').next().unwrap_or("corp");
        let suffix = index.to_string();
        let room = 20usize.saturating_sub(suffix.len());
        let sam: String = alias_base.chars().take(room).collect::<String>() + &suffix;
        let anchor = guid(hash3(self.seed, self.tenant_index, index), 0x0b5e);
        let domain = hash3(self.seed, self.tenant_index, 0x51d);
        OnPremises {
            immutable_id: base64::engine::general_purpose::STANDARD.encode(anchor.as_bytes()),
            domain_name: format!("{forest}.local"),
            user_principal_name: format!("{sam}@{forest}.local"),
            distinguished_name: format!("CN={display_name},OU=Staff,DC={forest},DC=local"),
            security_identifier: format!(
                "S-1-5-21-{}-{}-{}-{}",
                domain % 4_000_000_000,
                (domain >> 16) % 4_000_000_000,
                mix(domain) % 4_000_000_000,
                1_100 + index
            ),
            sam_account_name: sam,
        }
    }
}

impl SimUser {
    pub fn apply(&mut self, patch: &UserPatch) {
        if let Some(v) = &patch.display_name {
            self.display_name = v.clone();
        }
        if let Some(v) = &patch.job_title {
            self.job_title = Some(v.clone());
        }
        if let Some(v) = &patch.department {
            self.department = Some(v.clone());
        }
        if let Some(v) = patch.account_enabled {
            self.account_enabled = v;
        }
        if let Some(v) = &patch.mobile_phone {
            self.mobile_phone = Some(v.clone());
        }
        if let Some(addresses) = &patch.proxy_addresses {
            self.proxy_addresses = addresses.clone();
            if let Some(primary) = addresses.iter().find_map(|a| a.strip_prefix("SMTP:")) {
                self.mail = Some(primary.to_string());
            }
        }
        if let Some(v) = &patch.mail {
            self.mail = Some(v.clone());
            promote(&mut self.proxy_addresses, v);
        }
        if let Some(parts) = &patch.licenses {
            self.licenses = parts
                .iter()
                .filter_map(|p| {
                    SKUS.iter()
                        .position(|s| s.part_number.eq_ignore_ascii_case(p))
                })
                .map(|sku| (sku, vec![]))
                .collect();
            self.has_mailbox = self.kind == Kind::SharedMailbox
                || self.licenses.iter().any(|(sku, _)| SKUS[*sku].mailbox);
        }
    }

    /// The user as Graph shows it with `fields` selected: each property the simulator models
    /// with its value, and any other as Graph sends one that was never set.
    pub fn select(&self, fields: &[&str]) -> Value {
        let mut map = serde_json::Map::with_capacity(fields.len());
        for name in fields {
            let value = self
                .property(name, ToValue)
                .unwrap_or_else(|| crate::schema::unset(name));
            map.insert((*name).to_string(), value);
        }
        Value::Object(map)
    }

    /// The same as [`SimUser::select`], to be serialised straight into a page.
    pub fn selected<'a>(&'a self, fields: &'a [&'a str]) -> Selected<'a> {
        Selected { user: self, fields }
    }

    /// A property the simulator models, by its Graph name.
    fn property<S: PropertySink>(&self, name: &str, sink: S) -> Option<S::Out> {
        Some(match name {
            "id" => sink.put(&self.id),
            "businessPhones" => sink.put(&self.business_phones),
            "displayName" => sink.put(&self.display_name),
            "givenName" => sink.put(&self.given_name),
            "surname" => sink.put(&self.surname),
            "jobTitle" => sink.put(&self.job_title),
            "mail" => sink.put(&self.mail),
            "mobilePhone" => sink.put(&self.mobile_phone),
            "officeLocation" => sink.put(&self.office_location),
            "preferredLanguage" => {
                if self.user_type == "Guest" {
                    sink.put(&())
                } else {
                    sink.put(&"en-GB")
                }
            }
            "userPrincipalName" => sink.put(&self.upn),
            "department" => sink.put(&self.department),
            "accountEnabled" => sink.put(&self.account_enabled),
            "userType" => sink.put(&self.user_type),
            "usageLocation" => {
                if self.licenses.is_empty() {
                    sink.put(&())
                } else {
                    sink.put(&"GB")
                }
            }
            "createdDateTime" => sink.put(&iso(self.created)),
            "proxyAddresses" => sink.put(&self.proxy_addresses),
            "otherMails" => sink.put(&self.other_mails),
            "mailNickname" => sink.put(&self.mail_nickname),
            "onPremisesSyncEnabled" => sink.put(&self.on_premises.as_ref().map(|_| true)),
            "onPremisesImmutableId" => sink.put(&self.on_premises.as_ref().map(|o| &o.immutable_id)),
            "onPremisesSamAccountName" => {
                sink.put(&self.on_premises.as_ref().map(|o| &o.sam_account_name))
            }
            "onPremisesDomainName" => sink.put(&self.on_premises.as_ref().map(|o| &o.domain_name)),
            "onPremisesUserPrincipalName" => {
                sink.put(&self.on_premises.as_ref().map(|o| &o.user_principal_name))
            }
            "onPremisesDistinguishedName" => {
                sink.put(&self.on_premises.as_ref().map(|o| &o.distinguished_name))
            }
            "onPremisesSecurityIdentifier" => {
                sink.put(&self.on_premises.as_ref().map(|o| &o.security_identifier))
            }
            "creationType" => sink.put(&(self.kind == Kind::Guest).then_some("Invitation")),
            "externalUserState" => sink.put(&(self.kind == Kind::Guest).then_some("Accepted")),
            "externalUserStateChangeDateTime" => {
                sink.put(&(self.kind == Kind::Guest).then(|| iso(self.created + 2 * 86_400)))
            }
            "signInSessionsValidFromDateTime" => sink.put(&iso(self.created)),
            "deviceEnrollmentLimit" => sink.put(&5000),
            "securityIdentifier" => sink.put(&self.security_identifier()),
            "city" => sink.put(&self.office_place().map(|(city, _)| city)),
            "country" => sink.put(&self.office_place().map(|(_, country)| country)),
            "assignedPlans" => sink.put(&self.assigned_plans()),
            "provisionedPlans" => sink.put(&self.provisioned_plans()),
            "licenseAssignmentStates" => sink.put(
                &self
                    .licenses
                    .iter()
                    .map(|(sku, disabled)| {
                        json!({
                            "assignedByGroup": null, "disabledPlans": disabled, "error": "None",
                            "lastUpdatedDateTime": iso(self.created + 3_600), "skuId": SKUS[*sku].sku_id,
                            "state": "Active",
                        })
                    })
                    .collect::<Vec<Value>>(),
            ),
            "assignedLicenses" => sink.put(
                &self
                    .licenses
                    .iter()
                    .map(|(sku, disabled)| AssignedLicense {
                        disabled_plans: disabled,
                        sku_id: SKUS[*sku].sku_id,
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => return None,
        })
    }
}

/// One entry of `assignedLicenses`, written as it is, without a `Value` made of it first.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignedLicense<'a> {
    disabled_plans: &'a [&'static str],
    sku_id: &'static str,
}

/// Takes one property's value, whatever its type: a `Value` of it, or its entry written
/// straight into a page being serialised.
trait PropertySink {
    type Out;
    fn put<V: serde::Serialize + ?Sized>(self, value: &V) -> Self::Out;
}

struct ToValue;

impl PropertySink for ToValue {
    type Out = Value;
    fn put<V: serde::Serialize + ?Sized>(self, value: &V) -> Value {
        serde_json::to_value(value).expect("a simulated property is plain JSON")
    }
}

struct Entry<'m, 'k, M> {
    map: &'m mut M,
    key: &'k str,
}

impl<M: serde::ser::SerializeMap> PropertySink for Entry<'_, '_, M> {
    type Out = Result<(), M::Error>;
    fn put<V: serde::Serialize + ?Sized>(self, value: &V) -> Self::Out {
        self.map.serialize_entry(self.key, value)
    }
}

/// A user with some fields selected, serialised as Graph shows it without building a `Value`
/// of it first: a page of 999 users is written in a third of the time.
pub struct Selected<'a> {
    user: &'a SimUser,
    fields: &'a [&'a str],
}

impl serde::Serialize for Selected<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for name in self.fields {
            let entry = Entry {
                map: &mut map,
                key: name,
            };
            match self.user.property(name, entry) {
                Some(written) => written?,
                None => map.serialize_entry(name, &crate::schema::unset(name))?,
            }
        }
        map.end()
    }
}

impl SimUser {
    /// Each service plan the user's licences enable (those not disabled), once each.
    fn enabled_plans(&self) -> Vec<&'static crate::catalog::ServicePlan> {
        let mut plans: Vec<&'static crate::catalog::ServicePlan> = Vec::new();
        for (sku, disabled) in &self.licenses {
            for plan in SKUS[*sku].plans {
                if !disabled.contains(&plan.id) && !plans.iter().any(|p| p.id == plan.id) {
                    plans.push(plan);
                }
            }
        }
        plans
    }

    fn assigned_plans(&self) -> Vec<Value> {
        let assigned = iso(self.created + 3_600);
        self.enabled_plans()
            .into_iter()
            .map(|plan| {
                json!({
                    "assignedDateTime": assigned, "capabilityStatus": "Enabled",
                    "service": service_of(plan.name), "servicePlanId": plan.id,
                })
            })
            .collect()
    }

    /// Each service the enabled plans provision, once.
    fn provisioned_plans(&self) -> Vec<Value> {
        let mut services: Vec<&str> = self
            .enabled_plans()
            .into_iter()
            .map(|plan| service_of(plan.name))
            .collect();
        services.sort_unstable();
        services.dedup();
        services
            .into_iter()
            .map(|service| {
                json!({"capabilityStatus": "Enabled", "provisioningStatus": "Success", "service": service})
            })
            .collect()
    }

    /// Entra's SID of a cloud object: `S-1-12-1-` and the object id as four 32-bit numbers.
    fn security_identifier(&self) -> String {
        let b = self.id.as_bytes();
        let part = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        format!("S-1-12-1-{}-{}-{}-{}", part(0), part(4), part(8), part(12))
    }

    /// The city and country of the user's office, where it names one.
    fn office_place(&self) -> Option<(&'static str, &'static str)> {
        match self.office_location.as_deref()? {
            "London" => Some(("London", "United Kingdom")),
            "Leeds" => Some(("Leeds", "United Kingdom")),
            "Dublin" => Some(("Dublin", "Ireland")),
            "Amsterdam" => Some(("Amsterdam", "Netherlands")),
            "Kraków" => Some(("Kraków", "Poland")),
            "München" => Some(("München", "Germany")),
            _ => None,
        }
    }
}

/// The `service` an assigned plan names, as Microsoft's payloads write it.
fn service_of(plan: &str) -> &'static str {
    match plan {
        p if p.starts_with("EXCHANGE") => "exchange",
        p if p.starts_with("SHAREPOINT") => "SharePoint",
        "TEAMS1" => "TeamspaceAPI",
        "OFFICESUBSCRIPTION" => "MicrosoftOffice",
        "MCOSTANDARD" => "MicrosoftCommunicationsOnline",
        "INTUNE_A" => "SCO",
        "AAD_PREMIUM" => "AADPremiumService",
        "BI_AZURE_P0" => "PowerBI",
        "TEAMSPRO_MGMT" => "MicrosoftTeamsPro",
        "FLOW_P2_VIRAL" => "ProcessSimple",
        _ => "MicrosoftOffice",
    }
}

/// Makes `mail` the primary (`SMTP:`) address: a former primary stays as an alias, as Exchange
/// keeps it when the primary address changes.
fn promote(addresses: &mut Vec<String>, mail: &str) {
    for address in addresses.iter_mut() {
        if let Some(rest) = address.strip_prefix("SMTP:") {
            *address = format!("smtp:{rest}");
        }
    }
    let same = |a: &String| {
        a.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("smtp:"))
            && a.get(5..)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(mail))
    };
    addresses.retain(|a| !same(a));
    addresses.insert(0, format!("SMTP:{mail}"));
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since 1970.
fn iso(seconds: i64) -> String {
    format!("{}Z", crate::activity::iso(seconds))
}

fn capitalise_parts(alias: &str) -> String {
    alias
        .split('.')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Folds a name into the ASCII an Exchange alias would use: accents dropped, other marks removed.
pub fn ascii_alias(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'a'..='z' | '0'..='9' => Some(c.to_string()),
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => Some("a".into()),
            'æ' => Some("ae".into()),
            'ç' | 'ć' | 'č' => Some("c".into()),
            'è' | 'é' | 'ê' | 'ë' | 'ę' => Some("e".into()),
            'ì' | 'í' | 'î' | 'ï' | 'ı' => Some("i".into()),
            'ł' => Some("l".into()),
            'ñ' | 'ń' => Some("n".into()),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => Some("o".into()),
            'ś' | 'š' | 'ş' => Some("s".into()),
            'ù' | 'ú' | 'û' | 'ü' => Some("u".into()),
            'ý' | 'ÿ' => Some("y".into()),
            'ź' | 'ż' | 'ž' => Some("z".into()),
            'ß' => Some("ss".into()),
            'ễ' => Some("e".into()),
            _ => None,
        };
        if let Some(f) = folded {
            out.push_str(&f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population() -> Population {
        Population::new(
            42,
            0,
            "contoso.onmicrosoft.com".into(),
            "contoso.example".into(),
        )
    }

    #[test]
    fn users_are_deterministic_and_ids_reversible() {
        let p = population();
        let a = p.user(12345);
        let b = p.user(12345);
        assert_eq!(a.id, b.id);
        assert_eq!(a.upn, b.upn);
        assert_eq!(p.index_of(&a.id), Some(12345));
        assert_ne!(p.user(1).id, a.id);
        let other = Population::new(42, 1, "x".into(), "y".into());
        assert_eq!(other.index_of(&a.id), None);
    }

    #[test]
    fn scrambling_is_a_bijection() {
        for index in [0, 1, 2, 999, 1_000_000, LOW48] {
            assert_eq!(unscramble(scramble(index)), index);
        }
        assert_eq!(MULTIPLIER.wrapping_mul(INVERSE) & LOW48, 1);
    }

    #[test]
    fn a_thousand_users_have_every_kind() {
        let p = population();
        let kinds: Vec<Kind> = (0..1000).map(|i| p.user(i).kind).collect();
        for kind in [
            Kind::Licensed,
            Kind::Kiosk,
            Kind::Unlicensed,
            Kind::Disabled,
            Kind::Guest,
            Kind::SharedMailbox,
        ] {
            assert!(kinds.contains(&kind), "{kind:?} missing");
        }
        let guest = (0..1000)
            .map(|i| p.user(i))
            .find(|u| u.kind == Kind::Guest)
            .unwrap();
        assert!(
            guest.upn.contains("#EXT#@contoso.onmicrosoft.com"),
            "{}",
            guest.upn
        );
        assert!(guest.licenses.is_empty() && !guest.has_mailbox);
    }

    #[test]
    fn users_carry_addresses_creation_dates_and_sync_flags() {
        let p = population();
        let users: Vec<SimUser> = (0..1000).map(|i| p.user(i)).collect();
        for user in &users {
            match &user.mail {
                Some(mail) => assert_eq!(user.proxy_addresses[0], format!("SMTP:{mail}")),
                None => assert!(
                    user.proxy_addresses.is_empty(),
                    "{:?}",
                    user.proxy_addresses
                ),
            }
            let primaries = user
                .proxy_addresses
                .iter()
                .filter(|a| a.starts_with("SMTP:"));
            assert!(primaries.count() <= 1);
            assert!(user.created >= ORGANIZATION_CREATED, "{}", user.created);
            assert!(!user.mail_nickname.is_empty());
            if user.kind == Kind::Guest {
                assert!(user.on_premises.is_none());
                assert!(
                    user.mail_nickname.ends_with("#EXT#"),
                    "{}",
                    user.mail_nickname
                );
                assert_eq!(
                    user.other_mails,
                    user.mail.iter().cloned().collect::<Vec<_>>()
                );
            }
        }
        let aliased = |domain: &str| {
            users
                .iter()
                .filter(|u| {
                    u.proxy_addresses
                        .iter()
                        .any(|a| a.starts_with("smtp:") && a.ends_with(domain))
                })
                .count()
        };
        assert!(aliased("@contoso.onmicrosoft.com") > 500);
        assert!(aliased("@contoso.example") > 100);
        let synced = users.iter().filter(|u| u.on_premises.is_some()).count();
        assert!((200..500).contains(&synced), "{synced} synced");
        assert!(
            users[0].on_premises.is_none(),
            "the admin is a cloud account"
        );
        assert_eq!(
            p.user(77).created,
            users[77].created,
            "dates come from the seed"
        );
        assert_ne!(users[1].created, users[2].created);
        assert!(
            users
                .iter()
                .any(|u| !u.other_mails.is_empty() && u.kind != Kind::Guest)
        );
    }

    #[test]
    fn a_new_mail_becomes_the_primary_address_and_the_old_one_an_alias() {
        let p = population();
        let mut user = (0..100)
            .map(|i| p.user(i))
            .find(|u| u.kind == Kind::Licensed)
            .unwrap();
        let old = user.mail.clone().unwrap();
        user.apply(&UserPatch {
            mail: Some("ann.new@contoso.example".into()),
            ..UserPatch::default()
        });
        assert_eq!(user.proxy_addresses[0], "SMTP:ann.new@contoso.example");
        assert!(user.proxy_addresses.contains(&format!("smtp:{old}")));
        user.apply(&UserPatch {
            proxy_addresses: Some(vec![
                "smtp:x@contoso.example".into(),
                "SMTP:y@contoso.example".into(),
            ]),
            ..UserPatch::default()
        });
        assert_eq!(user.mail.as_deref(), Some("y@contoso.example"));
        assert_eq!(user.proxy_addresses.len(), 2);
    }

    #[test]
    fn aliases_are_ascii() {
        assert_eq!(ascii_alias("Zoë"), "zoe");
        assert_eq!(ascii_alias("Ó Súilleabháin"), "osuilleabhain");
        assert_eq!(ascii_alias("O'Brien"), "obrien");
        assert_eq!(ascii_alias("张"), "");
    }
}
