//! Signed checkpoints of the chains' heads: they show entries removed from the end of a
//! chain, also when the sequence was reset with them, and a chain removed whole.
//!
//! A checkpoint is the hub's signed statement that, at time `at`, the last entry of every
//! chain was entry `seq` with `hash`: one statement names all chains (see
//! [`super::GLOBAL_CHAIN`]), which ties the chains of several PostgreSQL instances
//! together. The hub writes one at start, every `[audit] checkpoint_secs`
//! while the chain grows, and at shutdown, into the store (`audit_checkpoints`).
//! Verification checks every checkpoint's signature and that its entry is still in the
//! chain with that hash. Checkpoints kept outside the hub (`kopplung audit checkpoints`,
//! or the ones an export carries) show a truncation also when the checkpoints in the
//! store were removed with it.
//!
//! # The signed statement
//!
//! The signature is a detached CMS SignedData (DER) by the hub's signing certificate —
//! the same key and code as a Laufzettel export — over exactly this UTF-8 text, every
//! line ending in `\n`. While the only chain is the global one (SQLite; PostgreSQL
//! before its instances wrote chains of their own), format 1, as hubs always wrote it:
//!
//! ```text
//! kopplung-audit-checkpoint-v1
//! seq 1234
//! hash 5b4cf4ea7e38c3134e37dbe247a0925306d59dc15168fd1009247cfaffd64b3a
//! at 2025-01-02T03:04:05Z
//! ```
//!
//! Otherwise format 2, one line per chain, ordered by chain id (byte order):
//!
//! ```text
//! kopplung-audit-checkpoint-v2
//! chain global seq 1234 hash 5b4cf4ea7e38c3134e37dbe247a0925306d59dc15168fd1009247cfaffd64b3a
//! chain kopplung-3f0c… seq 77 hash 0d1e…
//! at 2025-01-02T03:04:05Z
//! ```
//!
//! `at` is RFC 3339 in UTC, whole seconds. Stock openssl checks one (`statement` and
//! `signature` of its JSON form, see [`Checkpoint::to_json`]):
//!
//! ```text
//! jq -j .statement checkpoint.json > statement.txt
//! jq -r .signature checkpoint.json | base64 -d > statement.der
//! openssl cms -verify -binary -inform DER -in statement.der -content statement.txt \
//!     -CAfile ca.crt -out /dev/null
//! ```
//!
//! (after the hub's certificate has expired, add `-attime <unix time of at>`: the
//! verifier checks the certificate at the checkpoint's time).

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The first line of a checkpoint's statement of format 1 (the global chain only).
pub const CHECKPOINT_DOMAIN: &str = "kopplung-audit-checkpoint-v1";

/// The first line of a checkpoint's statement of format 2 (every chain's head).
pub const CHECKPOINT_DOMAIN_V2: &str = "kopplung-audit-checkpoint-v2";

/// The last entry of one chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainHead {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    /// The head of the global chain (what a checkpoint of format 1 names).
    pub fn global(seq: i64, hash: impl Into<String>) -> Self {
        Self {
            chain: super::GLOBAL_CHAIN.to_owned(),
            seq,
            hash: hash.into(),
        }
    }
}

/// A signed checkpoint of the chains' heads.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The head of every chain, ordered by chain id.
    pub heads: Vec<ChainHead>,
    /// RFC 3339, UTC, whole seconds, as signed.
    pub at: String,
    /// DER of the detached CMS signature over [`Checkpoint::statement`].
    pub signature: Vec<u8>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("heads", &self.heads)
            .field("at", &self.at)
            .field("signature_bytes", &self.signature.len())
            .finish()
    }
}

/// The text a checkpoint of format 1 signs (see the module documentation).
pub fn statement(seq: i64, hash: &str, at: &str) -> String {
    format!("{CHECKPOINT_DOMAIN}\nseq {seq}\nhash {hash}\nat {at}\n")
}

/// The text a checkpoint of `heads` (ordered by chain) at `at` signs: format 1 if the
/// global chain is the only one, else format 2.
pub fn heads_statement(heads: &[ChainHead], at: &str) -> String {
    if let [only] = heads
        && only.chain == super::GLOBAL_CHAIN
    {
        return statement(only.seq, &only.hash, at);
    }
    let mut text = format!("{CHECKPOINT_DOMAIN_V2}\n");
    text.push_str(&heads_lines(heads));
    text.push_str(&format!("at {at}\n"));
    text
}

