//! Job tokens: `EXPIRY.NONCE.MAC`, the MAC being HMAC-SHA-256 under the
//! relay's secret of the job id, the expiry (Unix seconds) and a random
//! nonce.
//!
//! Whoever holds the secret (the coordinator, or `excam relay token`) mints a
//! token per run and hands it to that run's workers; the relay recomputes
//! the MAC on every connection, so it keeps no table of jobs or tokens, a
//! token opens only the mailboxes of its own job, and only until it
//! expires. The nonce makes every minted token different, so a token seen
//! in one run's logs or payloads says nothing about the next run's.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

type HmacSha256 = Hmac<Sha256>;

/// How long a token minted by [`RelaySecret::token`] is valid: longer than
/// any job should run (Lambda tasks end within 15 minutes; a job of
/// thousands of them, with retries, within hours).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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

    /// Mints a fresh token for a job, valid for [`DEFAULT_TOKEN_TTL`].
    pub fn token(&self, job: &str) -> String {
        self.token_for(job, DEFAULT_TOKEN_TTL)
    }

    /// Mints a fresh token for a job, valid for `ttl` from now.
    pub fn token_for(&self, job: &str, ttl: Duration) -> String {
        let expiry = unix_now().saturating_add(ttl.as_secs().max(1));
        let mut nonce = [0u8; 8];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut nonce)
            .expect("the operating system's random source failed");
        let nonce = hex(&nonce);
        let mac = hex(&self.mac(job, expiry, &nonce).finalize().into_bytes());
        format!("{expiry}.{nonce}.{mac}")
    }

    /// Checks a token: minted under this secret for this job and not yet
    /// expired. The MAC is compared in constant time.
    pub fn verify(&self, job: &str, token: &str) -> bool {
        self.verify_at(job, token, unix_now())
    }

    fn verify_at(&self, job: &str, token: &str, now: u64) -> bool {
        let mut parts = token.splitn(3, '.');
        let (Some(expiry), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(expiry_s) = expiry.parse::<u64>() else {
            return false;
        };
        if expiry_s <= now || nonce.len() != 16 || expiry != expiry_s.to_string() {
            return false;
        }
        match unhex(mac) {
            Some(bytes) => self.mac(job, expiry_s, nonce).verify_slice(&bytes).is_ok(),
            None => false,
        }
    }

    fn mac(&self, job: &str, expiry: u64, nonce: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        // Length-prefixed, so no two (job, expiry, nonce) share an input.
        for part in [
            job.as_bytes(),
            expiry.to_string().as_bytes(),
            nonce.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
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
        assert!(t.len() <= crate::proto::MAX_TOKEN_LEN, "{t}");
        assert!(s.verify("job-a", &t));
        assert!(!s.verify("job-b", &t));
        assert!(!s.verify("job-a", "zz"));
        assert!(!s.verify("job-a", ""));
        let other = RelaySecret::new(*b"fedcba9876543210").unwrap();
        assert!(!other.verify("job-a", &t));
        // Every token differs (per run), and each verifies.
        let u = s.token("job-a");
        assert_ne!(t, u);
        assert!(s.verify("job-a", &u));
    }

    #[test]
    fn tokens_expire_and_their_expiry_cannot_be_edited() {
        let s = RelaySecret::new(*b"0123456789abcdef").unwrap();
        let t = s.token_for("j", Duration::from_secs(60));
        let expiry: u64 = t.split('.').next().unwrap().parse().unwrap();
        assert!(s.verify_at("j", &t, expiry - 1));
        assert!(!s.verify_at("j", &t, expiry));
        assert!(!s.verify_at("j", &t, expiry + 3600));
        // Pushing the expiry out breaks the MAC.
        let rest = t.split_once('.').unwrap().1;
        let later = format!("{}.{rest}", expiry + 3600);
        assert!(!s.verify_at("j", &later, expiry - 1));
        // So does a leading zero (same number, other text).
        assert!(!s.verify_at("j", &format!("0{t}"), expiry - 1));
    }

    #[test]
    fn generated_secret_survives_a_round_trip_through_text() {
        let s = RelaySecret::generate();
        let text = s.as_text().unwrap();
        assert_eq!(text.len(), 64);
        let back = RelaySecret::new(text.as_bytes()).unwrap();
        assert!(back.verify("j", &s.token("j")));
        assert!(s.verify("j", &back.token("j")));
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(RelaySecret::new(*b"short").is_err());
    }
}
