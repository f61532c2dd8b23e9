//! Certificate credentials: certificates made for a tenant's app through the control API (as an
//! admin uploads one to the app registration), and the checks Entra makes on a signed
//! `client_assertion` — format, algorithm, thumbprint, signature, issuer, audience and lifetime.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use uuid::Uuid;

/// A certificate registered on the tenant's app (`keyCredentials`).
#[derive(Clone)]
pub(crate) struct AppCertificate {
    pub key_id: Uuid,
    pub display_name: String,
    pub certificate_der: Vec<u8>,
    /// The RSAPublicKey, to check signatures with.
    pub public_key_der: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
}

impl AppCertificate {
    fn sha1(&self) -> Vec<u8> {
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &self.certificate_der)
            .as_ref()
            .to_vec()
    }

    fn sha256(&self) -> Vec<u8> {
        digest::digest(&digest::SHA256, &self.certificate_der)
            .as_ref()
            .to_vec()
    }

    /// The thumbprint as the Entra admin center shows it: SHA-1, upper-case hex.
    pub fn thumbprint(&self) -> String {
        self.sha1().iter().map(|b| format!("{b:02X}")).collect()
    }

    /// The registration as Graph lists it under an application's `keyCredentials`.
    pub fn key_credential(&self) -> Value {
        json!({
            "customKeyIdentifier": self.thumbprint(),
            "displayName": self.display_name,
            "endDateTime": format!("{}Z", crate::activity::iso(self.not_after)),
            "key": null,
            "keyId": self.key_id.to_string(),
            "startDateTime": format!("{}Z", crate::activity::iso(self.not_before)),
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        })
    }
}

/// A new RSA-2048 key and self-signed certificate, valid from the day of `not_before` to the day
/// of `not_after` (seconds since 1970; certificates here are made to whole days), with the private
/// key and the certificate in PEM for the client.
pub(crate) fn generate(
    subject: &str,
    not_before: i64,
    not_after: i64,
) -> Result<(AppCertificate, String, String), String> {
    let not_before = not_before.div_euclid(86_400) * 86_400;
    let not_after = not_after.div_euclid(86_400) * 86_400;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject);
    let date = |seconds: i64| {
        let (year, month, day) = crate::state::civil(seconds.div_euclid(86_400));
        rcgen::date_time_ymd(year.clamp(1950, 9999) as i32, month, day)
    };
    params.not_before = date(not_before);
    params.not_after = date(not_after);
    let certificate = params.self_signed(&key).map_err(|e| e.to_string())?;
    let registered = AppCertificate {
        key_id: Uuid::new_v4(),
        display_name: format!("CN={subject}"),
        certificate_der: certificate.der().to_vec(),
        public_key_der: key.public_key_raw().to_vec(),
        not_before,
        not_after,
    };
    Ok((registered, key.serialize_pem(), certificate.pem()))
}

/// Why an assertion was refused: the AADSTS code and Microsoft's sentence.
pub(crate) struct Refusal {
    pub code: u64,
    pub text: String,
}

fn refuse(code: u64, text: impl Into<String>) -> Refusal {
    Refusal {
        code,
        text: text.into(),
    }
}

