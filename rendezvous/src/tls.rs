//! TLS for the relay: a self-signed certificate pinned by fingerprint, or a
//! real certificate verified against root certificates.
//!
//! Only TLS 1.3 with the `ring` provider is used (QUIC requires 1.3, and
//! `ring` builds without a C toolchain beyond `cc`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::auth::{hex, unhex};
use crate::error::ConfigError;
use crate::proto::ALPN;

/// Server name a self-signed relay certificate is issued for; pinned clients
/// present it but do not rely on it.
pub const SELF_SIGNED_NAME: &str = "excam-relay";

/// SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER certificate.
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert_der).into())
    }

    /// Parses 64 hex digits, with or without `:` separators.
    ///
    /// # Errors
    /// [`ConfigError::BadFingerprint`] for anything else.
    pub fn parse(s: &str) -> Result<Fingerprint, ConfigError> {
        let bytes = unhex(s.trim()).ok_or_else(|| ConfigError::BadFingerprint(s.into()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ConfigError::BadFingerprint(s.into()))?;
        Ok(Fingerprint(arr))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fingerprint::parse(s)
    }
}

/// The relay's certificate chain and private key.
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsIdentity({})", self.fingerprint())
    }
}

impl TlsIdentity {
    /// A fresh self-signed certificate for [`SELF_SIGNED_NAME`] and `localhost`.
    ///
    /// # Errors
    /// [`ConfigError::CertGen`] if key generation fails.
    pub fn self_signed() -> Result<TlsIdentity, ConfigError> {
        let ck = rcgen::generate_simple_self_signed(vec![
            SELF_SIGNED_NAME.to_string(),
            "localhost".to_string(),
        ])?;
        Ok(TlsIdentity {
            chain: vec![ck.cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()).into(),
        })
    }

    /// Loads `cert.pem` and `key.pem` from `dir`, or makes a self-signed pair
    /// and writes it there first (the key readable by its owner only). A
    /// relay restarted this way keeps its fingerprint, so pinned clients can
    /// reconnect.
    ///
    /// # Errors
    /// [`ConfigError::Io`] if the directory or files cannot be written,
    /// [`ConfigError::BadPem`] if existing files are unusable.
    pub fn load_or_create(dir: &Path) -> Result<TlsIdentity, ConfigError> {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        if cert.exists() || key.exists() {
            return Self::from_pem_files(&cert, &key);
        }
        let io = |p: &Path, e| ConfigError::Io(p.display().to_string(), e);
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let ck = rcgen::generate_simple_self_signed(vec![
            SELF_SIGNED_NAME.to_string(),
            "localhost".to_string(),
        ])?;
        write_private(&key, ck.key_pair.serialize_pem().as_bytes()).map_err(|e| io(&key, e))?;
        std::fs::write(&cert, ck.cert.pem()).map_err(|e| io(&cert, e))?;
        Self::from_pem_files(&cert, &key)
    }

    /// Builds an identity from DER parts; the leaf certificate comes first.
    pub fn from_der(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        TlsIdentity { chain, key }
    }

    /// Loads a PEM certificate chain and a PEM private key (`--cert/--key`).
    ///
    /// # Errors
    /// [`ConfigError::BadPem`] if either file is unreadable or holds nothing usable.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, ConfigError> {
        let bad =
            |p: &Path, e: &dyn fmt::Display| ConfigError::BadPem(format!("{}: {e}", p.display()));
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad(cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(cert, &e))?;
        if chain.is_empty() {
            return Err(bad(cert, &"no certificate found"));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
        Ok(TlsIdentity {
            chain,
            key: key_der,
        })
    }

    /// SHA-256 fingerprint of the leaf certificate, which clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.chain.first().map(|c| c.as_ref()).unwrap_or(&[]))
    }

    /// The leaf certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }
}

/// Writes a file only its owner can read (where the OS has such modes).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Server-side rustls configuration for QUIC (TLS 1.3, ALPN set, no 0-RTT).
/// Public so tools can serve a raw `quinn` endpoint with the relay's settings.
///
/// # Errors
/// [`ConfigError::Tls`] if rustls refuses the certificate or key.
pub fn server_crypto(id: &TlsIdentity) -> Result<rustls::ServerConfig, ConfigError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(id.chain.clone(), id.key.clone_key())?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    // 0-RTT would let a replayed put or end_job through; not worth the risk.
    cfg.max_early_data_size = 0;
    Ok(cfg)
}

/// How a client decides to trust the relay.
#[derive(Clone, Debug)]
pub enum ServerAuth {
    /// Trust exactly the certificate with this SHA-256 fingerprint (the
    /// default self-signed relay prints it at start).
    Pinned(Fingerprint),
    /// Verify the certificate chain and name the normal way against these roots
    /// (`--cert/--key` relays with a real certificate).
    Roots(Arc<RootCertStore>),
}

impl ServerAuth {
    /// Roots from a PEM file of CA certificates.
    ///
    /// # Errors
    /// [`ConfigError::BadPem`] if the file holds no usable certificate.
    pub fn ca_file(path: &Path) -> Result<ServerAuth, ConfigError> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ConfigError::BadPem(format!("{}: {e}", path.display())))?;
        for c in certs {
            let c = c.map_err(|e| ConfigError::BadPem(format!("{}: {e}", path.display())))?;
            roots.add(c)?;
        }
        if roots.is_empty() {
            return Err(ConfigError::BadPem(format!(
                "{}: no certificate",
                path.display()
            )));
        }
        Ok(ServerAuth::Roots(Arc::new(roots)))
    }

    /// The operating system's root certificates.
    pub fn system_roots() -> ServerAuth {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped: the handshake will
        // fail later with a clear verification error if none was needed.
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        ServerAuth::Roots(Arc::new(roots))
    }
}

/// Client-side rustls configuration for QUIC (TLS 1.3, ALPN set). Public so
/// tools and tests can speak the protocol over their own `quinn` endpoint.
///
/// # Errors
/// [`ConfigError::Tls`] if rustls refuses the settings.
pub fn client_crypto(auth: &ServerAuth) -> Result<rustls::ClientConfig, ConfigError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut cfg = match auth {
        ServerAuth::Pinned(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                pin: *fp,
                provider: provider(),
            }))
            .with_no_client_auth(),
        ServerAuth::Roots(roots) => builder
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

/// Accepts exactly one certificate, by fingerprint, while still checking
/// that the handshake is signed by that certificate's key (so a replayed
/// certificate without the key gets nowhere).
#[derive(Debug)]
struct PinnedVerifier {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        // Fingerprints are public, so a plain comparison leaks nothing.
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "relay certificate fingerprint {got} does not match the pinned {}",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_identity_keeps_its_fingerprint() {
        let dir = std::env::temp_dir().join(format!("excam-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = TlsIdentity::load_or_create(&dir).unwrap();
        let b = TlsIdentity::load_or_create(&dir).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fingerprint_parses_with_and_without_colons() {
        let id = TlsIdentity::self_signed().unwrap();
        let fp = id.fingerprint();
        let plain = fp.to_string();
        assert_eq!(plain.len(), 64);
        assert_eq!(Fingerprint::parse(&plain).unwrap(), fp);
        let colons: Vec<String> = fp.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(Fingerprint::parse(&colons.join(":")).unwrap(), fp);
        assert!(Fingerprint::parse("abcd").is_err());
    }
}
