//! The crypto floor: the public-key operations every message needs, in-process.

use std::time::Instant;

use crate::MESSAGE_BYTES;

pub struct Crypto {
    pub sign: f64,
    pub ecdh: f64,
    pub seal: f64,
}

/// Seconds per operation, in-process, with the hub's own keys.
pub fn crypto_floor(pki: &std::path::Path) -> anyhow::Result<Crypto> {
    use kopplung_transformers::Sealer;
    use kopplung_transformers::seal::{load_certificate, load_private_key};
    use openssl::derive::Deriver;
    use openssl::hash::MessageDigest;
    use openssl::sign::Signer;
    let sealer = Sealer::load(&pki.join("hub.crt"), &pki.join("hub.key"))?;
    let recipient = load_certificate(&pki.join("procedures/dresden-maengel.crt"))?;
    let hub_key = load_private_key(&pki.join("hub.key"))?;
    let message = vec![b'x'; MESSAGE_BYTES];
    let per = |n: u32, f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let started = Instant::now();
        for _ in 0..n {
            f()?;
        }
        Ok(started.elapsed().as_secs_f64() / f64::from(n))
    };
    let sign = per(2000, &mut || {
        let mut signer = Signer::new(MessageDigest::sha256(), &hub_key)?;
        signer.update(&message)?;
        signer.sign_to_vec()?;
        Ok(())
    })?;
    // Key agreement as CMS does it for an EC recipient (RFC 5753, ephemeral-static): a
    // fresh key pair, then ECDH with the recipient's public key.
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let recipient_public = recipient.public_key()?;
    let ecdh = per(2000, &mut || {
        let ephemeral = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
        let mut deriver = Deriver::new(&ephemeral)?;
        // As the hub seals: the recipient's key was checked once when it was chosen.
        deriver.set_peer_ex(&recipient_public, false)?;
        deriver.derive_to_vec()?;
        Ok(())
    })?;
    let seal = per(1000, &mut || {
        sealer.seal(&message, &recipient)?;
        Ok(())
    })?;
    Ok(Crypto { sign, ecdh, seal })
}
