//! The test bed's small PKI, the way envtest builds it: three ECDSA P-256 authorities, one
//! signing the apiserver's serving certificate, one signing client certificates (the
//! apiserver's `--client-ca-file`), and one key signing service-account tokens.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// The OID of X.520 organizationName (`O`), which Kubernetes reads groups from.
const ORGANIZATION_NAME_OID: [u64; 4] = [2, 5, 4, 10];

/// A certificate authority: its self-signed certificate and its key.
pub struct CertificateAuthority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl CertificateAuthority {
    fn new(common_name: &str) -> Result<Self> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let key = KeyPair::generate().context("generating a P-256 key")?;
        let issuer = CertifiedIssuer::self_signed(params, key)
            .with_context(|| format!("self-signing the {common_name} certificate"))?;
        Ok(Self { issuer })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a leaf certificate; returns `(cert_pem, key_pem)`.
    fn issue(&self, mut params: CertificateParams) -> Result<(String, String)> {
        set_validity(&mut params);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().context("generating a P-256 key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing a leaf certificate")?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365);
}

/// Everything the apiserver and its clients need.
pub struct TestbedCerts {
    /// Signs the apiserver's serving certificate; clients trust it.
    pub serving_ca: CertificateAuthority,
    /// Signs client certificates; the apiserver's `--client-ca-file`.
    pub client_ca: CertificateAuthority,
    /// `apiserver.crt` (SANs `localhost`, `127.0.0.1`).
    pub serving_cert_pem: String,
    /// `apiserver.key`.
    pub serving_key_pem: String,
    /// The service-account token signing key (PKCS#8 PEM).
    pub service_account_key_pem: String,
    /// Its public key (PKIX PEM), the apiserver's `--service-account-key-file`.
    pub service_account_public_key_pem: String,
}

impl TestbedCerts {
    /// Generates fresh authorities and the serving certificate.
    pub fn generate() -> Result<Self> {
        let serving_ca = CertificateAuthority::new("ec2-reconciler-testbed-serving-ca")?;
        let client_ca = CertificateAuthority::new("ec2-reconciler-testbed-client-ca")?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .context("building the serving certificate's SANs")?;
        params.distinguished_name = name("kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (serving_cert_pem, serving_key_pem) = serving_ca.issue(params)?;
        let sa_key = KeyPair::generate().context("generating the service-account signing key")?;
        Ok(Self {
            serving_ca,
            client_ca,
            serving_cert_pem,
            serving_key_pem,
            service_account_key_pem: sa_key.serialize_pem(),
            service_account_public_key_pem: sa_key.public_key_pem(),
        })
    }

    /// A client certificate signed by the client CA: `CN=user`, one `O=` per group. Returns
    /// `(cert_pem, key_pem)`.
    ///
    /// At most two groups: rcgen keys a subject's attributes by type, so the second `O` is
    /// written through a custom attribute type with organizationName's OID (which encodes the
    /// same). For more groups, impersonate (`Impersonate-Group`) from the admin client.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<(String, String)> {
        let mut params = CertificateParams::default();
        let mut dn = name(user);
        match groups {
            [] => {}
            [first] => dn.push(DnType::OrganizationName, *first),
            [first, second] => {
                dn.push(DnType::OrganizationName, *first);
                dn.push(
                    DnType::CustomDnType(ORGANIZATION_NAME_OID.to_vec()),
                    *second,
                );
            }
            _ => bail!(
                "client_cert({user}, {groups:?}): a client certificate carries at most two \
                 groups here; impersonate the others"
            ),
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.client_ca
            .issue(params)
            .with_context(|| format!("issuing a client certificate for {user}"))
    }

    /// Writes the files kube-apiserver reads into `dir`: `apiserver.crt`/`.key` (its
    /// `--cert-dir`), `client-ca.crt`, `serving-ca.crt`, `sa-signer.key`, `sa-signer.pub`.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = [
            ("apiserver.crt", &self.serving_cert_pem),
            ("apiserver.key", &self.serving_key_pem),
            ("client-ca.crt", &self.client_ca.cert_pem()),
            ("serving-ca.crt", &self.serving_ca.cert_pem()),
            ("sa-signer.key", &self.service_account_key_pem),
            ("sa-signer.pub", &self.service_account_public_key_pem),
        ];
        for (file, contents) in files {
            let path = dir.join(file);
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
