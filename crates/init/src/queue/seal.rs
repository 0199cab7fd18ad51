//! Sealing of what a job keeps of the client's request besides its payload.
//!
//! An accepted async request (and a retry or a subflow start that runs later)
//! stores the request's headers and query in its job body, because the run
//! gives them to scripts as `ctx.headers` and `ctx.query` exactly as a
//! synchronous run would. They may hold credentials (`Authorization`,
//! `?api_key=`), so they are never stored in clear: [`Sealer`] encrypts them
//! with XChaCha20-Poly1305 (a random 192-bit nonce per body, so nonces never
//! repeat in practice) under a key derived by HKDF-SHA256 from
//! `execution.shared_secret`, which every process that enqueues or runs jobs
//! has. The sealed text is `v1.<base64 of nonce and ciphertext>`.
//!
//! When the secret changes while jobs wait, their headers cannot be opened:
//! the job runs without them (logged), rather than not at all.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

const VERSION: &str = "v1.";
/// Ties ciphertexts to this use: a body sealed for something else does not open.
const CONTEXT: &[u8] = b"vnext job request headers v1";
const NONCE_LEN: usize = 24;

/// Encrypts and decrypts the sealed part of job bodies; see the module docs.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer whose key is derived from `secret`.
    pub fn new(secret: &str) -> Sealer {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"vnext"), secret.as_bytes())
            .expand(CONTEXT, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Sealer { key }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }

    /// `plain`, encrypted and authenticated.
    pub fn seal(&self, plain: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher()
            .encrypt(&nonce, Payload { msg: plain, aad: CONTEXT })
            .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{VERSION}{}", STANDARD_NO_PAD.encode(bytes))
    }

    /// What [`Sealer::seal`] sealed; `None` when `sealed` was not sealed with
    /// this key (another secret) or was altered.
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD_NO_PAD.decode(sealed.strip_prefix(VERSION)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: XNonce = <[u8; NONCE_LEN]>::try_from(nonce).ok()?.into();
        self.cipher().decrypt(&nonce, Payload { msg: ciphertext, aad: CONTEXT }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_with_the_same_secret_only() {
        let sealer = Sealer::new("the-shared-secret-of-this-cluster");
        let a = sealer.seal(b"authorization: Bearer s3cret");
        let b = sealer.seal(b"authorization: Bearer s3cret");
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("s3cret") && a.starts_with("v1."));
        assert_eq!(sealer.open(&a).unwrap(), b"authorization: Bearer s3cret");
        assert_eq!(Sealer::new("another-secret").open(&a), None);
        let mut altered = a.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open(&String::from_utf8(altered).unwrap()), None);
        assert_eq!(sealer.open("plain text"), None);
        assert_eq!(sealer.open("v1."), None);
    }
}
