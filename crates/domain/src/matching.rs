//! How a tenant finds its organisation.
//!
//! In order: the organisation the tenant is already linked to; else the one organisation that
//! knows one of the tenant's verified domains; else the one free organisation whose name is the
//! tenant's once both are normalised (case, accents, punctuation, spacing and legal suffixes such
//! as "Ltd" or "GmbH" do not count). Failing those, up to three suggestions, best first, each with
//! a score and the rule that found it; and with no candidate at all, a new organisation where the
//! connection allows it. Nothing here reads or writes: the store gathers the candidates and
//! applies the decision.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// How many suggestions a tenant gets at most.
pub const MAX_SUGGESTIONS: usize = 3;
/// Below this score nothing is suggested.
pub const SUGGESTION_THRESHOLD: f64 = 0.75;

/// Legal forms dropped from the end of a name before names are compared.
const LEGAL_SUFFIXES: &[&str] = &[
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "llp",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "sarl",
    "bv",
    "nv",
    "pty",
    "plc",
    "co",
    "corp",
    "corporation",
    "company",
    "oy",
    "ab",
    "as",
    "aps",
    "kg",
    "kk",
    "srl",
    "spa",
];

/// Which rule linked a tenant to an organisation, or proposed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// The tenant was already linked to the organisation.
    TenantId,
    /// The organisation knows one of the tenant's verified domains.
    Domain,
    /// The names are the same once normalised.
    Name,
    /// One normalised name holds the other's words, in order.
    NameContains,
    /// The normalised names are close (edit distance).
    SimilarName,
    /// The organisation was created for the tenant.
    Created,
    /// A person decided (`m365sync match`, or `connection add --organization`).
    Person,
}

impl MatchRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantId => "tenant_id",
            Self::Domain => "domain",
            Self::Name => "name",
            Self::NameContains => "name_contains",
            Self::SimilarName => "similar_name",
            Self::Created => "created",
            Self::Person => "person",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::TenantId,
            Self::Domain,
            Self::Name,
            Self::NameContains,
            Self::SimilarName,
            Self::Created,
            Self::Person,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    /// The rule in a few words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::TenantId => "linked to this tenant",
            Self::Domain => "shares a verified domain",
            Self::Name => "same name",
            Self::NameContains => "one name contains the other",
            Self::SimilarName => "similar name",
            Self::Created => "created for this tenant",
            Self::Person => "chosen by a person",
        }
    }
}

impl std::fmt::Display for MatchRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a tenant stands with its organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    /// Linked to an organisation: its records are filed there.
    Matched,
    /// Awaiting a person's decision, with suggestions.
    Suggested,
    /// Awaiting a person's decision, with nothing to suggest.
    Unmatched,
    /// A person said to leave it alone: it is not synced and not asked about again.
    Ignored,
}

impl TenantState {
    pub const ALL: [Self; 4] = [
        Self::Matched,
        Self::Suggested,
        Self::Unmatched,
        Self::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::Suggested => "suggested",
            Self::Unmatched => "unmatched",
            Self::Ignored => "ignored",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for TenantState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tenant says about itself.
#[derive(Debug, Clone)]
pub struct TenantFacts {
    pub tenant_id: String,
    pub display_name: String,
    pub verified_domains: Vec<String>,
}

/// An organisation as the matcher sees it.
#[derive(Debug, Clone)]
pub struct OrganizationCandidate {
    pub id: i64,
    pub name: String,
    /// Domains known for it: its own and those of the tenants linked to it.
    pub domains: Vec<String>,
    /// The tenants linked to it.
    pub tenant_ids: Vec<String>,
}

/// An organisation proposed for a tenant, for a person to accept or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub organization_id: i64,
    /// 0–1: how sure the rule is.
    pub score: f64,
    pub rule: MatchRule,
}

/// What stands between the rules and the tenant: the person's earlier word and the connection's
/// setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// A person said to ignore the tenant.
    pub ignored: bool,
    /// The rules may link the tenant by themselves; false once a person has unlinked it.
    pub automatic: bool,
    /// The connection may create an organisation for the tenant.
    pub may_create: bool,
}