/// The chain lines of a statement of format 2 (how a store keeps the heads).
pub fn heads_lines(heads: &[ChainHead]) -> String {
    heads
        .iter()
        .map(|h| format!("chain {} seq {} hash {}\n", h.chain, h.seq, h.hash))
        .collect()
}

/// The heads from [`heads_lines`]' text; `None` if it is not such text.
pub fn parse_heads_lines(text: &str) -> Option<Vec<ChainHead>> {
    text.lines()
        .map(|line| match line.split(' ').collect::<Vec<_>>()[..] {
            ["chain", chain, "seq", seq, "hash", hash] => Some(ChainHead {
                chain: chain.to_owned(),
                seq: seq.parse().ok()?,
                hash: hash.to_owned(),
            }),
            _ => None,
        })
        .collect()
}

/// The time of a checkpoint made at `now`, as it is signed.
pub fn checkpoint_time(now: OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl Checkpoint {
    /// The text its signature covers.
    pub fn statement(&self) -> String {
        heads_statement(&self.heads, &self.at)
    }

    /// Whether it is of format 1: the global chain's head only.
    fn is_v1(&self) -> bool {
        matches!(&self.heads[..], [only] if only.chain == super::GLOBAL_CHAIN)
    }

    /// The JSON form `kopplung audit checkpoints` prints and an export carries, the
    /// signature in base64. Format 1: `{seq, hash, at, statement, signature}`, as
    /// always; format 2: `{heads: [{chain, seq, hash}], at, statement, signature}`.
    pub fn to_json(&self) -> Value {
        match &self.heads[..] {
            [only] if self.is_v1() => json!({
                "seq": only.seq,
                "hash": only.hash,
                "at": self.at,
                "statement": self.statement(),
                "signature": STANDARD.encode(&self.signature),
            }),
            heads => json!({
                "heads": heads
                    .iter()
                    .map(|h| json!({"chain": h.chain, "seq": h.seq, "hash": h.hash}))
                    .collect::<Vec<_>>(),
                "at": self.at,
                "statement": self.statement(),
                "signature": STANDARD.encode(&self.signature),
            }),
        }
    }

    /// One checkpoint from its JSON form (a given `statement` must be the one its
    /// fields make).
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let field = |name: &str| {
            value
                .get(name)
                .ok_or_else(|| format!("a checkpoint without `{name}`"))
        };
        let text_of = |value: &Value, name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("a checkpoint's `{name}` is no string"))
        };
        let seq_of = |value: &Value| {
            value
                .get("seq")
                .and_then(Value::as_i64)
                .ok_or("a checkpoint's `seq` is no integer")
        };
        let heads = match value.get("heads") {
            Some(heads) => heads
                .as_array()
                .ok_or("a checkpoint's `heads` is no list")?
                .iter()
                .map(|head| {
                    Ok(ChainHead {
                        chain: text_of(head, "chain")?,
                        seq: seq_of(head)?,
                        hash: text_of(head, "hash")?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
            None => {
                field("seq")?;
                vec![ChainHead::global(seq_of(value)?, text_of(value, "hash")?)]
            }
        };
        field("at")?;
        field("signature")?;
        let checkpoint = Self {
            heads,
            at: text_of(value, "at")?,
            signature: STANDARD
                .decode(text_of(value, "signature")?)
                .map_err(|e| format!("a checkpoint's `signature` is no base64: {e}"))?,
        };
        if let Some(given) = value.get("statement")
            && given.as_str() != Some(checkpoint.statement().as_str())
        {
            return Err(format!(
                "the checkpoint of {} states something else than its fields",
                checkpoint.at
            ));
        }
        Ok(checkpoint)
    }
}

/// Checkpoints as a JSON array.
pub fn to_json_list(checkpoints: &[Checkpoint]) -> Value {
    Value::Array(checkpoints.iter().map(Checkpoint::to_json).collect())
}

/// Checkpoints from a file's text: a JSON array of them (`kopplung audit checkpoints`),
/// or an object with such an array under `checkpoints` (an export).
pub fn parse_list(text: &str) -> Result<Vec<Checkpoint>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("no JSON: {e}"))?;
    let list = match &value {
        Value::Array(list) => list,
        Value::Object(object) => object
            .get("checkpoints")
            .and_then(Value::as_array)
            .ok_or("no `checkpoints` array")?,
        _ => return Err("neither a list of checkpoints nor an export".into()),
    };
    list.iter().map(Checkpoint::from_json).collect()
}

