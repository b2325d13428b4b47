//! The ciphers of an `EncryptionConfiguration`, each writing upstream's
//! envelope: `k8s:enc:<provider>:v1:<key name>:` followed by the nonce or IV
//! and the ciphertext.
//! - `aescbc`: AES (16, 24 or 32-byte key) in CBC mode with PKCS#7 padding,
//!   a random 16-byte IV;
//! - `aesgcm`: AES-GCM with a random 12-byte nonce, the storage key as
//!   additional authenticated data (a value copied under another key does
//!   not decrypt);
//! - `secretbox`: XSalsa20-Poly1305 with a 32-byte key and a random 24-byte
//!   nonce.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};

/// Why a value cannot be encrypted or decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    #[error("{provider} key {name:?}: {why}")]
    BadKey {
        provider: &'static str,
        name: String,
        why: String,
    },
    #[error("the value does not decrypt with {0}")]
    Decrypt(String),
    #[error("no randomness for a nonce")]
    Random,
}

/// One key of one cipher.
pub enum Cipher {
    AesCbc(AesKey),
    AesGcm(AesKey),
    SecretBox([u8; 32]),
}

/// An AES key of one of its three sizes.
pub enum AesKey {
    A128([u8; 16]),
    A192([u8; 24]),
    A256([u8; 32]),
}

fn random<const N: usize>() -> Result<[u8; N], CipherError> {
    let mut out = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
        .map_err(|_| CipherError::Random)?;
    Ok(out)
}

impl Cipher {
    /// `provider`'s cipher with `secret` (the raw key bytes).
    pub fn new(provider: &'static str, name: &str, secret: &[u8]) -> Result<Cipher, CipherError> {
        let bad = |why: String| CipherError::BadKey {
            provider,
            name: name.to_string(),
            why,
        };
        let aes = || -> Result<AesKey, CipherError> {
            match secret.len() {
                16 => Ok(AesKey::A128(
                    secret.try_into().map_err(|_| bad("16".into()))?,
                )),
                24 => Ok(AesKey::A192(
                    secret.try_into().map_err(|_| bad("24".into()))?,
                )),
                32 => Ok(AesKey::A256(
                    secret.try_into().map_err(|_| bad("32".into()))?,
                )),
                n => Err(bad(format!("key must be 16, 24 or 32 bytes, not {n}"))),
            }
        };
        match provider {
            "aescbc" => Ok(Cipher::AesCbc(aes()?)),
            "aesgcm" => Ok(Cipher::AesGcm(aes()?)),
            "secretbox" => Ok(Cipher::SecretBox(secret.try_into().map_err(|_| {
                bad(format!("key must be 32 bytes, not {}", secret.len()))
            })?)),
            other => Err(bad(format!("unknown provider {other}"))),
        }
    }

