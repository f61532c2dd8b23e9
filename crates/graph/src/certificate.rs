//! Certificate credentials: an RSA private key and its X.509 certificate, turned into the signed
//! `client_assertion` the token endpoint accepts instead of a client secret.
//!
//! Entra wants PS256 with the certificate's SHA-256 thumbprint (`x5t#S256`) today and still
//! accepts RS256 with the SHA-1 thumbprint (`x5t`); both are offered. The certificate is read just
//! far enough (a small DER walk) to learn its validity and subject, so that an expired or expiring
//! certificate is reported before Microsoft refuses it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::pem::{PemObject, SectionKind};

/// How the assertion is signed and which thumbprint names the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256, the certificate named by `x5t#S256`: what Entra documents now.
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, named by the SHA-1 `x5t`: the older form, still accepted
    /// (and the only one ADFS knows).
    Rs256,
}

impl AssertionAlgorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Ps256 => "PS256",
            Self::Rs256 => "RS256",
        }
    }
}

/// Why a certificate credential cannot be used, each with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error(
        "no private key was found in the PEM text; give the key as \"-----BEGIN PRIVATE KEY-----\" (PKCS#8) or \"-----BEGIN RSA PRIVATE KEY-----\" (PKCS#1)"
    )]
    NoPrivateKey,
    #[error(
        "the private key is encrypted; export it without a password, e.g. `openssl pkcs8 -topk8 -nocrypt -in key.pem -out plain-key.pem`"
    )]
    EncryptedKey,
    #[error(
        "no certificate was found in the PEM text; give the certificate uploaded to the app registration (\"-----BEGIN CERTIFICATE-----\"); from a .pfx: `openssl pkcs12 -in app.pfx -nodes`"
    )]
    NoCertificate,
    #[error(
        "the private key is not a usable RSA key of at least 2048 bits ({0}); Entra accepts RSA keys only"
    )]
    UnusableKey(String),
    #[error(
        "the private key does not belong to the certificate; give the key the certificate was made from"
    )]
    KeyDoesNotMatch,
    #[error("the certificate is not valid DER ({0}); export it again as PEM")]
    MalformedCertificate(String),
}

/// An app's certificate credential: the key that signs and the certificate Entra knows it by.
pub struct ClientCertificate {
    key: RsaKeyPair,
    certificate_der: Vec<u8>,
    facts: CertificateFacts,
    algorithm: AssertionAlgorithm,
}

/// What can be said about a certificate without its key: safe to show and to store in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// SHA-1 thumbprint in upper-case hex, as the Entra admin center shows it.
    pub thumbprint: String,
    /// SHA-256 thumbprint in upper-case hex.
    pub thumbprint_sha256: String,
    /// The subject's common name, where it has one.
    pub subject: Option<String>,
    /// Seconds since 1970 (UTC).
    pub not_before: i64,
    pub not_after: i64,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("facts", &self.facts)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Reads a private key and its certificate from PEM text (both in one text, in any order;
    /// other sections such as a CA chain are ignored after the first certificate).
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(CertificateError::EncryptedKey);
        }
        let mut key = None;
        let mut certificate_der = None;
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
            let Ok((kind, der)) = section else {
                return Err(CertificateError::MalformedCertificate(
                    "the PEM text is damaged".into(),
                ));
            };
            match kind {
                SectionKind::PrivateKey if key.is_none() => {
                    key = Some(
                        RsaKeyPair::from_pkcs8(&der)
                            .map_err(|e| CertificateError::UnusableKey(e.to_string()))?,
                    );
                }
                SectionKind::RsaPrivateKey if key.is_none() => {
                    key = Some(
                        RsaKeyPair::from_der(&der)
                            .map_err(|e| CertificateError::UnusableKey(e.to_string()))?,
                    );
                }
                SectionKind::EcPrivateKey => {
                    return Err(CertificateError::UnusableKey("it is an EC key".into()));
                }
                SectionKind::Certificate if certificate_der.is_none() => {
                    certificate_der = Some(der);
                }
                _ => {}
            }
        }
        let key = key.ok_or(CertificateError::NoPrivateKey)?;
        let certificate_der = certificate_der.ok_or(CertificateError::NoCertificate)?;
        if key.public_modulus_len() * 8 < 2048 {
            return Err(CertificateError::UnusableKey(format!(
                "it has {} bits",
                key.public_modulus_len() * 8
            )));
        }
        let facts = CertificateFacts::read(&certificate_der)?;
        // The certificate's SubjectPublicKeyInfo wraps exactly the key's RSAPublicKey encoding.
        let public = key.public_key().as_ref();
        if !certificate_der.windows(public.len()).any(|w| w == public) {
            return Err(CertificateError::KeyDoesNotMatch);
        }
        Ok(Self {
            key,
            certificate_der,
            facts,
            algorithm: AssertionAlgorithm::default(),
        })
    }

    /// Signs with the older RS256 + `x5t` form instead of PS256 + `x5t#S256`.
    pub fn with_algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    pub fn facts(&self) -> &CertificateFacts {
        &self.facts
    }

    /// A fresh assertion for `audience` (the token endpoint's URL), valid for ten minutes.
    pub(crate) fn assertion(&self, audience: &str, client_id: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut header = serde_json::json!({ "alg": self.algorithm.name(), "typ": "JWT" });
        match self.algorithm {
            AssertionAlgorithm::Ps256 => {
                header["x5t#S256"] = thumbprint(&digest::SHA256, &self.certificate_der).into();
            }
            AssertionAlgorithm::Rs256 => {
                header["x5t"] =
                    thumbprint(&digest::SHA1_FOR_LEGACY_USE_ONLY, &self.certificate_der).into();
            }
        }
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": random_id(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match self.algorithm {
            AssertionAlgorithm::Ps256 => &RSA_PSS_SHA256,
            AssertionAlgorithm::Rs256 => &RSA_PKCS1_SHA256,
        };
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                padding,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .unwrap_or_else(|_| unreachable!("a checked RSA key signs any message"));
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The certificate alone, base64 DER, as Graph's `keyCredentials` carry it.
    pub fn certificate_base64(&self) -> String {
        STANDARD.encode(&self.certificate_der)
    }
}