impl Default for Standing {
    fn default() -> Self {
        Self {
            ignored: false,
            automatic: true,
            may_create: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TenantDecision {
    /// File the tenant under this organisation.
    Match {
        organization_id: i64,
        rule: MatchRule,
    },
    /// Nothing fits: create an organisation named after the tenant.
    Create,
    /// A person must decide; these are the suggestions (perhaps none).
    Await(Vec<Suggestion>),
    /// A person said to leave the tenant alone.
    Ignored,
}

/// A name as it is compared: accents and case folded, `&` read as "and", dots and apostrophes
/// dropped, other punctuation and runs of spaces made one space, and legal suffixes taken off
/// the end (never the last word). Applying it twice gives what applying it once does.
pub fn normalize_name(name: &str) -> String {
    let mut folded = fold(name);
    // Unicode's case and compatibility mappings settle in a step or two; repeat until they do,
    // so that a normalised name is its own normal form.
    for _ in 0..4 {
        let again = fold(&folded);
        if again == folded {
            break;
        }
        folded = again;
    }
    let mut words: Vec<&str> = folded.split_whitespace().collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.contains(w)) {
        words.pop();
        // "Contoso & Co" → "contoso and co" → "contoso".
        if words.len() > 1 && words.last() == Some(&"and") {
            words.pop();
        }
    }
    words.join(" ")
}

fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        for lower in c.to_lowercase() {
            for d in std::iter::once(lower)
                .nfkd()
                .filter(|d| !is_combining_mark(*d))
            {
                match d {
                    '.' | '\'' | '’' | '`' => {}
                    '&' => out.push_str(" and "),
                    d if d.is_alphanumeric() => out.push(d),
                    _ => out.push(' '),
                }
            }
        }
    }
    out
}

/// Whether two names are the same once normalised. A name of nothing but punctuation is no one's.
pub fn same_name(a: &str, b: &str) -> bool {
    let a = normalize_name(a);
    !a.is_empty() && a == normalize_name(b)
}

fn lower_domains(domains: &[String]) -> Vec<String> {
    domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

fn shares_domain(tenant: &[String], candidate: &OrganizationCandidate) -> bool {
    let theirs = lower_domains(&candidate.domains);
    tenant.iter().any(|d| theirs.contains(d))
}

/// How well a candidate fits a tenant, by the best rule that finds it at all.
fn score(
    tenant_name: &str,
    tenant_domains: &[String],
    candidate: &OrganizationCandidate,
) -> Option<(f64, MatchRule)> {
    if shares_domain(tenant_domains, candidate) {
        return Some((0.95, MatchRule::Domain));
    }
    let theirs = normalize_name(&candidate.name);
    if tenant_name.is_empty() || theirs.is_empty() {
        return None;
    }
    if tenant_name == theirs {
        return Some((0.9, MatchRule::Name));
    }
    let similar = strsim::normalized_damerau_levenshtein(tenant_name, &theirs);
    let (short, long) = if tenant_name.chars().count() <= theirs.chars().count() {
        (tenant_name, theirs.as_str())
    } else {
        (theirs.as_str(), tenant_name)
    };
    let contains = holds_words(long, short).then(|| {
        let ratio = short.chars().count() as f64 / long.chars().count().max(1) as f64;
        0.75 + 0.1 * ratio
    });
    match contains {
        Some(c) if c >= similar => Some((c, MatchRule::NameContains)),
        _ if similar >= SUGGESTION_THRESHOLD => Some((similar, MatchRule::SimilarName)),
        _ => None,
    }
}

/// Whether `long` holds all of `short`'s words, one after another.
fn holds_words(long: &str, short: &str) -> bool {
    let long: Vec<&str> = long.split(' ').collect();
    let short: Vec<&str> = short.split(' ').collect();
    !short.is_empty() && long.len() > short.len() && long.windows(short.len()).any(|w| w == short)
}

/// Up to three organisations a person might link the tenant to, best first (ties by the older
/// organisation), none scoring under the threshold.
pub fn suggest(tenant: &TenantFacts, candidates: &[OrganizationCandidate]) -> Vec<Suggestion> {
    let name = normalize_name(&tenant.display_name);
    let domains = lower_domains(&tenant.verified_domains);
    let mut found: Vec<Suggestion> = candidates
        .iter()
        .filter_map(|c| {
            score(&name, &domains, c)
                .filter(|(s, _)| *s >= SUGGESTION_THRESHOLD)
                .map(|(score, rule)| Suggestion {
                    organization_id: c.id,
                    score: (score * 100.0).round() / 100.0,
                    rule,
                })
        })
        .collect();
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.organization_id.cmp(&b.organization_id))
    });
    found.truncate(MAX_SUGGESTIONS);
    found
}

