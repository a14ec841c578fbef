//! Receipt numbers: short, unambiguous to read aloud (Crockford base32), e.g. `K7QX-2M4P`.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub fn generate() -> String {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn receipts_are_readable() {
        let r = super::generate();
        assert_eq!(r.len(), 9);
        assert!(!r.contains(['I', 'L', 'O', 'U']));
    }
}
