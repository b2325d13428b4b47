//! The cluster certificate authority: a self-signed ECDSA P-256 CA
//! (`CN=kubernetes`, as kubeadm names it) whose key signs the client
//! certificates of approved CertificateSigningRequests.

use std::path::Path;

use super::{Error, Result};

/// How long the generated CA is valid (kubeadm's CA lifetime).
const CA_YEARS: i32 = 10;

pub struct ClusterCa {
    cert_pem: String,
    key_pem: String,
}

impl ClusterCa {
    pub fn generate() -> Result<ClusterCa> {
        let failed = |e: rcgen::Error| Error::Generate(e.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubernetes");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        let (y, m, d) = today();
        params.not_before = rcgen::date_time_ymd(y, m, d);
        params.not_after = rcgen::date_time_ymd(y + CA_YEARS, m, d);
        let cert = params.self_signed(&key).map_err(failed)?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA in `cert`/`key` (PEM), generated there if either is missing.
    pub fn load_or_create(cert: &Path, key: &Path) -> Result<ClusterCa> {
        if let (Some(cert_pem), Some(key_pem)) =
            (super::read_if_exists(cert)?, super::read_if_exists(key)?)
        {
            rcgen::KeyPair::from_pem(&key_pem).map_err(|e| Error::Malformed {
                path: key.to_path_buf(),
                why: e.to_string(),
            })?;
            return Ok(ClusterCa { cert_pem, key_pem });
        }
        let ca = ClusterCa::generate()?;
        super::write_private(key, &ca.key_pem)?;
        super::write_private(cert, &ca.cert_pem)?;
        tracing::info!(path = %cert.display(), "generated the cluster certificate authority");
        Ok(ca)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

/// Today's UTC date (year, month, day).
fn today() -> (i32, u8, u8) {
    use chrono::Datelike;
    let now = chrono::Utc::now().date_naive();
    // Back a day so a slightly slow clock elsewhere still accepts the CA.
    let d = now.pred_opt().unwrap_or(now);
    (d.year(), d.month() as u8, d.day() as u8)
}