/// Decides which organisation a tenant belongs to. An organisation that already has a tenant is
/// never taken by name alone (it may be a namesake): it is suggested instead.
pub fn decide(
    tenant: &TenantFacts,
    standing: Standing,
    candidates: &[OrganizationCandidate],
) -> TenantDecision {
    if standing.ignored {
        return TenantDecision::Ignored;
    }
    if let Some(linked) = candidates.iter().find(|c| {
        c.tenant_ids
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&tenant.tenant_id))
    }) {
        return TenantDecision::Match {
            organization_id: linked.id,
            rule: MatchRule::TenantId,
        };
    }
    if standing.automatic {
        let domains = lower_domains(&tenant.verified_domains);
        let by_domain: Vec<&OrganizationCandidate> = candidates
            .iter()
            .filter(|c| shares_domain(&domains, c))
            .collect();
        if let [only] = by_domain.as_slice() {
            return TenantDecision::Match {
                organization_id: only.id,
                rule: MatchRule::Domain,
            };
        }
        if by_domain.is_empty() {
            let by_name: Vec<&OrganizationCandidate> = candidates
                .iter()
                .filter(|c| same_name(&c.name, &tenant.display_name))
                .collect();
            if let [only] = by_name.as_slice()
                && only.tenant_ids.is_empty()
            {
                return TenantDecision::Match {
                    organization_id: only.id,
                    rule: MatchRule::Name,
                };
            }
        }
    }
    let suggestions = suggest(tenant, candidates);
    if suggestions.is_empty() && standing.automatic && standing.may_create {
        TenantDecision::Create
    } else {
        TenantDecision::Await(suggestions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn org(id: i64, name: &str, domains: &[&str], tenants: &[&str]) -> OrganizationCandidate {
        OrganizationCandidate {
            id,
            name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            tenant_ids: tenants.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn tenant(name: &str, domains: &[&str]) -> TenantFacts {
        TenantFacts {
            tenant_id: "T1".into(),
            display_name: name.into(),
            verified_domains: domains.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn decided(name: &str, domains: &[&str], orgs: &[OrganizationCandidate]) -> TenantDecision {
        decide(&tenant(name, domains), Standing::default(), orgs)
    }

    fn matched(id: i64, rule: MatchRule) -> TenantDecision {
        TenantDecision::Match {
            organization_id: id,
            rule,
        }
    }

    #[test]
    fn names_lose_case_accents_punctuation_spacing_and_legal_suffixes() {
        for (raw, normal) in [
            ("Contoso Ltd", "contoso"),
            ("  contoso,   LTD. ", "contoso"),
            ("Société Générale S.A.", "societe generale"),
            ("Müller GmbH & Co. KG", "muller"),
            ("Fabrikam Pty Ltd", "fabrikam"),
            ("Smith & Co.", "smith"),
            ("O’Brien Incorporated", "obrien"),
            ("Northwind-Traders, S.A.R.L.", "northwind traders"),
            ("Ltd", "ltd"),
            ("Contoso Ltd Holdings", "contoso ltd holdings"),
            ("...", ""),
        ] {
            assert_eq!(normalize_name(raw), normal, "{raw}");
        }
        assert!(same_name("Contoso Ltd", "contoso, LTD."));
        assert!(same_name("Contoso Limited", "CONTOSO INC"));
        assert!(
            !same_name("...", "!!!"),
            "punctuation alone is no one's name"
        );
    }

    #[test]
    fn a_linked_tenant_stays_with_its_organisation() {
        let orgs = [
            org(1, "Contoso", &["contoso.example"], &[]),
            org(2, "Renamed", &[], &["t1"]),
        ];
        assert_eq!(
            decided("Contoso", &["contoso.example"], &orgs),
            matched(2, MatchRule::TenantId)
        );
    }

    #[test]
    fn a_domain_known_for_exactly_one_organisation_links_before_the_name() {
        let orgs = [
            org(1, "Contoso", &[], &[]),
            org(2, "Acme Holdings", &["Contoso.Example"], &["other"]),
        ];
        assert_eq!(
            decided("Contoso", &["contoso.example"], &orgs),
            matched(2, MatchRule::Domain)
        );
        // Two organisations claim the domain: a person decides.
        let orgs = [
            org(1, "Acme", &["contoso.example"], &[]),
            org(2, "Acme Two", &["contoso.example"], &[]),
        ];
        let TenantDecision::Await(suggestions) = decided("Contoso", &["contoso.example"], &orgs)
        else {
            panic!("an ambiguous domain was decided");
        };
        assert_eq!(suggestions.len(), 2);
        assert!(suggestions.iter().all(|s| s.rule == MatchRule::Domain));
    }

    #[test]
    fn the_normalised_name_links_one_free_organisation_only() {
        let orgs = [
            org(7, "contoso, LTD.", &[], &[]),
            org(8, "Fabrikam", &[], &[]),
        ];
        assert_eq!(
            decided("Contoso Ltd", &[], &orgs),
            matched(7, MatchRule::Name)
        );
        // Two of that name: suggested, oldest first, not chosen.
        let orgs = [org(3, "Contoso Inc", &[], &[]), org(2, "CONTOSO", &[], &[])];
        let TenantDecision::Await(suggestions) = decided("Contoso Ltd", &[], &orgs) else {
            panic!("two namesakes were decided");
        };
        assert_eq!(
            suggestions
                .iter()
                .map(|s| (s.organization_id, s.rule))
                .collect::<Vec<_>>(),
            [(2, MatchRule::Name), (3, MatchRule::Name)]
        );
        // One of that name, already another tenant's: suggested, not taken.
        let orgs = [org(4, "Contoso", &[], &["other"])];
        assert!(matches!(
            decided("Contoso Ltd", &[], &orgs),
            TenantDecision::Await(s) if s.len() == 1 && s[0].organization_id == 4
        ));
    }

    #[test]
    fn close_names_are_suggested_with_their_rule_and_far_ones_are_not() {
        let orgs = [
            org(1, "Contosso", &[], &[]),
            org(2, "Contoso Holdings Group", &[], &[]),
            org(3, "Fabrikam", &[], &[]),
            org(4, "Tailspin Toys", &[], &[]),
        ];
        let TenantDecision::Await(suggestions) = decided("Contoso Ltd", &[], &orgs) else {
            panic!("no suggestions");
        };
        let rules: Vec<(i64, MatchRule)> = suggestions
            .iter()
            .map(|s| (s.organization_id, s.rule))
            .collect();
        assert_eq!(
            rules,
            [(1, MatchRule::SimilarName), (2, MatchRule::NameContains)]
        );
        assert!(suggestions[0].score > suggestions[1].score);
        assert!(
            suggestions
                .iter()
                .all(|s| (SUGGESTION_THRESHOLD..=1.0).contains(&s.score))
        );
        // "Contoso" inside "Contosoft" is not a word of it.
        assert_eq!(
            suggest(
                &tenant("Contoso", &[]),
                &[org(5, "Contosoft Works", &[], &[])]
            ),
            []
        );
    }

    #[test]
    fn nothing_near_creates_where_allowed_and_waits_where_not() {
        let orgs = [org(1, "Fabrikam", &["fabrikam.example"], &[])];
        assert_eq!(
            decided("Contoso", &["contoso.example"], &orgs),
            TenantDecision::Create
        );
        let standing = Standing {
            may_create: false,
            ..Standing::default()
        };
        assert_eq!(
            decide(&tenant("Contoso", &[]), standing, &orgs),
            TenantDecision::Await(vec![])
        );
    }

    #[test]
    fn a_tenant_a_person_unlinked_is_only_suggested_and_an_ignored_one_is_left_alone() {
        let orgs = [org(1, "Contoso", &["contoso.example"], &[])];
        let held = Standing {
            automatic: false,
            ..Standing::default()
        };
        let TenantDecision::Await(suggestions) =
            decide(&tenant("Contoso", &["contoso.example"]), held, &orgs)
        else {
            panic!("a tenant a person unlinked was linked again");
        };
        assert_eq!(suggestions[0].organization_id, 1);
        assert_eq!(
            decide(&tenant("Other", &[]), held, &[]),
            TenantDecision::Await(vec![]),
            "nor is an organisation created for it"
        );
        let ignored = Standing {
            ignored: true,
            ..Standing::default()
        };
        assert_eq!(
            decide(&tenant("Contoso", &["contoso.example"]), ignored, &orgs),
            TenantDecision::Ignored
        );
    }

    #[test]
    fn rules_and_states_read_back_what_they_write() {
        for rule in [
            MatchRule::TenantId,
            MatchRule::Domain,
            MatchRule::Name,
            MatchRule::NameContains,
            MatchRule::SimilarName,
            MatchRule::Created,
            MatchRule::Person,
        ] {
            assert_eq!(MatchRule::parse(rule.as_str()), Some(rule));
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::json!(rule.as_str())
            );
        }
        for state in TenantState::ALL {
            assert_eq!(TenantState::parse(state.as_str()), Some(state));
        }
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z]{2,9}".prop_filter("a legal suffix is not a name's last word", |w| {
            !LEGAL_SUFFIXES.contains(&w.as_str()) && w != "and"
        })
    }

    fn suffixes() -> impl Strategy<Value = Vec<(String, String)>> {
        let suffix = proptest::sample::select(LEGAL_SUFFIXES.to_vec());
        let punctuation = proptest::sample::select(vec![" ", ", ", ". ", " - ", "  ", ","]);
        prop::collection::vec(
            (suffix, punctuation, any::<bool>()).prop_map(|(s, p, upper)| {
                (
                    p.to_string(),
                    if upper {
                        s.to_uppercase()
                    } else {
                        s.to_string()
                    },
                )
            }),
            0..4,
        )
    }

    fn candidates() -> impl Strategy<Value = Vec<OrganizationCandidate>> {
        prop::collection::vec(
            (
                prop::collection::vec(word(), 1..4),
                prop::collection::vec("[a-c]\\.example", 0..2),
            ),
            0..12,
        )
        .prop_map(|orgs| {
            orgs.into_iter()
                .enumerate()
                .map(|(i, (words, domains))| OrganizationCandidate {
                    id: i as i64 + 1,
                    name: words.join(" "),
                    domains,
                    tenant_ids: Vec::new(),
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn normalising_twice_changes_nothing(name in any::<String>()) {
            let once = normalize_name(&name);
            prop_assert_eq!(normalize_name(&once), once);
        }

        #[test]
        fn a_name_always_matches_itself(name in "\\PC*") {
            let org = org(1, &name, &[], &[]);
            let decision = decided(&name, &[], std::slice::from_ref(&org));
            if normalize_name(&name).is_empty() {
                prop_assert_eq!(decision, TenantDecision::Create);
            } else {
                prop_assert_eq!(decision, matched(1, MatchRule::Name));
            }
        }

        #[test]
        fn suffixes_their_order_case_and_punctuation_do_not_matter(
            words in prop::collection::vec(word(), 1..4),
            first in suffixes(),
            second in suffixes(),
        ) {
            let base = words.join(" ");
            let dressed = |suffixes: &[(String, String)]| {
                let mut name = base.to_uppercase();
                for (punctuation, suffix) in suffixes {
                    name.push_str(punctuation);
                    name.push_str(suffix);
                }
                name
            };
            prop_assert_eq!(normalize_name(&dressed(&first)), base.clone());
            prop_assert!(same_name(&dressed(&first), &dressed(&second)));
        }

        #[test]
        fn suggestions_are_sorted_few_and_above_the_threshold(
            name in prop::collection::vec(word(), 1..4),
            domains in prop::collection::vec("[a-c]\\.example", 0..2),
            orgs in candidates(),
        ) {
            let facts = TenantFacts {
                tenant_id: "t".into(),
                display_name: name.join(" "),
                verified_domains: domains,
            };
            let found = suggest(&facts, &orgs);
            prop_assert!(found.len() <= MAX_SUGGESTIONS);
            for pair in found.windows(2) {
                prop_assert!(pair[0].score >= pair[1].score);
            }
            for s in &found {
                prop_assert!((SUGGESTION_THRESHOLD..=1.0).contains(&s.score));
            }
            let mut ids: Vec<i64> = found.iter().map(|s| s.organization_id).collect();
            ids.dedup();
            prop_assert_eq!(ids.len(), found.len());
        }
    }
}
