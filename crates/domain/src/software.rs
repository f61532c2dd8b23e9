//! Software consolidation: the apps Intune detects on devices, named as each installer names
//! itself ("7-Zip 23.01 (x64)", "Google Chrome", "Security Update for Microsoft Office 2016
//! (KB5002121) 64-Bit Edition"), cleaned and matched to products by a versioned rule file, with
//! the versions of each product and the devices and users per version and per tenant. What no
//! rule matches is kept as the unmatched residue, listed beside the products, never dropped.
//!
//! The rules ship with m365sync (`rules/software.toml`, read at build time) and an admin may add
//! a file of their own, read first so that its rules win.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// The rule file bundled with m365sync.
pub const BUNDLED_RULES: &str = include_str!("../rules/software.toml");
/// How the bundled file is named in errors and revisions.
pub const BUNDLED_RULES_NAME: &str = "bundled software rules";
/// The rule file format this version reads.
pub const RULES_FORMAT: i64 = 1;

/// A rule file that cannot be used, naming the file, the line and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    /// The product the faulty rule names, when the fault is inside one.
    pub rule: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, line {}", self.file, self.line)?;
        if let Some(rule) = &self.rule {
            write!(f, ", rule '{rule}'")?;
        }
        write!(f, ": {}. {}", self.problem, self.fix)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    format: toml::Spanned<i64>,
    revision: String,
    #[serde(default)]
    publishers: BTreeMap<String, String>,
    #[serde(default)]
    updates: Option<UpdatesDef>,
    #[serde(default)]
    product: Vec<toml::Spanned<ProductDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatesDef {
    name: String,
    publisher: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductDef {
    name: String,
    publisher: String,
    #[serde(rename = "match")]
    patterns: Vec<String>,
    #[serde(default)]
    publisher_match: Option<String>,
    /// Each major version is a product of its own (".NET Desktop Runtime 8" beside "… 6"):
    /// for what installs side by side and is supported, patched and removed per major.
    #[serde(default)]
    per_major: bool,
}

/// A glob on a cleaned name: `*` stands for any text; everything else is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(String);

impl Pattern {
    fn matches(&self, text: &str) -> bool {
        glob(self.0.as_bytes(), text.as_bytes())
    }
}

/// Whether `text` matches the glob `pattern` (`*` only), without backtracking blow-up: the
/// classic two-pointer walk that remembers the last star.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[derive(Debug, Clone)]
struct ProductRule {
    name: String,
    publisher: String,
    /// `publisher` as `publisher_key` writes it, to compare with a detected app's.
    publisher_key: String,
    patterns: Vec<Pattern>,
    publisher_pattern: Option<Pattern>,
    per_major: bool,
}

/// The rules in force: an admin's first, then the bundled ones.
#[derive(Debug, Clone)]
pub struct RuleSet {
    revisions: Vec<String>,
    publishers: HashMap<String, String>,
    updates: (String, String),
    products: Vec<ProductRule>,
}

/// Where each line of a file starts, so that the line of every rule is found by a binary
/// search rather than by counting the newlines before it again for each rule (which made
/// loading quadratic in the file's size).
struct Lines(Vec<usize>);

impl Lines {
    fn of(text: &str) -> Self {
        Self(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(at, _)| at + 1))
                .collect(),
        )
    }

    /// The 1-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.0.partition_point(|start| *start <= offset).max(1)
    }
}

impl RuleSet {
    /// The bundled rules alone. They are checked by a test, so this cannot fail in a build.
    pub fn bundled() -> Self {
        Self::parse(BUNDLED_RULES_NAME, BUNDLED_RULES)
            .unwrap_or_else(|e| panic!("the bundled software rules are broken: {e}"))
    }

    /// The bundled rules with an admin's file read first, so that its rules win.
    pub fn with_admin_file(file: &str, text: &str) -> Result<Self, RuleError> {
        let mut rules = Self::parse(file, text)?;
        let bundled = Self::bundled();
        rules.revisions.extend(bundled.revisions);
        for (alias, name) in bundled.publishers {
            rules.publishers.entry(alias).or_insert(name);
        }
        rules.products.extend(bundled.products);
        Ok(rules)
    }

