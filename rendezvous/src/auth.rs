//! Job tokens: HMAC-SHA-256 of the job id under the relay's secret.
//!
//! Whoever holds the secret (the coordinator, or `excam relay token`) mints a
//! token per job and hands it to that job's workers; the relay recomputes it
//! on every connection, so it keeps no table of jobs or tokens and a token
//! opens only the mailboxes of its own job.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

type HmacSha256 = Hmac<Sha256>;

/// Environment variable the relay and the CLI read the secret from.
pub const SECRET_ENV: &str = "EXCAM_RELAY_SECRET";

/// The relay's secret. Its `Debug` output hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RelaySecret(Vec<u8>);

impl fmt::Debug for RelaySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelaySecret({} bytes)", self.0.len())
    }
}

impl RelaySecret {
    /// Shortest secret accepted: 16 bytes keeps brute force out of reach.
    pub const MIN_LEN: usize = 16;

    /// Wraps secret bytes.
    ///
    /// # Errors
    /// [`ConfigError::WeakSecret`] if shorter than [`Self::MIN_LEN`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        let bytes = bytes.into();
        if bytes.len() < Self::MIN_LEN {
            return Err(ConfigError::WeakSecret(bytes.len()));
        }
        Ok(RelaySecret(bytes))
    }

    /// A fresh secret: 32 random bytes from the operating system, written
    /// as 64 hex characters. The text itself is the secret, so what
    /// [`Self::as_text`] prints can be put in a file or in
    /// [`SECRET_ENV`] and means the same secret there.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut bytes)
            .expect("the operating system's random source failed");
        RelaySecret(hex(&bytes).into_bytes())
    }

    /// Reads a secret from a file; surrounding whitespace (a trailing newline
    /// from `echo` or an editor) is not part of it.
    ///
    /// # Errors
    /// [`ConfigError::Io`] if unreadable, [`ConfigError::WeakSecret`] if short.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let raw =
            std::fs::read(path).map_err(|e| ConfigError::Io(path.display().to_string(), e))?;
        Self::new(raw.trim_ascii())
    }

    /// Reads [`SECRET_ENV`]; `Ok(None)` when it is unset.
    ///
    /// # Errors
    /// [`ConfigError::WeakSecret`] if set but short.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        match std::env::var_os(SECRET_ENV) {
            Some(v) => Self::new(v.as_encoded_bytes().trim_ascii()).map(Some),
            None => Ok(None),
        }
    }

    /// The secret as text, if it is UTF-8 (a generated one always is), for
    /// printing it where it can be copied into a file or the environment.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Mints the token for a job: lowercase hex of HMAC-SHA-256(secret, job id).
    pub fn token(&self, job: &str) -> String {
        hex(&self.mac(job).finalize().into_bytes())
    }

    /// Checks a token in constant time.
    pub fn verify(&self, job: &str, token: &str) -> bool {
        match unhex(token) {
            Some(bytes) => self.mac(job).verify_slice(&bytes).is_ok(),
            None => false,
        }
    }

    fn mac(&self, job: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(job.as_bytes());
        mac
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses hex, ignoring `:` separators (fingerprints are often printed so).
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if digits.len() & 1 == 1 {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_verifies_only_its_job() {
        let s = RelaySecret::new(*b"0123456789abcdef").unwrap();
        let t = s.token("job-a");
        assert_eq!(t.len(), 64);
        assert!(s.verify("job-a", &t));
        assert!(!s.verify("job-b", &t));
        assert!(!s.verify("job-a", "zz"));
        let other = RelaySecret::new(*b"fedcba9876543210").unwrap();
        assert!(!other.verify("job-a", &t));
    }

    #[test]
    fn generated_secret_survives_a_round_trip_through_text() {
        let s = RelaySecret::generate();
        let text = s.as_text().unwrap();
        assert_eq!(text.len(), 64);
        let back = RelaySecret::new(text.as_bytes()).unwrap();
        assert_eq!(back.token("j"), s.token("j"));
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(RelaySecret::new(*b"short").is_err());
    }
}
