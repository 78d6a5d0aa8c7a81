//! RSA certificates for delivery tests, and requests that carry them.

use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use std::sync::OnceLock;

/// A test recipient: certificate (DER) and private key (PKCS#8 PEM).
pub struct Recipient {
    /// DER certificate.
    pub cert_der: Vec<u8>,
    /// PKCS#8 PEM private key.
    pub key_pem: String,
}

fn rsa_key(bits: usize) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).expect("RSA key")
}

/// An RSA public key as rcgen wants it (PKCS#1 `RSAPublicKey`).
struct RsaPublic(Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// The issuer of test certificates (ring cannot sign with keys under 2048
/// bits, so small keys are certified by this one instead of themselves).
fn issuer() -> &'static (rcgen::Certificate, rcgen::KeyPair) {
    static ISSUER: OnceLock<(rcgen::Certificate, rcgen::KeyPair)> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let key = rsa_key(2048);
        let der = key.to_pkcs8_der().expect("der");
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .expect("rcgen key");
        let cert = rcgen::CertificateParams::new(vec!["issuer.test".into()])
            .unwrap()
            .self_signed(&pair)
            .expect("issuer");
        (cert, pair)
    })
}

/// A certificate for a fresh RSA key of `bits`, valid from `from` to
/// `until` (years).
pub fn make(bits: usize, from: i32, until: i32) -> Recipient {
    use rsa::pkcs1::EncodeRsaPublicKey;
    let key = rsa_key(bits);
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string();
    let public = RsaPublic(
        key.to_public_key()
            .to_pkcs1_der()
            .expect("public der")
            .as_bytes()
            .to_vec(),
    );
    let mut params = rcgen::CertificateParams::new(vec!["recipient.test".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(until, 1, 1);
    let (issuer_cert, issuer_key) = issuer();
    let cert = params
        .signed_by(&public, issuer_cert, issuer_key)
        .expect("certificate");
    Recipient {
        cert_der: cert.der().to_vec(),
        key_pem: pem,
    }
}

/// Two valid 2048-bit recipients, made once per test binary.
pub fn pair() -> &'static [Recipient; 2] {
    static PAIR: OnceLock<[Recipient; 2]> = OnceLock::new();
    PAIR.get_or_init(|| [make(2048, 2020, 2099), make(2048, 2020, 2099)])
}

/// Inserts a DeliveryDataList with one DeliveryData per certificate after
/// the opening `CPIX` tag of `request`.
pub fn with_recipients(request: &str, certs: &[&[u8]]) -> String {
    let mut list = String::from("<cpix:DeliveryDataList>");
    for (i, der) in certs.iter().enumerate() {
        list.push_str(&format!(
            "<cpix:DeliveryData id=\"recipient{i}\"><cpix:DeliveryKey><ds:X509Data xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData>",
            cpixd::b64::encode(der)
        ));
    }
    list.push_str("</cpix:DeliveryDataList>");
    let start = request.find("<cpix:CPIX").expect("CPIX");
    let end = start + request[start..].find('>').expect(">") + 1;
    format!("{}{list}{}", &request[..end], &request[end..])
}