    /// Reads one rule file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, RuleError> {
        let error = |line: usize, rule: Option<&str>, problem: String, fix: &str| RuleError {
            file: file.to_string(),
            line,
            rule: rule.map(str::to_string),
            problem,
            fix: fix.to_string(),
        };
        let lines = Lines::of(text);
        let parsed: RuleFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| lines.line_of(s.start));
            error(
                line,
                None,
                e.message().trim().to_string(),
                "Write the file as TOML with `format`, `revision`, `[publishers]` and `[[product]]` tables holding `name`, `publisher`, `match` and, optionally, `publisher_match`",
            )
        })?;
        if *parsed.format.get_ref() != RULES_FORMAT {
            return Err(error(
                lines.line_of(parsed.format.span().start),
                None,
                format!(
                    "format {} is not one this version reads",
                    parsed.format.get_ref()
                ),
                "Write `format = 1`",
            ));
        }
        let revision = parsed.revision.trim();
        if revision.is_empty() {
            return Err(error(
                1,
                None,
                "the revision is empty".into(),
                "Give the file a revision, such as `revision = \"2026.11.1\"`, so that each consolidation says which rules made it",
            ));
        }
        let mut products = Vec::new();
        for spanned in &parsed.product {
            let line = lines.line_of(spanned.span().start);
            let def = spanned.get_ref();
            let name = def.name.trim();
            let rule = Some(name).filter(|n| !n.is_empty());
            if name.is_empty() || def.publisher.trim().is_empty() {
                return Err(error(
                    line,
                    rule,
                    "a product needs a name and a publisher".into(),
                    "Give both `name` and `publisher`",
                ));
            }
            // The residue lists the apps Intune reported without a name under this name: a
            // product called so would be told from them by nothing.
            if name.eq_ignore_ascii_case(NAMELESS) {
                return Err(error(
                    line,
                    rule,
                    format!(
                        "'{NAMELESS}' names the apps Intune reported without a name, not a product"
                    ),
                    "Give the product the name it is sold under, such as `name = \"Contoso Timesheets\"`",
                ));
            }
            if def.patterns.is_empty() {
                return Err(error(
                    line,
                    rule,
                    "`match` is empty, so the rule matches nothing".into(),
                    "List at least one cleaned name, such as `match = [\"google chrome\"]`",
                ));
            }
            let mut patterns = Vec::new();
            for raw in &def.patterns {
                patterns.push(check_pattern(raw).map_err(|(problem, fix)| {
                    error(line, rule, format!("pattern '{raw}' {problem}"), &fix)
                })?);
            }
            let publisher_pattern = match &def.publisher_match {
                Some(raw) => Some(check_publisher_pattern(raw).map_err(|(problem, fix)| {
                    error(
                        line,
                        rule,
                        format!("publisher_match '{raw}' {problem}"),
                        &fix,
                    )
                })?),
                None => None,
            };
            products.push(ProductRule {
                name: name.to_string(),
                publisher: def.publisher.trim().to_string(),
                publisher_key: publisher_key(&def.publisher),
                patterns,
                publisher_pattern,
                per_major: def.per_major,
            });
        }
        let updates = parsed.updates.map_or_else(
            || {
                (
                    "Windows and Office updates".to_string(),
                    "Microsoft".to_string(),
                )
            },
            |u| (u.name.trim().to_string(), u.publisher.trim().to_string()),
        );
        Ok(Self {
            revisions: vec![format!("{file} {revision}")],
            publishers: parsed
                .publishers
                .into_iter()
                .map(|(alias, name)| (publisher_key(&alias), name.trim().to_string()))
                .collect(),
            updates,
            products,
        })
    }

    /// Which rules made a consolidation: each file's name and revision.
    pub fn revision(&self) -> String {
        self.revisions.join(" + ")
    }

    /// The publisher as the rules name it: a known vendor folded to one name, another one
    /// kept as written less its legal suffix.
    pub fn publisher(&self, raw: &str) -> Option<String> {
        let key = publisher_key(raw);
        if key.is_empty() {
            return None;
        }
        Some(
            self.publishers
                .get(&key)
                .cloned()
                .unwrap_or_else(|| strip_legal_suffix(raw.trim())),
        )
    }

    /// What one detected app is: a product (and version), or unmatched with its cleaned name.
    pub fn classify(
        &self,
        name: &str,
        publisher: Option<&str>,
        version: Option<&str>,
    ) -> Classified {
        let cleaned = clean_name(name);
        let publisher_key = publisher.map(publisher_key).unwrap_or_default();
        let version = version
            .and_then(normalise_version)
            .or_else(|| cleaned.version_in_name.clone());
        if let Some(kb) = &cleaned.update {
            return Classified {
                product: Some((self.updates.0.clone(), self.updates.1.clone())),
                version: Some(kb.clone()),
                cleaned,
            };
        }
        // A rule names its vendor's product only: an app from another publisher under the
        // same words ("Zoom" by someone else) is not it. Without a publisher there is nothing
        // to tell them apart by, and the name decides.
        let same_vendor = |rule: &ProductRule| match &rule.publisher_pattern {
            Some(p) => p.matches(&publisher_key),
            None => {
                publisher_key.is_empty()
                    || publisher_key == rule.publisher_key
                    || publisher
                        .and_then(|p| self.publisher(p))
                        .is_some_and(|folded| publisher_key_eq(&folded, &rule.publisher_key))
            }
        };
        // The whole cleaned name first, then without its edition, so that "WhatsApp Business"
        // is the rule naming it, not the rule for "WhatsApp" its edition-less name matches.
        let found = [&cleaned.full, &cleaned.base].into_iter().find_map(|name| {
            self.products
                .iter()
                .find(|rule| same_vendor(rule) && rule.patterns.iter().any(|p| p.matches(name)))
        });
        let product = found.map(|rule| {
            let major = rule
                .per_major
                .then(|| {
                    cleaned
                        .version_in_name
                        .as_deref()
                        .or(version.as_deref())
                        .and_then(major_of)
                })
                .flatten();
            let name = match major {
                Some(major) => format!("{} {major}", rule.name),
                None => rule.name.clone(),
            };
            (name, rule.publisher.clone())
        });
        Classified {
            product,
            version,
            cleaned,
        }
    }
}

fn publisher_key_eq(name: &str, key: &str) -> bool {
    publisher_key(name) == key
}

/// A version as people compare it: trimmed, without a leading "v" or "version" ("v8.6.9" and
/// "8.6.9" are one version); none when nothing is left.
pub fn normalise_version(raw: &str) -> Option<String> {
    let mut version = raw.trim();
    for prefix in ["version ", "version", "v"] {
        if let Some(rest) = version
            .get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &version[prefix.len()..])
            && rest.trim_start().starts_with(|c: char| c.is_ascii_digit())
        {
            version = rest.trim_start();
            break;
        }
    }
    Some(version.to_string()).filter(|v| !v.is_empty())
}

/// The major number of a version ("8" of "8.0.11"), when it starts with one.
fn major_of(version: &str) -> Option<String> {
    let digits: String = version
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let major = digits.trim_start_matches('0');
    (!digits.is_empty()).then(|| if major.is_empty() { "0" } else { major }.to_string())
}

fn check_pattern(raw: &str) -> Result<Pattern, (String, String)> {
    let pattern = raw.trim().to_lowercase();
    if pattern.chars().all(|c| c == '*' || c.is_whitespace()) {
        return Err((
            "matches every name".into(),
            "Name the product's words, such as \"google chrome*\"".into(),
        ));
    }
    if !pattern.contains('*') {
        let cleaned = clean_name(&pattern);
        if cleaned.full != pattern {
            return Err((
                format!(
                    "can never match: cleaning turns such a name into '{}'",
                    cleaned.full
                ),
                format!("Write the cleaned name, '{}'", cleaned.full),
            ));
        }
    }
    Ok(Pattern(pattern))
}

fn check_publisher_pattern(raw: &str) -> Result<Pattern, (String, String)> {
    let pattern = raw.trim().to_lowercase();
    if pattern.is_empty() {
        return Err((
            "is empty".into(),
            "Leave publisher_match out, or name the publisher".into(),
        ));
    }
    Ok(Pattern(pattern))
}

/// What the rules made of one detected app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// (product, publisher) when a rule matched.
    pub product: Option<(String, String)>,
    pub version: Option<String>,
    pub cleaned: CleanName,
}

/// A detected app's name with the noise taken out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CleanName {
    /// Lower case, without trademark signs, architecture, language tags and versions.
    pub full: String,
    /// `full` without trailing editions ("professional", "community edition").
    pub base: String,
    pub edition: Option<String>,
    pub architecture: Option<String>,
    /// A version number written into the name ("23.01" of "7-Zip 23.01 (x64)").
    pub version_in_name: Option<String>,
    /// The KB number of a Windows or Office update.
    pub update: Option<String>,
}

