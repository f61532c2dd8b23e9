//! Secrets at rest: XChaCha20-Poly1305 under a key from `M365SYNC_SECRET_KEY` or a key file
//! created with mode 0600. Each ciphertext carries the id of its key and is bound (as associated
//! data) to the row and column it belongs to, so it cannot be moved to another row.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

pub const KEY_ENV: &str = "M365SYNC_SECRET_KEY";

/// A 256-bit key. `Debug` shows only its id.
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; 32],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(id {})", self.id())
    }
}

impl SecretKey {
    pub fn generate() -> Self {
        Self {
            bytes: XChaCha20Poly1305::generate_key(&mut OsRng).into(),
        }
    }

    /// Parses a key written as base64 or as 64 hex digits.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).unwrap_or(0))
                .collect::<Vec<u8>>()
        } else {
            STANDARD.decode(text).map_err(|_| bad_key(source))?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad_key(source))?;
        Ok(Self { bytes })
    }

    /// Reads the key in `file`, refusing one that other users can read.
    pub fn read_file(file: &Path) -> Result<Self> {
        check_permissions(file)?;
        let text = std::fs::read_to_string(file).map_err(|e| {
            StoreError::Secret(format!("cannot read the key file {}: {e}", file.display()))
        })?;
        Self::parse(&text, &file.display().to_string())
    }

    /// Makes a new key and writes it to `file` (mode 0600), which must not exist yet.
    pub fn create_file(file: &Path) -> Result<Self> {
        let key = Self::generate();
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Secret(format!(
                    "cannot create {} for the key file: {e}",
                    parent.display()
                ))
            })?;
        }
        write_private(file, &STANDARD.encode(key.bytes)).map_err(|e| {
            StoreError::Secret(format!(
                "cannot create the key file {}: {e}. Set {KEY_ENV} instead",
                file.display()
            ))
        })?;
        Ok(key)
    }

    /// A key for `purpose` made from this one (HMAC-SHA-256 of the purpose): every process
    /// that shares the store's key makes the same one, and it gives nothing of this key away.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .expect("HMAC takes a key of any length");
        mac.update(b"m365sync derived key: ");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A short, non-secret name for the key, stored beside each ciphertext.
    pub fn id(&self) -> String {
        Sha256::digest(self.bytes)
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn bad_key(source: &str) -> StoreError {
    StoreError::Secret(format!(
        "the secret key in {source} is not 32 bytes written as base64 or 64 hex digits; generate one with `openssl rand -base64 32`"
    ))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o600);
    if mode & 0o077 != 0 {
        return Err(StoreError::Secret(format!(
            "the key file {} can be read by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<()> {
    Ok(())
}

/// The id of the key that sealed an envelope, if it is one.
pub(crate) fn envelope_key_id(envelope: &str) -> Option<&str> {
    let mut parts = envelope.split(':');
    (parts.next() == Some("v1")).then(|| parts.next()).flatten()
}

#[derive(Clone)]
pub(crate) struct SecretCipher {
    key: SecretKey,
}

impl SecretCipher {
    pub(crate) fn new(key: SecretKey) -> Self {
        Self { key }
    }

    pub(crate) fn key_id(&self) -> String {
        self.key.id()
    }

    pub(crate) fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.key.derive(purpose)
    }

    /// `v1:<key id>:<nonce>:<ciphertext>`, bound to `binding` (table, column and row).
    pub(crate) fn seal(&self, plaintext: &str, binding: &str) -> Result<String> {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.key.bytes));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Secret("encryption failed".into()))?;
        Ok(format!(
            "v1:{}:{}:{}",
            self.key.id(),
            STANDARD.encode(nonce),
            STANDARD.encode(sealed)
        ))
    }

    pub(crate) fn open(&self, envelope: &str, binding: &str) -> Result<String> {
        let parts: Vec<&str> = envelope.split(':').collect();
        let [version, key_id, nonce, sealed] = parts.as_slice() else {
            return Err(StoreError::Corrupt(format!(
                "a stored secret for {binding} is not in the v1 envelope"
            )));
        };
        if *version != "v1" {
            return Err(StoreError::Corrupt(format!(
                "a stored secret for {binding} has unknown version {version}"
            )));
        }
        if *key_id != self.key.id() {
            return Err(StoreError::Secret(format!(
                "the secrets in this store were sealed with key {key_id}, but the key in use is {}; set {KEY_ENV} (or the key file) to the key this store was created with",
                self.key.id()
            )));
        }
        let nonce = STANDARD
            .decode(nonce)
            .map_err(|_| StoreError::Corrupt("secret nonce".into()))?;
        let sealed = STANDARD
            .decode(sealed)
            .map_err(|_| StoreError::Corrupt("secret ciphertext".into()))?;
        if nonce.len() != 24 {
            return Err(StoreError::Corrupt("secret nonce length".into()));
        }
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.key.bytes));
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Secret(format!(
                    "the stored secret for {binding} does not open with this key"
                ))
            })?;
        String::from_utf8(plain).map_err(|_| StoreError::Corrupt("secret is not text".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_key_is_the_same_for_one_key_and_purpose_only() {
        let key = SecretKey::generate();
        let same = SecretKey::parse(&STANDARD.encode(key.bytes), "a test").unwrap();
        assert_eq!(key.derive("page notices"), same.derive("page notices"));
        assert_ne!(key.derive("page notices"), key.derive("something else"));
        assert_ne!(
            key.derive("page notices"),
            SecretKey::generate().derive("page notices")
        );
        assert_ne!(key.derive("page notices"), key.bytes);
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let cipher = SecretCipher::new(SecretKey::generate());
        let sealed = cipher
            .seal("Abc8Q~value", "connections.client_secret:1")
            .unwrap();
        assert!(!sealed.contains("Abc8Q~value"));
        assert_eq!(
            cipher.open(&sealed, "connections.client_secret:1").unwrap(),
            "Abc8Q~value"
        );
        assert!(cipher.open(&sealed, "connections.client_secret:2").is_err());
        let other = SecretCipher::new(SecretKey::generate());
        assert!(
            other
                .open(&sealed, "connections.client_secret:1")
                .unwrap_err()
                .to_string()
                .contains(KEY_ENV)
        );
    }

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = tempfile_dir();
        let path = dir.join("store.db.key");
        let first = SecretKey::create_file(&path).unwrap();
        assert!(
            SecretKey::create_file(&path).is_err(),
            "an existing key is never replaced"
        );
        let again = SecretKey::read_file(&path).unwrap();
        assert_eq!(first.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(
                SecretKey::read_file(&path)
                    .unwrap_err()
                    .to_string()
                    .contains("chmod 600")
            );
        }
        assert!(SecretKey::parse("short", KEY_ENV).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("m365sync-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
