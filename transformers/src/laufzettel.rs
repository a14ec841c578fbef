//! The hub's signature on an exported Laufzettel (audit trail of one application):
//! a detached CMS SignedData over the exported bytes, which anyone checks with stock
//! `openssl cms -verify -binary -inform DER -in sig.der -content laufzettel.json
//! -CAfile ca.crt`.

use openssl::cms::{CMSOptions, CmsContentInfo};

use crate::{Error, Sealer};

/// Signs `content` with the hub's signing certificate and key. Returns the DER of a
/// detached CMS SignedData (the content is not inside; the hub's certificate is).
pub fn sign_detached(signer: &Sealer, content: &[u8]) -> Result<Vec<u8>, Error> {
    let crypto = |context: &'static str| {
        move |source| Error::Crypto {
            context: context.into(),
            source,
        }
    };
    let signed = CmsContentInfo::sign(
        Some(signer.certificate()),
        Some(signer.key()),
        None,
        Some(content),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )
    .map_err(crypto("signing the Laufzettel"))?;
    signed
        .to_der()
        .map_err(crypto("encoding the Laufzettel signature"))
}

#[cfg(test)]
mod tests {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;

    use super::*;
    use crate::pki::{PkiLayout, init_demo_pki};
    use crate::seal::load_certificate;

    #[test]
    fn a_detached_signature_verifies_only_for_the_signed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiLayout::new(dir.path());
        init_demo_pki(&pki, &[]).unwrap();
        let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
        let content = br#"{"application_id":"x","entries":[]}"#;
        let der = sign_detached(&sealer, content).unwrap();

        let mut anchors = X509StoreBuilder::new().unwrap();
        anchors
            .add_cert(load_certificate(&pki.ca_cert()).unwrap())
            .unwrap();
        let anchors = anchors.build();
        let verify = |bytes: &[u8]| {
            let mut cms = CmsContentInfo::from_der(&der).unwrap();
            let certs = Stack::new().unwrap();
            cms.verify(
                Some(&certs),
                Some(&anchors),
                Some(bytes),
                None,
                CMSOptions::BINARY,
            )
            .is_ok()
        };
        assert!(verify(content));
        let mut changed = content.to_vec();
        changed[3] ^= 1;
        assert!(!verify(&changed));
    }
}