const ARCHITECTURES: &[&str] = &[
    "x64", "x86", "x86_64", "x86-64", "amd64", "arm64", "aarch64", "win64", "win32", "64-bit",
    "32-bit", "64bit", "32bit", "ia64",
];
const EDITIONS: &[&str] = &[
    "professional",
    "pro",
    "enterprise",
    "standard",
    "home",
    "community",
    "ultimate",
    "premium",
    "business",
    "education",
    "express",
    "edition",
];
/// Words inside brackets that say how or for whom an app was installed, not what it is.
const SCOPES: &[&str] = &[
    "user",
    "machine",
    "machine-wide",
    "per-user",
    "system",
    "bit",
    "edition",
];

fn is_language_tag(token: &str) -> bool {
    let bytes = token.as_bytes();
    bytes.len() == 5
        && bytes[2] == b'-'
        && bytes[..2].iter().all(u8::is_ascii_lowercase)
        && bytes[3..].iter().all(u8::is_ascii_lowercase)
}

fn is_version(token: &str) -> bool {
    let body = token.strip_prefix('v').unwrap_or(token);
    let mut parts = body.split('.');
    let first = parts.next().unwrap_or_default();
    !first.is_empty()
        && first.bytes().all(|b| b.is_ascii_digit())
        && body.contains('.')
        && parts.all(|p| {
            !p.is_empty()
                && p.bytes().next().is_some_and(|b| b.is_ascii_digit())
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'+')
        })
}

fn kb_number(token: &str) -> Option<String> {
    let digits = token.strip_prefix("kb")?;
    (6..=8)
        .contains(&digits.len())
        .then_some(())
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .map(|_| format!("KB{digits}"))
}

/// Cleans a detected app's name (see the module's top).
pub fn clean_name(raw: &str) -> CleanName {
    let mut text: String = raw.nfkc().collect::<String>().to_lowercase();
    for mark in ['®', '™', '©'] {
        text = text.replace(mark, " ");
    }
    for mark in ["(r)", "(tm)", "(c)"] {
        text = text.replace(mark, " ");
    }
    let mut cleaned = CleanName::default();
    // Brackets: kept as words unless everything inside is noise.
    let mut kept = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find(['(', '[']) {
        kept.push_str(&rest[..open]);
        let close_char = if rest.as_bytes()[open] == b'(' {
            ')'
        } else {
            ']'
        };
        let Some(close) = rest[open..].find(close_char).map(|c| open + c) else {
            kept.push_str(&rest[open + 1..]);
            rest = "";
            break;
        };
        let inside = &rest[open + 1..close];
        let tokens: Vec<&str> = inside
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|t| !t.is_empty())
            .collect();
        // Inside brackets a bare two-letter word is a language, as in "(x64 de)".
        let noise = tokens.iter().all(|t| {
            (t.len() == 2 && t.bytes().all(|b| b.is_ascii_lowercase()))
                || ARCHITECTURES.contains(t)
                || is_language_tag(t)
                || is_version(t)
                || kb_number(t).is_some()
                || SCOPES.contains(t)
                || *t == "64"
                || *t == "32"
        });
        if noise {
            for t in &tokens {
                note_noise(&mut cleaned, t);
            }
            kept.push(' ');
        } else {
            kept.push(' ');
            kept.push_str(inside);
            kept.push(' ');
        }
        rest = &rest[close + 1..];
    }
    kept.push_str(rest);
    let mut words: Vec<&str> = Vec::new();
    let raw_words: Vec<&str> = kept.split_whitespace().collect();
    let mut i = 0;
    while i < raw_words.len() {
        let word = raw_words[i].trim_matches(|c| c == ',' || c == ';');
        let next = raw_words.get(i + 1).copied();
        if ARCHITECTURES.contains(&word) || is_language_tag(word) || is_version(word) {
            note_noise(&mut cleaned, word);
        } else if let Some(kb) = kb_number(word) {
            cleaned.update = Some(kb);
        } else if (word == "64" || word == "32") && matches!(next, Some("bit") | Some("bits")) {
            note_noise(&mut cleaned, word);
            i += 1;
        } else if word == "-" && (i + 1 == raw_words.len() || next.is_some_and(is_noise_word)) {
            // A dash before noise ("Zoom - x64") goes with it.
        } else if !word.is_empty() {
            words.push(word);
        }
        i += 1;
    }
    while words
        .last()
        .is_some_and(|w| matches!(*w, "-" | ":" | "|" | "for"))
    {
        words.pop();
    }
    cleaned.full = words.join(" ");
    let mut base = words.clone();
    let mut edition = Vec::new();
    while base.len() > 1
        && base.last().is_some_and(|w| EDITIONS.contains(w))
        && !matches!(base[base.len() - 2], "for" | "of" | "and")
    {
        edition.insert(0, base.pop().unwrap_or_default());
        while base.last().is_some_and(|w| *w == "-") {
            base.pop();
        }
    }
    if !edition.is_empty() {
        cleaned.edition = Some(edition.join(" "));
    }
    cleaned.base = base.join(" ");
    cleaned
}

fn is_noise_word(word: &str) -> bool {
    ARCHITECTURES.contains(&word) || is_language_tag(word) || is_version(word)
}

fn note_noise(cleaned: &mut CleanName, token: &str) {
    if ARCHITECTURES.contains(&token) || token == "64" || token == "32" {
        let arch = match token {
            "x86" | "32-bit" | "32bit" | "win32" | "32" => "x86",
            "arm64" | "aarch64" => "arm64",
            _ => "x64",
        };
        cleaned.architecture = Some(arch.to_string());
    } else if is_version(token) && cleaned.version_in_name.is_none() {
        cleaned.version_in_name = Some(token.trim_start_matches('v').to_string());
    } else if let Some(kb) = kb_number(token) {
        cleaned.update = Some(kb);
    }
}

const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "corporation",
    "corp",
    "llc",
    "ltd",
    "limited",
    "gmbh",
    "ag",
    "co",
    "company",
    "s.a",
    "sa",
    "b.v",
    "bv",
    "ab",
    "oy",
    "sas",
    "srl",
    "plc",
    "l.p",
    "lp",
    "pty",
];

/// A publisher's lower-case key: trademark signs, punctuation at word ends and legal suffixes
/// ("Inc.", "Corporation", "GmbH") taken out.
pub fn publisher_key(raw: &str) -> String {
    let lower: String = raw.nfkc().collect::<String>().to_lowercase();
    let mut words: Vec<String> = lower
        .replace(['®', '™', '©'], " ")
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c| c == ',' || c == '.' || c == '"')
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1
        && words
            .last()
            .is_some_and(|w| LEGAL_SUFFIXES.contains(&w.as_str()))
    {
        words.pop();
    }
    words.join(" ")
}