fn thumbprint(algorithm: &'static digest::Algorithm, der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(algorithm, der))
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn random_id() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

impl CertificateFacts {
    /// Reads thumbprints, subject and validity from a DER certificate.
    pub fn read(der: &[u8]) -> Result<Self, CertificateError> {
        let bad = |what: &str| CertificateError::MalformedCertificate(what.to_string());
        let certificate = Der::new(der)
            .sequence()
            .ok_or_else(|| bad("no certificate"))?;
        let mut tbs = certificate
            .clone()
            .sequence()
            .ok_or_else(|| bad("no to-be-signed part"))?;
        if tbs.peek_tag() == Some(0xA0) {
            tbs.skip(); // version
        }
        tbs.skip(); // serial number
        tbs.skip(); // signature algorithm
        tbs.skip(); // issuer
        let mut validity = tbs.sequence().ok_or_else(|| bad("no validity"))?;
        let not_before = validity.time().ok_or_else(|| bad("no notBefore"))?;
        let not_after = validity.time().ok_or_else(|| bad("no notAfter"))?;
        let subject = tbs.element().and_then(|(_, name)| common_name(name));
        Ok(Self {
            thumbprint: upper_hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
            thumbprint_sha256: upper_hex(digest::digest(&digest::SHA256, der).as_ref()),
            subject,
            not_before,
            not_after,
        })
    }
}

/// The value of the first commonName (2.5.4.3) attribute in a Name.
fn common_name(name: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    let at = name.windows(CN.len()).position(|w| w == CN)? + CN.len();
    let (_, value) = Der::new(name.get(at..)?).element()?;
    String::from_utf8(value.to_vec()).ok()
}

/// Just enough of a DER reader to walk a certificate's outer structure.
#[derive(Clone)]
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element's tag and contents.
    fn element(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, after_tag) = self.rest.split_first()?;
        let (&first, mut after_len) = after_tag.split_first()?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || after_len.len() < count {
                return None;
            }
            let (digits, rest) = after_len.split_at(count);
            after_len = rest;
            digits
                .iter()
                .fold(0usize, |n, &d| (n << 8) | usize::from(d))
        };
        if after_len.len() < length {
            return None;
        }
        let (contents, rest) = after_len.split_at(length);
        self.rest = rest;
        Some((tag, contents))
    }

    fn skip(&mut self) {
        let _ = self.element();
    }

    fn sequence(&mut self) -> Option<Der<'a>> {
        match self.element()? {
            (0x30, contents) => Some(Der::new(contents)),
            _ => None,
        }
    }

    /// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as seconds since
    /// 1970; the only forms RFC 5280 allows in a certificate. Anything else (a sign, a fraction,
    /// a month 13) is no time.
    fn time(&mut self) -> Option<i64> {
        let (tag, contents) = self.element()?;
        let text = std::str::from_utf8(contents).ok()?.strip_suffix('Z')?;
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = |from: usize, to: usize| -> Option<i64> { text.get(from..to)?.parse().ok() };
        let (year, at) = match (tag, text.len()) {
            (0x17, 12) => {
                let yy = number(0, 2)?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
            }
            (0x18, 14) => (number(0, 4)?, 4),
            _ => return None,
        };
        let field = |i: usize, range: std::ops::RangeInclusive<i64>| -> Option<i64> {
            number(at + i, at + i + 2).filter(|n| range.contains(n))
        };
        let days = days_from_civil(year, field(0, 1..=12)?, field(2, 1..=31)?);
        Some(days * 86_400 + field(4, 0..=23)? * 3600 + field(6, 0..=59)? * 60 + field(8, 0..=60)?)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(days: (i32, i32)) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "m365sync test");
        params.not_before = rcgen::date_time_ymd(2020 + days.0, 1, 2);
        params.not_after = rcgen::date_time_ymd(2020 + days.1, 3, 4);
        let certificate = params.self_signed(&key).unwrap();
        (key.serialize_pem(), certificate.pem())
    }

    #[test]
    fn reads_validity_subject_and_thumbprints() {
        let (key, cert) = generated((4, 31));
        let credential = ClientCertificate::from_pem(&format!("{cert}{key}")).unwrap();
        let facts = credential.facts();
        assert_eq!(facts.subject.as_deref(), Some("m365sync test"));
        assert_eq!(facts.not_before, days_from_civil(2024, 1, 2) * 86_400);
        assert_eq!(facts.not_after, days_from_civil(2051, 3, 4) * 86_400);
        assert_eq!(facts.thumbprint.len(), 40);
        assert_eq!(facts.thumbprint_sha256.len(), 64);
        assert!(!format!("{credential:?}").contains("PRIVATE"));
    }

    #[test]
    fn refuses_what_cannot_sign() {
        let (key, cert) = generated((0, 1));
        let (other_key, _) = generated((0, 1));
        assert_eq!(
            ClientCertificate::from_pem(&cert).unwrap_err(),
            CertificateError::NoPrivateKey
        );
        assert_eq!(
            ClientCertificate::from_pem(&key).unwrap_err(),
            CertificateError::NoCertificate
        );
        assert_eq!(
            ClientCertificate::from_pem(&format!("{other_key}{cert}")).unwrap_err(),
            CertificateError::KeyDoesNotMatch
        );
        assert_eq!(
            ClientCertificate::from_pem(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
            )
            .unwrap_err(),
            CertificateError::EncryptedKey
        );
    }

    #[test]
    fn assertions_name_the_certificate_by_the_algorithms_thumbprint() {
        let (key, cert) = generated((0, 40));
        let header = |credential: &ClientCertificate| -> serde_json::Value {
            let jwt = credential.assertion("https://login.example/t/oauth2/v2.0/token", "c");
            let first = jwt.split('.').next().unwrap();
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).unwrap()).unwrap()
        };
        let pss = ClientCertificate::from_pem(&format!("{key}{cert}")).unwrap();
        let h = header(&pss);
        assert_eq!(h["alg"], "PS256");
        assert_eq!(
            h["x5t#S256"].as_str().unwrap().len(),
            43,
            "base64url of 32 bytes"
        );
        let legacy = pss.with_algorithm(AssertionAlgorithm::Rs256);
        let h = header(&legacy);
        assert_eq!(h["alg"], "RS256");
        assert_eq!(
            h["x5t"].as_str().unwrap().len(),
            27,
            "base64url of 20 bytes"
        );
    }

    /// A DER element of `tag` around `contents` (lengths up to 64 KiB).
    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n @ 0..0x80 => out.push(n as u8),
            n @ 0x80..0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    /// A certificate's outer shape with the validity given, and nothing else of substance.
    fn shaped(not_before: &[u8], not_after: &[u8]) -> Vec<u8> {
        let tbs = [
            der(0xA0, &der(0x02, &[2])),
            der(0x02, &[1]),
            der(0x30, &[]),
            der(0x30, &[]),
            der(0x30, &[not_before, not_after].concat()),
            der(0x30, &[]),
        ]
        .concat();
        der(0x30, &der(0x30, &tbs))
    }

    fn a_real_certificate() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["m365sync.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "m365sync test");
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn times_out_of_range_or_out_of_form_are_no_time() {
        let good = der(0x17, b"260102030405Z");
        let facts = CertificateFacts::read(&shaped(&good, &der(0x18, b"20510304050607Z"))).unwrap();
        assert_eq!(
            facts.not_before,
            days_from_civil(2026, 1, 2) * 86_400 + 3 * 3600 + 4 * 60 + 5
        );
        assert_eq!(
            facts.not_after,
            days_from_civil(2051, 3, 4) * 86_400 + 5 * 3600 + 6 * 60 + 7
        );
        for bad in [
            der(0x17, b"261302030405Z"),     // month 13
            der(0x17, b"260100030405Z"),     // day 0
            der(0x17, b"260102250405Z"),     // hour 25
            der(0x17, b"260102036005Z"),     // minute 60
            der(0x17, b"26010203040Z"),      // a digit short
            der(0x17, b"2601020304050Z"),    // a digit long
            der(0x17, b"26-1+2030405Z"),     // signs
            der(0x18, b"20260102030405.5Z"), // a fraction
            der(0x18, b"+0260102030405Z"),   // a signed year
            der(0x17, "2601020304\u{e9}Z".as_bytes()),
            der(0x17, b"260102030405"),  // no Z
            der(0x04, b"260102030405Z"), // not a time
        ] {
            assert!(
                CertificateFacts::read(&shaped(&bad, &good)).is_err(),
                "{bad:02x?}"
            );
            assert!(
                CertificateFacts::read(&shaped(&good, &bad)).is_err(),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn every_truncation_of_a_certificate_is_refused_without_panicking() {
        let whole = a_real_certificate();
        assert!(CertificateFacts::read(&whole).is_ok());
        for len in 0..whole.len() {
            assert!(CertificateFacts::read(&whole[..len]).is_err(), "{len}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_refused_or_read_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            prefix in proptest::sample::select(vec![vec![], vec![0x30, 0x84], vec![0x30, 0x82, 0x01], vec![0x30, 0x80]]),
        ) {
            let _ = CertificateFacts::read(&[prefix, bytes].concat());
        }

        #[test]
        fn a_certificate_with_any_byte_changed_is_refused_or_read_without_panicking(
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
        ) {
            static WHOLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
            let mut changed = WHOLE.get_or_init(a_real_certificate).clone();
            let i = at.index(changed.len());
            changed[i] = byte;
            let _ = CertificateFacts::read(&changed);
        }

        #[test]
        fn any_pem_text_is_refused_or_read_without_panicking(
            text in "(-----BEGIN (CERTIFICATE|PRIVATE KEY|RSA PRIVATE KEY)-----\n[A-Za-z0-9+/=\n]{0,200}\n-----END (CERTIFICATE|PRIVATE KEY|RSA PRIVATE KEY)-----\n){0,3}",
        ) {
            let _ = ClientCertificate::from_pem(&text);
        }

        #[test]
        fn validity_reads_back_as_written(
            year in 1000i32..=9999,
            month in 1u8..=12,
            day in 1u8..=28,
            hour in 0u8..24,
            minute in 0u8..60,
            second in 0u8..60,
            years_valid in 0i32..50,
        ) {
            static KEY: std::sync::OnceLock<rcgen::KeyPair> = std::sync::OnceLock::new();
            let key = KEY.get_or_init(|| rcgen::KeyPair::generate().unwrap());
            let start = rcgen::date_time_ymd(year, month, day)
                .replace_hour(hour)
                .and_then(|t| t.replace_minute(minute))
                .and_then(|t| t.replace_second(second))
                .unwrap();
            let end = start.replace_year((year + years_valid).min(9999)).unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.not_before = start;
            params.not_after = end;
            let der = params.self_signed(key).unwrap().der().to_vec();
            let facts = CertificateFacts::read(&der).unwrap();
            proptest::prop_assert_eq!(facts.not_before, start.unix_timestamp());
            proptest::prop_assert_eq!(facts.not_after, end.unix_timestamp());
        }
    }

    #[test]
    fn the_der_reader_never_reads_past_the_end() {
        for bytes in [
            &[0x30, 0x82, 0xff][..],
            &[0x30],
            &[],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
        ] {
            assert!(CertificateFacts::read(bytes).is_err());
        }
    }
}
