//! Internal request signing between workers (KIP-507, connect-compat.md §4.9): the leader's
//! session key signs the exact request body with HMAC; a receiver checks the headers in Java's
//! order and answers with Java's codes, comparing MACs in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::config_store::record::SessionKey;

pub const SIGNATURE_HEADER: &str = "X-Connect-Authorization";
pub const ALGORITHM_HEADER: &str = "X-Connect-Request-Signature-Algorithm";

/// Java's name of a MAC algorithm → OpenSSL's digest.
fn digest(algorithm: &str) -> Option<MessageDigest> {
    match algorithm {
        "HmacSHA256" => Some(MessageDigest::sha256()),
        "HmacSHA384" => Some(MessageDigest::sha384()),
        "HmacSHA512" => Some(MessageDigest::sha512()),
        "HmacSHA1" => Some(MessageDigest::sha1()),
        _ => None,
    }
}

fn mac(key: &[u8], algorithm: &str, body: &[u8]) -> Option<Vec<u8>> {
    let pkey = PKey::hmac(key).ok()?;
    let mut s = Signer::new(digest(algorithm)?, &pkey).ok()?;
    s.sign_oneshot_to_vec(body).ok()
}

/// The two headers to add to an internal request: (name, value) pairs.
pub fn sign(key: &SessionKey, algorithm: &str, body: &[u8]) -> Option<[(&'static str, String); 2]> {
    let m = mac(&key.key, algorithm, body)?;
    Some([
        (SIGNATURE_HEADER, B64.encode(m)),
        (ALGORITHM_HEADER, algorithm.to_string()),
    ])
}

/// Why an internal request is refused: the HTTP status and Java's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

/// Checks an internal request: no signature → 400; an algorithm not in
/// `inter.worker.verification.algorithms` → 400; no session key read yet → 503; a MAC that does not
/// match the current key → 403.
pub fn verify(
    signature: Option<&str>,
    algorithm: Option<&str>,
    allowed: &[String],
    key: Option<&SessionKey>,
    body: &[u8],
) -> Result<(), Refusal> {
    let (Some(signature), Some(algorithm)) = (signature, algorithm) else {
        return Err(Refusal {
            status: 400,
            message: "Internal request missing required signature".into(),
        });
    };
    if !allowed.iter().any(|a| a == algorithm) || digest(algorithm).is_none() {
        return Err(Refusal {
            status: 400,
            message: format!(
                "Internal request signed with unsupported algorithm {algorithm}; this worker accepts {}",
                allowed.join(", ")
            ),
        });
    }
    let Some(key) = key else {
        return Err(Refusal {
            status: 503,
            message: "This worker has not yet read a session key from the config topic; try again shortly".into(),
        });
    };
    let expected = mac(&key.key, algorithm, body).unwrap_or_default();
    let given = B64.decode(signature.trim()).unwrap_or_default();
    if expected.len() != given.len() || !openssl::memcmp::eq(&expected, &given) {
        return Err(Refusal {
            status: 403,
            message: "Internal request contained invalid signature.".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(bytes: &[u8]) -> SessionKey {
        SessionKey {
            key: bytes.to_vec(),
            algorithm: "HmacSHA256".into(),
            creation_timestamp: 0,
        }
    }

    #[test]
    fn a_signed_body_verifies_and_anything_else_gets_javas_codes() {
        let k = key(&[7u8; 32]);
        let allowed = vec!["HmacSHA256".to_string()];
        let body = br#"[{"connector.class":"X"}]"#;
        let [(h1, sig), (h2, alg)] = sign(&k, "HmacSHA256", body).unwrap_or_else(|| panic!("sign"));
        assert_eq!((h1, h2), (SIGNATURE_HEADER, ALGORITHM_HEADER));
        assert_eq!(
            verify(Some(&sig), Some(&alg), &allowed, Some(&k), body),
            Ok(())
        );
        let code = |r: Result<(), Refusal>| r.err().map_or(200, |e| e.status);
        // A tampered body, another key, no headers, another algorithm, no key yet.
        assert_eq!(
            code(verify(Some(&sig), Some(&alg), &allowed, Some(&k), b"[{}]")),
            403
        );
        assert_eq!(
            code(verify(
                Some(&sig),
                Some(&alg),
                &allowed,
                Some(&key(&[8u8; 32])),
                body
            )),
            403
        );
        assert_eq!(code(verify(None, None, &allowed, Some(&k), body)), 400);
        assert_eq!(
            code(verify(
                Some(&sig),
                Some("HmacSHA512"),
                &allowed,
                Some(&k),
                body
            )),
            400
        );
        assert_eq!(
            code(verify(Some(&sig), Some(&alg), &allowed, None, body)),
            503
        );
        assert_eq!(
            code(verify(
                Some("not base64!"),
                Some(&alg),
                &allowed,
                Some(&k),
                body
            )),
            403
        );
        // An empty body signs as empty input.
        let [(_, empty_sig), _] = sign(&k, "HmacSHA256", b"").unwrap_or_else(|| panic!("sign"));
        assert_eq!(
            verify(
                Some(&empty_sig),
                Some("HmacSHA256"),
                &allowed,
                Some(&k),
                b""
            ),
            Ok(())
        );
    }

    /// RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe").
    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        let m = mac(b"Jefe", "HmacSHA256", b"what do ya want for nothing?").unwrap_or_default();
        let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