fn strip_legal_suffix(raw: &str) -> String {
    let mut words: Vec<&str> = raw.split_whitespace().collect();
    while words.len() > 1
        && words.last().is_some_and(|w| {
            let key = w.trim_matches(|c| c == ',' || c == '.').to_lowercase();
            LEGAL_SUFFIXES.contains(&key.as_str())
        })
    {
        words.pop();
    }
    words.join(" ").trim_end_matches(',').to_string()
}

/// Orders versions as people read them: numeric parts as numbers ("10.2" after "9.12"),
/// other parts as text, a longer version after its prefix.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<String> {
        v.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|p| !p.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    pa.len().cmp(&pb.len())
}

/// One detected app of one tenant as the store keeps it: a name and version Intune saw, and
/// the devices it saw them on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedApp {
    pub name: String,
    pub publisher: Option<String>,
    pub version: Option<String>,
    /// Shared: a large tenant's common apps are each on tens of thousands of devices, and one
    /// allocation per device serves every app it has.
    pub device_ids: Vec<std::sync::Arc<str>>,
}

/// One version of a product in a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionCount {
    pub version: String,
    pub devices: u64,
    pub users: u64,
}

/// A product (or, unmatched, a cleaned name) in one tenant: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantProduct {
    pub product: String,
    pub publisher: Option<String>,
    /// Whether a rule named it; an unmatched one is the residue, under its cleaned name.
    pub matched: bool,
    pub devices: u64,
    pub users: u64,
    pub latest_version: Option<String>,
    pub oldest_version: Option<String>,
    /// The names it was detected under, as Intune gave them.
    pub raw_names: Vec<String>,
    /// Newest first.
    pub versions: Vec<VersionCount>,
    /// Why an unmatched entry is not a product at all (an app Intune reported without a
    /// name); none for a product or an ordinary unmatched name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the residue calls the apps Intune reported without a name.
pub const NAMELESS: &str = "(no name)";
const NAMELESS_REASON: &str =
    "Intune reported these apps without a name: they are counted here, never as a product";

/// A tenant's software consolidated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consolidation {
    pub rules_revision: String,
    pub detected_apps: u64,
    pub products: Vec<TenantProduct>,
}

impl Consolidation {
    pub fn matched(&self) -> impl Iterator<Item = &TenantProduct> {
        self.products.iter().filter(|p| p.matched)
    }
    pub fn residue(&self) -> impl Iterator<Item = &TenantProduct> {
        self.products.iter().filter(|p| !p.matched)
    }
}

const UNKNOWN_VERSION: &str = "unknown";

/// Consolidates one tenant's detected apps. `user_of_device` gives a device's primary user,
/// where known, so that users are counted once whatever the number of their devices.
pub fn consolidate(
    rules: &RuleSet,
    apps: &[DetectedApp],
    user_of_device: &HashMap<String, String>,
) -> Consolidation {
    #[derive(Default)]
    struct Building<'a> {
        publisher: Option<String>,
        matched: bool,
        raw_names: BTreeSet<&'a str>,
        /// Devices by their number in `numbered`, sorted and made unique once all are in.
        devices: Vec<u32>,
        versions: BTreeMap<String, Vec<u32>>,
    }
    let mut building: BTreeMap<(bool, String), Building> = BTreeMap::new();
    // Each device gets a number, and products and versions keep numbers: a large tenant's apps
    // are on millions of devices in all, and sets of device names took hundreds of MB.
    let mut number_of: HashMap<&str, u32> = HashMap::new();
    let mut numbered: Vec<&str> = Vec::new();
    // An app Intune lists on no device (uninstalled everywhere since) is installed nowhere: it
    // makes no product, no version, no newest or oldest.
    for app in apps.iter().filter(|a| !a.device_ids.is_empty()) {
        let classified =
            rules.classify(&app.name, app.publisher.as_deref(), app.version.as_deref());
        let nameless = app.name.trim().is_empty();
        let (key, publisher) = match &classified.product {
            // A blank name says nothing of what the app is: whatever its publisher, it is
            // residue, never a product.
            _ if nameless => ((false, NAMELESS.to_string()), None),
            Some((product, publisher)) => ((true, product.clone()), Some(publisher.clone())),
            None => {
                let name = if classified.cleaned.base.is_empty() {
                    app.name.trim().to_string()
                } else {
                    classified.cleaned.base.clone()
                };
                (
                    (false, name),
                    app.publisher.as_deref().and_then(|p| rules.publisher(p)),
                )
            }
        };
        let entry = building.entry(key.clone()).or_default();
        entry.matched = key.0;
        if entry.publisher.is_none() {
            entry.publisher = publisher;
        }
        if !nameless {
            entry.raw_names.insert(app.name.as_str());
        }
        let version = classified
            .version
            .unwrap_or_else(|| UNKNOWN_VERSION.to_string());
        let on = entry.versions.entry(version).or_default();
        for device in &app.device_ids {
            let number = *number_of.entry(device).or_insert_with(|| {
                numbered.push(device);
                u32::try_from(numbered.len() - 1).unwrap_or(u32::MAX)
            });
            on.push(number);
            entry.devices.push(number);
        }
    }
    for entry in building.values_mut() {
        for devices in entry.versions.values_mut().chain([&mut entry.devices]) {
            devices.sort_unstable();
            devices.dedup();
        }
    }
    let users = |devices: &[u32]| -> u64 {
        devices
            .iter()
            .filter_map(|d| user_of_device.get(numbered[*d as usize]))
            .collect::<BTreeSet<_>>()
            .len() as u64
    };
    let mut products: Vec<TenantProduct> = building
        .into_iter()
        .map(|((matched, product), b)| {
            let mut versions: Vec<VersionCount> = b
                .versions
                .iter()
                .map(|(version, devices)| VersionCount {
                    version: version.clone(),
                    devices: devices.len() as u64,
                    users: users(devices),
                })
                .collect();
            versions.sort_by(|x, y| compare_versions(&y.version, &x.version));
            let known: Vec<&VersionCount> = versions
                .iter()
                .filter(|v| v.version != UNKNOWN_VERSION)
                .collect();
            let reason = (!matched && product == NAMELESS).then(|| NAMELESS_REASON.to_string());
            TenantProduct {
                product,
                publisher: b.publisher,
                matched,
                devices: b.devices.len() as u64,
                users: users(&b.devices),
                latest_version: known.first().map(|v| v.version.clone()),
                oldest_version: known.last().map(|v| v.version.clone()),
                raw_names: b.raw_names.iter().map(|n| n.to_string()).collect(),
                versions,
                reason,
            }
        })
        .collect();
    products.sort_by(|a, b| {
        b.matched
            .cmp(&a.matched)
            .then(b.devices.cmp(&a.devices))
            .then(a.product.cmp(&b.product))
    });
    Consolidation {
        rules_revision: rules.revision(),
        detected_apps: apps.len() as u64,
        products,
    }
}