/// Checks `assertion` as the token endpoint of a tenant whose app is `client_id` would.
/// `audience_ok` says whether the `aud` claim names this tenant's token endpoint.
pub(crate) fn verify(
    assertion: &str,
    client_id: &str,
    registered: &[AppCertificate],
    now: i64,
    audience_ok: impl Fn(&str) -> bool,
) -> Result<(), Refusal> {
    let malformed = || refuse(50027, "JWT token is invalid or is malformed.");
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let decode = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?).ok()
    };
    let (Some(header_json), Some(claims)) = (decode(header), decode(payload)) else {
        return Err(malformed());
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let (algorithm, thumbprint): (&'static dyn aws_lc_rs::signature::VerificationAlgorithm, _) =
        match header_json["alg"].as_str() {
            Some("PS256") => (&RSA_PSS_2048_8192_SHA256, header_json["x5t#S256"].as_str()),
            Some("RS256") => (&RSA_PKCS1_2048_8192_SHA256, header_json["x5t"].as_str()),
            other => {
                return Err(refuse(
                    5002738,
                    format!(
                        "Invalid JWT token. '{}' is not a supported signature algorithm. Supported algorithms for client assertions are PS256 and RS256.",
                        other.unwrap_or("none")
                    ),
                ));
            }
        };
    let thumbprint = thumbprint
        .and_then(|t| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok())
        .ok_or_else(|| {
            refuse(
                5002723,
                "Invalid JWT token. No certificate thumbprint specified in token header.",
            )
        })?;
    let key = registered
        .iter()
        .find(|c| c.sha1() == thumbprint || c.sha256() == thumbprint)
        .ok_or_else(|| {
            refuse(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]",
                    thumbprint.iter().map(|b| format!("{b:02X}")).collect::<String>()
                ),
            )
        })?;
    let signing_input = &assertion[..header.len() + 1 + payload.len()];
    UnparsedPublicKey::new(algorithm, &key.public_key_der)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| refuse(700027, "Client assertion contains an invalid signature."))?;
    if now > key.not_after {
        return Err(refuse(
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '{}']",
                key.thumbprint()
            ),
        ));
    }
    let issuer = claims["iss"].as_str().unwrap_or_default();
    let subject = claims["sub"].as_str().unwrap_or_default();
    if !issuer.eq_ignore_ascii_case(client_id) || !subject.eq_ignore_ascii_case(client_id) {
        return Err(refuse(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    let audience = claims["aud"].as_str().unwrap_or_default();
    if !audience_ok(audience) {
        return Err(refuse(
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials . [Audience: '{audience}']"
            ),
        ));
    }
    // `exp` is required; `nbf` is optional (msal leaves it out). Either may be a fraction, as
    // clients that use floating-point clocks send them.
    let seconds = |claim: &str| claims[claim].as_f64().map(|v| v as i64);
    let Some(exp) = seconds("exp") else {
        return Err(refuse(
            700024,
            "Client assertion is not within its valid time range: it has no expiry (exp).",
        ));
    };
    let nbf = seconds("nbf").unwrap_or(i64::MIN / 2);
    // Entra allows five minutes of clock skew either way.
    if now + 300 < nbf || now - 300 > exp {
        return Err(refuse(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}Z, expiry time of assertion {}Z.",
                crate::activity::iso(now),
                crate::activity::iso(exp)
            ),
        ));
    }
    Ok(())
}

/// A client assertion with `claims`, signed as a client signs it with the certificate's key.
#[cfg(test)]
pub(crate) fn signed(key_pem: &str, certificate: &AppCertificate, claims: Value) -> String {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaKeyPair};
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            key_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let key = RsaKeyPair::from_pkcs8(&der).unwrap();
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": URL_SAFE_NO_PAD.encode(certificate.sha256())});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PSS_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_claim_and_the_signature_are_checked() {
        let now = 1_900_000_000;
        let (registered, key, _) = generate("t", now - 86_400, now + 86_400 * 30).unwrap();
        let keys = std::slice::from_ref(&registered);
        let claims = |iss: &str, aud: &str, exp: i64| json!({"iss": iss, "sub": iss, "aud": aud, "nbf": now - 5, "iat": now - 5, "exp": exp, "jti": "j"});
        let check = |assertion: &str| {
            verify(assertion, "app", keys, now, |aud| aud == "good")
                .err()
                .map(|r| r.code)
        };
        let good = signed(&key, &registered, claims("app", "good", now + 600));
        assert_eq!(check(&good), None);
        let mut parts: Vec<&str> = good.split('.').collect();
        let other_payload = URL_SAFE_NO_PAD.encode(claims("app", "good", now + 6000).to_string());
        parts[1] = &other_payload;
        assert_eq!(check(&parts.join(".")), Some(700027), "tampered payload");
        let wrong_app = signed(&key, &registered, claims("other", "good", now + 600));
        assert_eq!(check(&wrong_app), Some(700021));
        let wrong_audience = signed(&key, &registered, claims("app", "bad", now + 600));
        assert_eq!(check(&wrong_audience), Some(700023));
        let stale = signed(&key, &registered, claims("app", "good", now - 1000));
        assert_eq!(check(&stale), Some(700024));
        let msal_like = signed(
            &key,
            &registered,
            json!({"iss": "app", "sub": "app", "aud": "good", "iat": now as f64 + 0.25, "exp": now as f64 + 600.25, "jti": "j"}),
        );
        assert_eq!(check(&msal_like), None, "no nbf, fractional times");
        assert_eq!(check("eyJhbGciOiJQUzI1NiJ9.e30.AAAA"), Some(5002723));
        assert_eq!(check("x.y"), Some(50027));
    }
}