    /// `plaintext` encrypted (nonce or IV first); `context` is the storage key.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CipherError> {
        let failed = || CipherError::Decrypt("encryption failed".into());
        match self {
            Cipher::AesCbc(key) => {
                let iv: [u8; 16] = random()?;
                let ct = match key {
                    AesKey::A128(k) => cbc::Encryptor::<aes::Aes128>::new(k.into(), &iv.into())
                        .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
                    AesKey::A192(k) => cbc::Encryptor::<aes::Aes192>::new(k.into(), &iv.into())
                        .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
                    AesKey::A256(k) => cbc::Encryptor::<aes::Aes256>::new(k.into(), &iv.into())
                        .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
                };
                Ok([iv.as_slice(), &ct].concat())
            }
            Cipher::AesGcm(key) => {
                let nonce: [u8; 12] = random()?;
                let payload = Payload {
                    msg: plaintext,
                    aad: context,
                };
                let ct = match key {
                    AesKey::A128(k) => aes_gcm::Aes128Gcm::new(k.into())
                        .encrypt(&nonce.into(), payload)
                        .map_err(|_| failed())?,
                    AesKey::A192(k) => {
                        aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new(k.into())
                            .encrypt(&nonce.into(), payload)
                            .map_err(|_| failed())?
                    }
                    AesKey::A256(k) => aes_gcm::Aes256Gcm::new(k.into())
                        .encrypt(&nonce.into(), payload)
                        .map_err(|_| failed())?,
                };
                Ok([nonce.as_slice(), &ct].concat())
            }
            Cipher::SecretBox(k) => {
                let nonce: [u8; 24] = random()?;
                let ct = crypto_secretbox::XSalsa20Poly1305::new(k.into())
                    .encrypt(&nonce.into(), plaintext)
                    .map_err(|_| failed())?;
                Ok([nonce.as_slice(), &ct].concat())
            }
        }
    }

    /// The plaintext of `sealed` (as [`Cipher::seal`] wrote it).
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CipherError> {
        let failed = |what: &str| CipherError::Decrypt(what.to_string());
        match self {
            Cipher::AesCbc(key) => {
                if sealed.len() < 32 || !sealed.len().is_multiple_of(16) {
                    return Err(failed("aescbc: not whole blocks"));
                }
                let (iv, ct) = sealed.split_at(16);
                let iv: [u8; 16] = iv.try_into().map_err(|_| failed("aescbc: IV"))?;
                let out = match key {
                    AesKey::A128(k) => cbc::Decryptor::<aes::Aes128>::new(k.into(), &iv.into())
                        .decrypt_padded_vec_mut::<Pkcs7>(ct),
                    AesKey::A192(k) => cbc::Decryptor::<aes::Aes192>::new(k.into(), &iv.into())
                        .decrypt_padded_vec_mut::<Pkcs7>(ct),
                    AesKey::A256(k) => cbc::Decryptor::<aes::Aes256>::new(k.into(), &iv.into())
                        .decrypt_padded_vec_mut::<Pkcs7>(ct),
                };
                out.map_err(|_| failed("aescbc: bad padding (wrong key?)"))
            }
            Cipher::AesGcm(key) => {
                if sealed.len() < 12 + 16 {
                    return Err(failed("aesgcm: too short"));
                }
                let (nonce, ct) = sealed.split_at(12);
                let nonce: [u8; 12] = nonce.try_into().map_err(|_| failed("aesgcm: nonce"))?;
                let payload = Payload {
                    msg: ct,
                    aad: context,
                };
                let out = match key {
                    AesKey::A128(k) => {
                        aes_gcm::Aes128Gcm::new(k.into()).decrypt(&nonce.into(), payload)
                    }
                    AesKey::A192(k) => {
                        aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new(k.into())
                            .decrypt(&nonce.into(), payload)
                    }
                    AesKey::A256(k) => {
                        aes_gcm::Aes256Gcm::new(k.into()).decrypt(&nonce.into(), payload)
                    }
                };
                out.map_err(|_| failed("aesgcm: authentication failed (wrong key?)"))
            }
            Cipher::SecretBox(k) => {
                if sealed.len() < 24 + 16 {
                    return Err(failed("secretbox: too short"));
                }
                let (nonce, ct) = sealed.split_at(24);
                let nonce: [u8; 24] = nonce.try_into().map_err(|_| failed("secretbox: nonce"))?;
                crypto_secretbox::XSalsa20Poly1305::new(k.into())
                    .decrypt(&nonce.into(), ct)
                    .map_err(|_| failed("secretbox: authentication failed (wrong key?)"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cipher_round_trips_and_refuses_another_key() {
        for (provider, len) in [
            ("aescbc", 16),
            ("aescbc", 24),
            ("aescbc", 32),
            ("aesgcm", 16),
            ("aesgcm", 24),
            ("aesgcm", 32),
            ("secretbox", 32),
        ] {
            let cipher = Cipher::new(provider, "k", &vec![7u8; len]).expect("key");
            let other = Cipher::new(provider, "k2", &vec![8u8; len]).expect("key");
            let sealed = cipher
                .seal(b"top secret", b"/registry/secrets/a/b")
                .expect("seal");
            assert!(
                !sealed.windows(10).any(|w| w == b"top secret"),
                "{provider}"
            );
            assert_eq!(
                cipher
                    .open(&sealed, b"/registry/secrets/a/b")
                    .expect("open"),
                b"top secret"
            );
            assert!(
                other.open(&sealed, b"/registry/secrets/a/b").is_err(),
                "{provider}/{len}"
            );
        }
        let gcm = Cipher::new("aesgcm", "k", &[1u8; 32]).expect("key");
        let sealed = gcm.seal(b"x", b"/registry/secrets/a/b").expect("seal");
        assert!(
            gcm.open(&sealed, b"/registry/secrets/a/c").is_err(),
            "aesgcm binds the value to its key"
        );
        assert!(Cipher::new("aescbc", "k", &[0u8; 20]).is_err());
        assert!(Cipher::new("secretbox", "k", &[0u8; 16]).is_err());
    }
}