/// One tenant's share of a product across tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantShare {
    pub organization: String,
    pub tenant_id: String,
    pub devices: u64,
    pub users: u64,
    pub latest_version: Option<String>,
    pub oldest_version: Option<String>,
}

/// A version across tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionAcross {
    pub version: String,
    pub devices: u64,
    pub users: u64,
    pub tenants: u64,
}

/// A product across every tenant given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub product: String,
    pub publisher: Option<String>,
    pub matched: bool,
    pub devices: u64,
    pub users: u64,
    pub latest_version: Option<String>,
    pub oldest_version: Option<String>,
    pub raw_names: Vec<String>,
    pub versions: Vec<VersionAcross>,
    pub tenants: Vec<TenantShare>,
    /// Why an unmatched entry is not a product (see `TenantProduct::reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Each tenant's products, as kept, with the organisation and tenant they belong to.
pub struct Stored {
    pub organization: String,
    pub tenant_id: String,
    pub product: TenantProduct,
}

/// Products across tenants: devices and users add up (a device or user is in one tenant).
pub fn across_tenants(stored: Vec<Stored>) -> Vec<Product> {
    let mut merged: BTreeMap<(bool, String), Product> = BTreeMap::new();
    // A consolidation kept before apps on no device were left out may still hold them: a
    // product or version on no device is installed nowhere, and counts nowhere.
    for s in stored.into_iter().filter(|s| s.product.devices > 0) {
        let mut p = s.product;
        p.versions.retain(|v| v.devices > 0);
        let known: Vec<&VersionCount> = p
            .versions
            .iter()
            .filter(|v| v.version != UNKNOWN_VERSION)
            .collect();
        p.latest_version = known.first().map(|v| v.version.clone());
        p.oldest_version = known.last().map(|v| v.version.clone());
        let entry = merged
            .entry((p.matched, p.product.clone()))
            .or_insert_with(|| Product {
                product: p.product.clone(),
                publisher: p.publisher.clone(),
                matched: p.matched,
                devices: 0,
                users: 0,
                latest_version: None,
                oldest_version: None,
                raw_names: Vec::new(),
                versions: Vec::new(),
                tenants: Vec::new(),
                reason: p.reason.clone(),
            });
        entry.devices += p.devices;
        entry.users += p.users;
        for name in &p.raw_names {
            if !entry.raw_names.contains(name) {
                entry.raw_names.push(name.clone());
            }
        }
        for v in &p.versions {
            match entry.versions.iter_mut().find(|e| e.version == v.version) {
                Some(e) => {
                    e.devices += v.devices;
                    e.users += v.users;
                    e.tenants += 1;
                }
                None => entry.versions.push(VersionAcross {
                    version: v.version.clone(),
                    devices: v.devices,
                    users: v.users,
                    tenants: 1,
                }),
            }
        }
        entry.tenants.push(TenantShare {
            organization: s.organization,
            tenant_id: s.tenant_id,
            devices: p.devices,
            users: p.users,
            latest_version: p.latest_version,
            oldest_version: p.oldest_version,
        });
    }
    let mut products: Vec<Product> = merged
        .into_values()
        .map(|mut p| {
            p.raw_names.sort();
            p.versions
                .sort_by(|x, y| compare_versions(&y.version, &x.version));
            let known: Vec<&VersionAcross> = p
                .versions
                .iter()
                .filter(|v| v.version != UNKNOWN_VERSION)
                .collect();
            p.latest_version = known.first().map(|v| v.version.clone());
            p.oldest_version = known.last().map(|v| v.version.clone());
            p
        })
        .collect();
    products.sort_by(|a, b| {
        b.matched
            .cmp(&a.matched)
            .then(b.devices.cmp(&a.devices))
            .then(a.product.cmp(&b.product))
    });
    products
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, publisher: &str, version: &str, devices: &[&str]) -> DetectedApp {
        DetectedApp {
            name: name.into(),
            publisher: Some(publisher.into()),
            version: Some(version.into()),
            device_ids: devices.iter().map(|d| (*d).into()).collect(),
        }
    }

    #[test]
    fn the_bundled_rules_parse_and_name_their_revision() {
        let rules = RuleSet::bundled();
        assert!(rules.revision().starts_with("bundled software rules 20"));
        assert!(rules.products.len() > 40);
    }

    #[test]
    fn names_lose_trademarks_architecture_languages_versions_and_editions() {
        let c = clean_name("7-Zip 23.01 (x64)");
        assert_eq!(c.full, "7-zip");
        assert_eq!(c.version_in_name.as_deref(), Some("23.01"));
        assert_eq!(c.architecture.as_deref(), Some("x64"));
        let c = clean_name("Microsoft® Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135");
        assert_eq!(c.full, "microsoft visual c++ 2015-2022 redistributable");
        assert_eq!(c.architecture.as_deref(), Some("x86"));
        let c = clean_name("Microsoft 365 Apps for enterprise - en-us");
        assert_eq!(c.full, "microsoft 365 apps for enterprise");
        assert_eq!(c.base, "microsoft 365 apps for enterprise");
        let c = clean_name("Notepad++ (64-bit x64)");
        assert_eq!(c.full, "notepad++");
        let c = clean_name("WhatsApp Business");
        assert_eq!(
            (c.full.as_str(), c.base.as_str()),
            ("whatsapp business", "whatsapp")
        );
        assert_eq!(c.edition.as_deref(), Some("business"));
        let c = clean_name("Java(TM) 8 Update 401 (64-bit)");
        assert_eq!(c.full, "java 8 update 401");
        let c = clean_name("Mozilla Firefox (x64 de-DE)");
        assert_eq!(c.full, "mozilla firefox");
        let c = clean_name("Security Update for Microsoft Office 2016 (KB5002121) 64-Bit Edition");
        assert_eq!(c.update.as_deref(), Some("KB5002121"));
        let c = clean_name("Python 3.12.1 Core Interpreter (64-bit)");
        assert_eq!(c.full, "python core interpreter");
        assert_eq!(c.version_in_name.as_deref(), Some("3.12.1"));
    }

    #[test]
    fn noisy_names_of_one_product_become_that_product() {
        let rules = RuleSet::bundled();
        for (raw, publisher, product) in [
            ("7-Zip 23.01 (x64)", "Igor Pavlov", "7-Zip"),
            ("7-Zip 19.00", "Igor Pavlov", "7-Zip"),
            ("Google Chrome", "Google LLC", "Google Chrome"),
            ("Mozilla Firefox (x64 en-US)", "Mozilla", "Mozilla Firefox"),
            (
                "Mozilla Firefox ESR (x64 en-US)",
                "Mozilla",
                "Mozilla Firefox",
            ),
            (
                "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33135",
                "Microsoft Corporation",
                "Microsoft Visual C++ 2015-2022 Redistributable",
            ),
            (
                "Microsoft 365 Apps for business - de-de",
                "Microsoft Corporation",
                "Microsoft 365 Apps",
            ),
            (
                "Adobe Acrobat Reader DC MUI",
                "Adobe Systems Incorporated",
                "Adobe Acrobat Reader",
            ),
            (
                "Microsoft 365 - en-us",
                "Microsoft Corporation",
                "Microsoft 365 Apps",
            ),
            ("Mozilla Firefox (x64 de)", "Mozilla", "Mozilla Firefox"),
            (
                "Microsoft ASP.NET Core 8.0.11 - Shared Framework (x64)",
                "Microsoft Corporation",
                "Microsoft ASP.NET Core Runtime 8",
            ),
            (
                "Python 3.11.4 Core Interpreter (64-bit)",
                "Python Software Foundation",
                "Python",
            ),
            (
                "Zoom(64bit)",
                "Zoom Video Communications, Inc.",
                "Zoom Workplace",
            ),
            (
                "Java 8 Update 401 (64-bit)",
                "Oracle Corporation",
                "Java Runtime Environment",
            ),
            (
                "Visual Studio Professional 2022",
                "Microsoft Corporation",
                "Visual Studio",
            ),
            (
                "Microsoft Visual Studio Code (User)",
                "Microsoft Corporation",
                "Visual Studio Code",
            ),
            (
                "Update for Windows 10 for x64-based Systems (KB5001716)",
                "Microsoft Corporation",
                "Windows and Office updates",
            ),
        ] {
            let c = rules.classify(raw, Some(publisher), None);
            assert_eq!(
                c.product.as_ref().map(|p| p.0.as_str()),
                Some(product),
                "{raw} cleaned to {:?}",
                c.cleaned
            );
        }
        let update = rules.classify(
            "Security Update for Microsoft Office 2016 (KB5002121) 64-Bit Edition",
            None,
            Some("1.0"),
        );
        assert_eq!(update.version.as_deref(), Some("KB5002121"));
        assert!(
            rules
                .classify("Contoso Timesheets", None, None)
                .product
                .is_none()
        );
    }

    #[test]
    fn publishers_are_folded_to_one_name() {
        let rules = RuleSet::bundled();
        assert_eq!(
            rules.publisher("Microsoft Corporation").as_deref(),
            Some("Microsoft")
        );
        assert_eq!(
            rules.publisher("Adobe Systems Incorporated").as_deref(),
            Some("Adobe")
        );
        assert_eq!(rules.publisher("Contoso Ltd.").as_deref(), Some("Contoso"));
        assert_eq!(rules.publisher("  "), None);
    }

    #[test]
    fn versions_order_as_numbers() {
        assert_eq!(compare_versions("10.2", "9.12"), Ordering::Greater);
        assert_eq!(
            compare_versions("131.0.6778.86", "131.0.6778.108"),
            Ordering::Less
        );
        assert_eq!(compare_versions("1.2", "1.2.0"), Ordering::Less);
        assert_eq!(
            compare_versions("24.004.20272", "24.004.20272"),
            Ordering::Equal
        );
    }

    #[test]
    fn globs_match_whole_names_with_stars_anywhere() {
        assert!(glob(b"google chrome*", b"google chrome beta"));
        assert!(glob(b"google chrome*", b"google chrome"));
        assert!(!glob(b"google chrome", b"google chrome beta"));
        assert!(glob(
            b"microsoft visual c++ * redistributable*",
            b"microsoft visual c++ 2015-2022 redistributable"
        ));
        assert!(!glob(b"a*b*c", b"acb"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn consolidation_groups_versions_and_counts_devices_and_users_once() {
        let rules = RuleSet::bundled();
        let apps = vec![
            app("7-Zip 23.01 (x64)", "Igor Pavlov", "23.01", &["d1", "d2"]),
            app("7-Zip 19.00 (x64)", "Igor Pavlov", "19.00", &["d3"]),
            app("7-Zip 23.01", "Igor Pavlov", "23.01", &["d2", "d4"]),
            app("Contoso Timesheets 2.1", "Contoso Ltd", "2.1", &["d1"]),
        ];
        let users: HashMap<String, String> = [("d1", "u1"), ("d2", "u1"), ("d3", "u2")]
            .into_iter()
            .map(|(d, u)| (d.to_string(), u.to_string()))
            .collect();
        let result = consolidate(&rules, &apps, &users);
        let zip = result.matched().next().unwrap();
        assert_eq!(zip.product, "7-Zip");
        assert_eq!(zip.devices, 4);
        assert_eq!(zip.users, 2);
        assert_eq!(zip.latest_version.as_deref(), Some("23.01"));
        assert_eq!(zip.oldest_version.as_deref(), Some("19.00"));
        assert_eq!(
            zip.versions[0],
            VersionCount {
                version: "23.01".into(),
                devices: 3,
                users: 1
            }
        );
        assert_eq!(zip.raw_names.len(), 3);
        let residue: Vec<_> = result.residue().collect();
        assert_eq!(residue.len(), 1);
        assert_eq!(residue[0].product, "contoso timesheets");
        assert_eq!(residue[0].publisher.as_deref(), Some("Contoso"));
        assert_eq!(result.detected_apps, 4);
    }

    #[test]
    fn apps_on_no_device_make_no_product_and_no_version() {
        let rules = RuleSet::bundled();
        let apps = vec![
            app("7-Zip 23.01 (x64)", "Igor Pavlov", "23.01", &["d1"]),
            app("7-Zip 9.20 (x64)", "Igor Pavlov", "9.20", &[]),
            app("7-Zip 24.08 (x64)", "Igor Pavlov", "24.08", &[]),
            app("Contoso Timesheets 2.1", "Contoso Ltd", "2.1", &[]),
        ];
        let result = consolidate(&rules, &apps, &HashMap::new());
        assert_eq!(result.products.len(), 1, "{:?}", result.products);
        let zip = &result.products[0];
        assert_eq!(zip.versions.len(), 1, "{:?}", zip.versions);
        assert_eq!(zip.latest_version.as_deref(), Some("23.01"));
        assert_eq!(zip.oldest_version.as_deref(), Some("23.01"));
        assert_eq!(zip.raw_names, ["7-Zip 23.01 (x64)"]);
    }

    #[test]
    fn stored_products_and_versions_on_no_device_count_nowhere() {
        let version = |version: &str, devices: u64| VersionCount {
            version: version.into(),
            devices,
            users: 0,
        };
        let product = |name: &str, devices: u64, versions: Vec<VersionCount>| Stored {
            organization: "Contoso".into(),
            tenant_id: "contoso".into(),
            product: TenantProduct {
                product: name.into(),
                publisher: None,
                matched: true,
                devices,
                users: 0,
                latest_version: versions.first().map(|v| v.version.clone()),
                oldest_version: versions.last().map(|v| v.version.clone()),
                raw_names: vec![name.into()],
                versions,
                reason: None,
            },
        };
        let products = across_tenants(vec![
            product(
                "7-Zip",
                1,
                vec![version("24.08", 0), version("23.01", 1), version("9.20", 0)],
            ),
            product("WinRAR", 0, vec![version("6.0", 0)]),
        ]);
        assert_eq!(products.len(), 1);
        let versions: Vec<&str> = products[0]
            .versions
            .iter()
            .map(|v| v.version.as_str())
            .collect();
        assert_eq!(versions, ["23.01"]);
        assert_eq!(products[0].latest_version.as_deref(), Some("23.01"));
        assert_eq!(products[0].oldest_version.as_deref(), Some("23.01"));
        assert_eq!(
            products[0].tenants[0].oldest_version.as_deref(),
            Some("23.01")
        );
    }

    #[test]
    fn products_add_up_across_tenants() {
        let rules = RuleSet::bundled();
        let none = HashMap::new();
        let one = consolidate(
            &rules,
            &[app("Google Chrome", "Google LLC", "131.0.1", &["a", "b"])],
            &none,
        );
        let two = consolidate(
            &rules,
            &[app("Google Chrome", "Google LLC", "120.0.1", &["c"])],
            &none,
        );
        let stored = [("Contoso", one), ("Fabrikam", two)]
            .into_iter()
            .flat_map(|(org, c)| {
                c.products.into_iter().map(move |p| Stored {
                    organization: org.into(),
                    tenant_id: org.to_lowercase(),
                    product: p,
                })
            })
            .collect();
        let products = across_tenants(stored);
        assert_eq!(products.len(), 1);
        assert_eq!(products[0].devices, 3);
        assert_eq!(products[0].tenants.len(), 2);
        assert_eq!(products[0].latest_version.as_deref(), Some("131.0.1"));
        assert_eq!(products[0].oldest_version.as_deref(), Some("120.0.1"));
    }

    #[test]
    fn a_broken_admin_file_names_its_line_and_rule() {
        let text = "format = 1\nrevision = \"1\"\n\n[[product]]\nname = \"Timesheets\"\npublisher = \"Contoso\"\nmatch = [\"Contoso Timesheets (x64)\"]\n";
        let e = RuleSet::with_admin_file("rules.toml", text).unwrap_err();
        assert_eq!(e.line, 4);
        assert_eq!(e.rule.as_deref(), Some("Timesheets"));
        assert!(
            e.to_string()
                .starts_with("rules.toml, line 4, rule 'Timesheets': pattern"),
            "{e}"
        );
        assert!(e.fix.contains("contoso timesheets"), "{e}");

        let e = RuleSet::parse("rules.toml", "format = 1\nrevision = \"1\"\n[[product]]\nname = \"X\"\npublisher = \"Y\"\nmatches = [\"x\"]\n").unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.problem.contains("matches"), "{e}");

        let e = RuleSet::parse("rules.toml", "format = 2\nrevision = \"1\"\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = RuleSet::parse("rules.toml", "format = 1\nrevision = \"1\"\n[[product]]\nname = \"All\"\npublisher = \"Y\"\nmatch = [\"*\"]\n").unwrap_err();
        assert!(e.problem.contains("every name"), "{e}");
    }

    #[test]
    fn an_admin_rule_naming_the_nameless_apps_is_refused() {
        let text = "format = 1\nrevision = \"1\"\n\n[[product]]\nname = \"(No Name)\"\npublisher = \"Contoso\"\nmatch = [\"contoso*\"]\n";
        let e = RuleSet::with_admin_file("rules.toml", text).unwrap_err();
        assert_eq!((e.line, e.rule.as_deref()), (4, Some("(No Name)")), "{e}");
        assert!(e.problem.contains("without a name"), "{e}");
    }

    #[test]
    fn add_ins_and_installers_are_not_the_client_and_runtimes_split_per_year() {
        let rules = RuleSet::bundled();
        let product = |name: &str, publisher: &str| {
            rules
                .classify(name, Some(publisher), None)
                .product
                .map(|(product, _)| product)
        };
        let microsoft = "Microsoft Corporation";
        assert_eq!(
            product("Zoom Outlook Plugin", "Zoom Video Communications, Inc.").as_deref(),
            Some("Zoom Outlook Plugin")
        );
        assert_eq!(
            product("Zoom Workplace (64-bit)", "Zoom Video Communications, Inc.").as_deref(),
            Some("Zoom Workplace")
        );
        assert_eq!(
            product("Teams Machine-Wide Installer", microsoft).as_deref(),
            Some("Microsoft Teams Machine-Wide Installer")
        );
        assert_eq!(
            product("Microsoft Teams", microsoft).as_deref(),
            Some("Microsoft Teams")
        );
        for (name, expected) in [
            (
                "Microsoft Visual C++ 2010  x64 Redistributable - 10.0.40219",
                "Microsoft Visual C++ 2010 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2010  x86 Redistributable - 10.0.40219",
                "Microsoft Visual C++ 2010 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2013 Redistributable (x64) - 12.0.40664",
                "Microsoft Visual C++ 2013 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2013 x64 Minimum Runtime - 12.0.40664",
                "Microsoft Visual C++ 2013 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33135",
                "Microsoft Visual C++ 2015-2022 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2015-2019 Redistributable (x86) - 14.29.30133",
                "Microsoft Visual C++ 2015-2022 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2017 Redistributable (x64) - 14.16.27033",
                "Microsoft Visual C++ 2015-2022 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2022 X64 Additional Runtime - 14.38.33135",
                "Microsoft Visual C++ 2015-2022 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2008 Redistributable - x64 9.0.30729.6161",
                "Microsoft Visual C++ 2008 Redistributable",
            ),
            (
                "Microsoft Visual C++ 2012 Redistributable (x64) - 11.0.61030",
                "Microsoft Visual C++ 2012 Redistributable",
            ),
        ] {
            assert_eq!(
                product(name, microsoft).as_deref(),
                Some(expected),
                "{name}: {:?}",
                clean_name(name)
            );
        }
    }

    #[test]
    fn an_admin_rule_wins_over_the_bundled_one() {
        let text = "format = 1\nrevision = \"contoso-3\"\n[publishers]\n\"contoso\" = \"Contoso Group\"\n[[product]]\nname = \"Timesheets\"\npublisher = \"Contoso Group\"\nmatch = [\"contoso timesheets*\"]\n[[product]]\nname = \"Browser\"\npublisher = \"Google\"\nmatch = [\"google chrome\"]\n";
        let rules = RuleSet::with_admin_file("contoso.toml", text).unwrap();
        assert_eq!(
            rules.revision(),
            format!("contoso.toml contoso-3 + {}", RuleSet::bundled().revision())
        );
        let c = rules.classify("Contoso Timesheets 2.1 (x64)", Some("Contoso Ltd"), None);
        assert_eq!(
            c.product,
            Some(("Timesheets".into(), "Contoso Group".into()))
        );
        assert_eq!(c.version.as_deref(), Some("2.1"));
        assert_eq!(
            rules
                .classify("Google Chrome", None, None)
                .product
                .unwrap()
                .0,
            "Browser"
        );
        assert_eq!(
            rules.classify("7-Zip 9.20", None, None).product.unwrap().0,
            "7-Zip"
        );
        assert_eq!(
            rules.publisher("Contoso Ltd").as_deref(),
            Some("Contoso Group")
        );
    }

    #[test]
    fn different_products_under_similar_names_stay_apart() {
        let rules = RuleSet::bundled();
        let product = |raw: &str, publisher: Option<&str>, version: Option<&str>| {
            rules
                .classify(raw, publisher, version)
                .product
                .map(|p| p.0)
                .unwrap_or_else(|| format!("unmatched {raw}"))
        };
        let ms = Some("Microsoft Corporation");
        let oracle = Some("Oracle Corporation");
        for (a, b) in [
            (
                product(
                    "Java(TM) SE Development Kit 17.0.8 (64-bit)",
                    oracle,
                    Some("17.0.8.0"),
                ),
                product("Java 8 Update 381 (64-bit)", oracle, Some("8.0.3810.9")),
            ),
            (
                product("Visual Studio Build Tools 2022", ms, Some("17.11.5")),
                product("Visual Studio Professional 2022", ms, Some("17.11.5")),
            ),
            (
                product("WhatsApp Business", Some("WhatsApp LLC"), None),
                product("WhatsApp", Some("WhatsApp Inc."), None),
            ),
            (
                product(
                    "Microsoft Teams Meeting Add-in for Microsoft Office",
                    ms,
                    Some("1.24.22415"),
                ),
                product("Microsoft Teams", ms, None),
            ),
            (
                product(
                    "Microsoft Windows Desktop Runtime - 8.0.11 (x64)",
                    ms,
                    Some("64.44.23191"),
                ),
                product(
                    "Microsoft ASP.NET Core 8.0.11 - Shared Framework (x64)",
                    ms,
                    Some("8.0.11.24521"),
                ),
            ),
            (
                product(
                    "Microsoft .NET Runtime - 8.0.11 (x64)",
                    ms,
                    Some("64.44.23191"),
                ),
                product(
                    "Microsoft .NET Runtime - 6.0.36 (x64)",
                    ms,
                    Some("48.144.23186"),
                ),
            ),
            // A rule names its own vendor's product, never another's under the same words.
            (
                product("Zoom", Some("Zoom Video Communications, Inc."), None),
                product("Zoom", Some("Zoom Rooms Hardware GmbH"), None),
            ),
        ] {
            assert_ne!(a, b);
        }
        assert_eq!(
            product(
                "Java(TM) SE Development Kit 17.0.8 (64-bit)",
                oracle,
                Some("17.0.8.0")
            ),
            "Java SE Development Kit 17"
        );
        assert_eq!(
            product("Java 8 Update 381 (64-bit)", oracle, Some("8.0.3810.9")),
            "Java Runtime Environment 8"
        );
        assert_eq!(
            product(
                "Microsoft Windows Desktop Runtime - 6.0.36 (x64)",
                ms,
                Some("48.144.23186")
            ),
            "Microsoft Windows Desktop Runtime 6"
        );
        // A spelling of the vendor the rules fold, and no publisher at all, still match.
        assert_eq!(
            product("Zoom", Some("Zoom Video Communications"), None),
            "Zoom Workplace"
        );
        assert_eq!(
            product("Lenovo Vantage Service", Some("Lenovo Group Ltd."), None),
            "Lenovo Vantage"
        );
        assert_eq!(product("Google Chrome", None, None), "Google Chrome");
    }

    #[test]
    fn versions_are_normalised_and_blank_names_are_residue_with_a_reason() {
        let rules = RuleSet::bundled();
        assert_eq!(normalise_version(" v8.6.9 ").as_deref(), Some("8.6.9"));
        assert_eq!(normalise_version("Version 2.1").as_deref(), Some("2.1"));
        assert_eq!(normalise_version("vNext").as_deref(), Some("vNext"));
        assert_eq!(normalise_version("  "), None);
        let app = |name: &str, version: &str, device: &str| DetectedApp {
            name: name.into(),
            publisher: Some("Notepad++ Team".into()),
            version: Some(version.into()),
            device_ids: vec![device.into()],
        };
        let apps = vec![
            app("Notepad++ (64-bit x64)", "v8.6.9", "d1"),
            app("Notepad++ (64-bit x64)", "8.6.9", "d2"),
            app("", "1.0", "d3"),
            app("   ", "2.0", "d4"),
        ];
        let consolidation = consolidate(&rules, &apps, &HashMap::new());
        let notepad = consolidation
            .matched()
            .find(|p| p.product == "Notepad++")
            .unwrap();
        assert_eq!(notepad.versions.len(), 1, "{:?}", notepad.versions);
        assert_eq!(notepad.versions[0].devices, 2);
        assert_eq!(consolidation.matched().count(), 1);
        let residue: Vec<&TenantProduct> = consolidation.residue().collect();
        assert_eq!(residue.len(), 1, "{residue:?}");
        assert_eq!(residue[0].product, NAMELESS);
        assert_eq!(residue[0].devices, 2);
        assert!(
            residue[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("without a name")
        );
    }

    #[test]
    fn lines_are_found_by_offset() {
        let text = "a\nbc\n\nd";
        let lines = Lines::of(text);
        let expected: Vec<usize> = (0..=text.len())
            .map(|at| text[..at].matches('\n').count() + 1)
            .collect();
        let found: Vec<usize> = (0..=text.len()).map(|at| lines.line_of(at)).collect();
        assert_eq!(found, expected);
    }
}
