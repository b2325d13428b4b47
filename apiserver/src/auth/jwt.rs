//! Compact JWS tokens signed with ES256 (ECDSA P-256, SHA-256), the form of
//! upstream's service-account tokens, and the JSON Web Key Set that lets
//! others verify them. The key ID is upstream's: the unpadded base64url
//! SHA-256 of the public key's DER `SubjectPublicKeyInfo`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use super::{Error, Result};

/// The DER prefix of a P-256 `SubjectPublicKeyInfo` (id-ecPublicKey,
/// prime256v1) before the 65-byte uncompressed point.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why a token does not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not three base64url parts with a JSON header and payload.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A signature algorithm other than ES256.
    #[error("unexpected signature algorithm {0:?}")]
    Algorithm(String),
    /// The signature does not verify with this key (another key signed it, or
    /// the token was altered).
    #[error("error in cryptographic primitive")]
    Signature,
}

/// The service-account signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    kid: String,
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<SigningKey> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| Error::Generate(e.to_string()))?;
        Self::from_pkcs8(&pair.serialize_der()).map_err(Error::Generate)
    }

    /// The key in `path` (PKCS#8 PEM), created there if missing.
    pub fn load_or_create(path: &Path) -> Result<SigningKey> {
        let malformed = |why: String| Error::Malformed {
            path: path.to_path_buf(),
            why,
        };
        if let Some(pem) = super::read_if_exists(path)? {
            let pair = rcgen::KeyPair::from_pem(&pem).map_err(|e| malformed(e.to_string()))?;
            return Self::from_pkcs8(pair.serialized_der()).map_err(malformed);
        }
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| Error::Generate(e.to_string()))?;
        super::write_private(path, &pair.serialize_pem())?;
        tracing::info!(path = %path.display(), "generated the service account signing key");
        Self::from_pkcs8(pair.serialized_der()).map_err(Error::Generate)
    }

    /// The key from PKCS#8 DER (e.g. a test that signs with the server's key).
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map_err(|e| format!("not an ECDSA P-256 PKCS#8 key: {e}"))?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        let kid = B64.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        Ok(SigningKey { pair, kid })
    }

    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// `claims` as a signed compact JWS.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let mut token = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|e| format!("signing failed: {e}"))?;
        token.push('.');
        token.push_str(&B64.encode(sig.as_ref()));
        Ok(token)
    }

    /// The claims of `token` once its signature verifies with this key.
    pub fn verify(&self, token: &str) -> Result<Value, VerifyError> {
        let parts = Parts::split(token)?;
        let header = parts.header()?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg != "ES256" {
            return Err(VerifyError::Algorithm(alg.to_string()));
        }
        let sig = B64
            .decode(parts.signature)
            .map_err(|_| VerifyError::Malformed("signature is not base64url"))?;
        signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.pair.public_key().as_ref(),
        )
        .verify(parts.signed.as_bytes(), &sig)
        .map_err(|_| VerifyError::Signature)?;
        parts.payload()
    }

    /// The public key as a JSON Web Key.
    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
        let coords = point.get(1..).unwrap_or_default();
        let (x, y) = coords.split_at(coords.len() / 2);
        json!({
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": B64.encode(x),
            "y": B64.encode(y),
        })
    }
}

/// The payload of `token` without checking its signature (to tell whose
/// token it is before trying keys, as upstream checks the issuer first).
pub fn unverified_claims(token: &str) -> Result<Value, VerifyError> {
    Parts::split(token)?.payload()
}

struct Parts<'a> {
    /// `header.payload`, what the signature covers.
    signed: &'a str,
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Parts<'a> {
    fn split(token: &'a str) -> Result<Parts<'a>, VerifyError> {
        let (signed, signature) = token
            .rsplit_once('.')
            .ok_or(VerifyError::Malformed("not a compact JWS"))?;
        let (header, payload) = signed
            .split_once('.')
            .ok_or(VerifyError::Malformed("not a compact JWS"))?;
        if payload.contains('.') {
            return Err(VerifyError::Malformed("not a compact JWS"));
        }
        Ok(Parts {
            signed,
            header,
            payload,
            signature,
        })
    }

    fn header(&self) -> Result<Value, VerifyError> {
        decode_json(self.header)
    }

    fn payload(&self) -> Result<Value, VerifyError> {
        decode_json(self.payload)
    }
}

fn decode_json(part: &str) -> Result<Value, VerifyError> {
    let bytes = B64
        .decode(part)
        .map_err(|_| VerifyError::Malformed("part is not base64url"))?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed("part is not JSON"))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(VerifyError::Malformed("part is not a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_with_its_key() {
        let key = SigningKey::generate().expect("key");
        let other = SigningKey::generate().expect("key");
        let token = key.sign(&json!({"sub": "a", "n": 1})).expect("sign");
        assert_eq!(key.verify(&token).expect("verifies")["sub"], "a");
        assert_eq!(other.verify(&token), Err(VerifyError::Signature));
        let (signed, _) = token.rsplit_once('.').expect("parts");
        let forged = format!("{signed}.{}", B64.encode([0u8; 64]));
        assert_eq!(key.verify(&forged), Err(VerifyError::Signature));
        assert!(matches!(key.verify("abc"), Err(VerifyError::Malformed(_))));
        assert_eq!(unverified_claims(&token).expect("claims")["n"], 1);
    }

    #[test]
    fn jwk_carries_the_point_and_key_id() {
        let key = SigningKey::generate().expect("key");
        let jwk = key.jwk();
        assert_eq!(jwk["kid"], key.key_id());
        let x = B64.decode(jwk["x"].as_str().expect("x")).expect("b64");
        let y = B64.decode(jwk["y"].as_str().expect("y")).expect("b64");
        assert_eq!((x.len(), y.len()), (32, 32));
        assert_eq!(key.key_id().len(), 43, "unpadded base64url of 32 bytes");
    }
}