/// What checkpoint signatures are checked against: the CA certificates that issued the
/// hub's signing certificate.
pub struct CheckpointTrust {
    anchors: Vec<X509>,
}

impl CheckpointTrust {
    /// The trust anchors from a PEM file (one or more certificates).
    pub fn load(ca: &Path) -> Result<Self, crate::Error> {
        let invalid = |message: String| crate::Error::Config {
            file: ca.to_owned(),
            message,
        };
        let pem = std::fs::read(ca).map_err(|e| invalid(e.to_string()))?;
        let anchors = X509::stack_from_pem(&pem).map_err(|e| invalid(e.to_string()))?;
        if anchors.is_empty() {
            return Err(invalid("no certificate".into()));
        }
        Ok(Self { anchors })
    }

    /// Checks a checkpoint's signature over its statement, with the signer's certificate
    /// checked at the checkpoint's time. The reason if it does not verify.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), String> {
        let at = OffsetDateTime::parse(&checkpoint.at, &Rfc3339)
            .map_err(|_| "its time is not RFC 3339".to_owned())?;
        let crypto = |e: openssl::error::ErrorStack| e.to_string();
        let mut builder = X509StoreBuilder::new().map_err(crypto)?;
        for anchor in &self.anchors {
            builder.add_cert(anchor.clone()).map_err(crypto)?;
        }
        let mut param = X509VerifyParam::new().map_err(crypto)?;
        // `time_t` is i64 on this platform, not on every one.
        #[allow(clippy::useless_conversion)]
        let time = at
            .unix_timestamp()
            .try_into()
            .map_err(|_| "its time is out of range".to_owned())?;
        param.set_time(time);
        builder.set_param(&param).map_err(crypto)?;
        let store = builder.build();
        let mut cms = CmsContentInfo::from_der(&checkpoint.signature)
            .map_err(|_| "the signature is no CMS structure".to_owned())?;
        cms.verify(
            None,
            Some(&store),
            Some(checkpoint.statement().as_bytes()),
            None,
            CMSOptions::BINARY,
        )
        .map_err(|e| {
            let reason = e
                .errors()
                .first()
                .and_then(|e| e.reason().map(str::to_owned))
                .unwrap_or_else(|| e.to_string());
            format!("the signature does not verify ({reason})")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopplung_transformers::Sealer;
    use kopplung_transformers::laufzettel::sign_detached;
    use kopplung_transformers::pki::{PkiLayout, init_demo_pki};

    fn pki() -> (tempfile::TempDir, Sealer, CheckpointTrust) {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiLayout::new(dir.path());
        init_demo_pki(&pki, &[]).unwrap();
        let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
        let trust = CheckpointTrust::load(&pki.ca_cert()).unwrap();
        (dir, sealer, trust)
    }

    fn signed(sealer: &Sealer, seq: i64, at: &str) -> Checkpoint {
        let hash = "ab".repeat(32);
        Checkpoint {
            signature: sign_detached(sealer, statement(seq, &hash, at).as_bytes()).unwrap(),
            heads: vec![ChainHead::global(seq, hash)],
            at: at.into(),
        }
    }

    /// A checkpoint of format 2 over two chains.
    fn signed_v2(sealer: &Sealer, at: &str) -> Checkpoint {
        let heads = vec![
            ChainHead::global(40, "ab".repeat(32)),
            ChainHead {
                chain: "kopplung-a".into(),
                seq: 7,
                hash: "cd".repeat(32),
            },
        ];
        Checkpoint {
            signature: sign_detached(sealer, heads_statement(&heads, at).as_bytes()).unwrap(),
            heads,
            at: at.into(),
        }
    }

    #[test]
    fn a_checkpoint_of_several_chains_names_each_head() {
        let (_dir, sealer, trust) = pki();
        let checkpoint = signed_v2(&sealer, "2025-01-02T03:04:05Z");
        assert_eq!(
            checkpoint.statement(),
            format!(
                "kopplung-audit-checkpoint-v2\nchain global seq 40 hash {}\nchain kopplung-a seq 7 hash {}\nat 2025-01-02T03:04:05Z\n",
                "ab".repeat(32),
                "cd".repeat(32)
            )
        );
        let now = checkpoint_time(OffsetDateTime::now_utc());
        let checkpoint = signed_v2(&sealer, &now);
        assert_eq!(trust.verify(&checkpoint), Ok(()));
        // A chain left out, another seq, another chain's name: not what was signed.
        let mut fewer = checkpoint.clone();
        fewer.heads.pop();
        assert!(trust.verify(&fewer).is_err());
        let mut moved = checkpoint.clone();
        moved.heads[1].seq = 6;
        assert!(trust.verify(&moved).is_err());
        let mut renamed = checkpoint.clone();
        renamed.heads[1].chain = "kopplung-b".into();
        assert!(trust.verify(&renamed).is_err());
        // The JSON form and the stored lines carry every head.
        let list = to_json_list(std::slice::from_ref(&checkpoint));
        assert_eq!(list[0]["heads"][1]["chain"], "kopplung-a");
        assert_eq!(
            parse_list(&list.to_string()).unwrap(),
            vec![checkpoint.clone()]
        );
        assert_eq!(
            parse_heads_lines(&heads_lines(&checkpoint.heads)),
            Some(checkpoint.heads.clone())
        );
        assert_eq!(parse_heads_lines("chain x seq y hash z\n"), None);
    }

    #[test]
    fn the_statement_is_fixed_text() {
        assert_eq!(
            statement(12, &"ab".repeat(32), "2025-01-02T03:04:05Z"),
            format!(
                "kopplung-audit-checkpoint-v1\nseq 12\nhash {}\nat 2025-01-02T03:04:05Z\n",
                "ab".repeat(32)
            )
        );
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_735_787_045_123_456_789).unwrap();
        assert_eq!(checkpoint_time(at), "2025-01-02T03:04:05Z");
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_a_changed_one_does_not() {
        let (_dir, sealer, trust) = pki();
        let now = checkpoint_time(OffsetDateTime::now_utc());
        let checkpoint = signed(&sealer, 7, &now);
        assert_eq!(trust.verify(&checkpoint), Ok(()));
        let mut moved = checkpoint.clone();
        moved.heads[0].seq = 6;
        assert!(
            trust
                .verify(&moved)
                .unwrap_err()
                .contains("does not verify")
        );
        let mut rehashed = checkpoint.clone();
        rehashed.heads[0].hash = "cd".repeat(32);
        assert!(trust.verify(&rehashed).is_err());
        let mut garbage = checkpoint.clone();
        garbage.signature = vec![1, 2, 3];
        assert!(trust.verify(&garbage).is_err());
        // Another CA's hub: not trusted.
        let (_other, foreign, _) = pki();
        assert!(trust.verify(&signed(&foreign, 7, &now)).is_err());
    }

    #[test]
    fn the_certificate_is_checked_at_the_checkpoints_time() {
        let (_dir, sealer, trust) = pki();
        // Signed now, but claiming a time before the certificate was issued.
        let early = signed(&sealer, 1, "2001-01-01T00:00:00Z");
        assert!(trust.verify(&early).is_err());
    }

    #[test]
    fn checkpoints_go_to_json_and_back() {
        let (_dir, sealer, _) = pki();
        let checkpoint = signed(&sealer, 3, "2025-01-02T03:04:05Z");
        let list = to_json_list(std::slice::from_ref(&checkpoint));
        assert_eq!(list[0]["statement"], checkpoint.statement());
        assert_eq!(
            parse_list(&list.to_string()).unwrap(),
            vec![checkpoint.clone()]
        );
        let export = json!({"laufzettel": "…", "checkpoints": list});
        assert_eq!(parse_list(&export.to_string()).unwrap().len(), 1);
        let mut lying = list.clone();
        lying[0]["seq"] = json!(4);
        assert!(
            parse_list(&lying.to_string())
                .unwrap_err()
                .contains("states something else")
        );
        assert!(parse_list("{}").is_err());
        assert!(parse_list("[{\"seq\": 1}]").is_err());
    }
}
