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
    use kopplung_transformers::seal::{key_agreement, load_certificate, load_private_key};
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
    // Key agreement as the hub's CMS envelope makes it (RFC 5753, ephemeral-static): a
    // fresh key pair, then ECDH with the recipient's public key.
    let recipient_ec = recipient.public_key()?.ec_key()?;
    let ecdh = per(2000, &mut || {
        key_agreement(&recipient_ec)?;
        Ok(())
    })?;
    let seal = per(1000, &mut || {
        sealer.seal(&message, &recipient)?;
        Ok(())
    })?;
    Ok(Crypto { sign, ecdh, seal })
}
