//! The client side of SCRAM-SHA-256/512 (RFC 5802, RFC 7677) for the group client's SASL
//! authentication, on OpenSSL's PBKDF2, HMAC and hashes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::error::{Error, Result};

pub struct Scram {
    digest: MessageDigest,
    password: String,
    client_first_bare: String,
    nonce: String,
    auth_message: String,
    salted: Vec<u8>,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scram").finish_non_exhaustive()
    }
}

fn sasl_error(reason: impl Into<String>) -> Error {
    Error::Authentication(format!("SASL SCRAM: {}", reason.into()))
}

fn hmac(digest: MessageDigest, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let e = |e: openssl::error::ErrorStack| sasl_error(e.to_string());
    let key = PKey::hmac(key).map_err(e)?;
    let mut s = Signer::new(digest, &key).map_err(e)?;
    s.sign_oneshot_to_vec(data).map_err(e)
}

impl Scram {
    pub fn new(mechanism: &str, username: &str, password: &str) -> Result<Scram> {
        let digest = match mechanism {
            "SCRAM-SHA-256" => MessageDigest::sha256(),
            "SCRAM-SHA-512" => MessageDigest::sha512(),
            other => return Err(sasl_error(format!("unknown mechanism {other}"))),
        };
        let mut raw = [0u8; 24];
        openssl::rand::rand_bytes(&mut raw).map_err(|e| sasl_error(e.to_string()))?;
        Ok(Self::with_nonce(
            digest,
            username,
            password,
            &B64.encode(raw),
        ))
    }

    fn with_nonce(digest: MessageDigest, username: &str, password: &str, nonce: &str) -> Scram {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Scram {
            digest,
            password: password.to_string(),
            client_first_bare: format!("n={name},r={nonce}"),
            nonce: nonce.to_string(),
            auth_message: String::new(),
            salted: Vec::new(),
        }
    }

    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| sasl_error("the server's first message is not UTF-8"))?;
        let field = |k: &str| {
            server_first
                .split(',')
                .find_map(|p| p.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        if let Some(e) = field("e") {
            return Err(sasl_error(format!("the broker refused: {e}")));
        }
        let nonce = field("r").ok_or_else(|| sasl_error("no nonce from the broker"))?;
        if !nonce.starts_with(&self.nonce) {
            return Err(sasl_error("the broker's nonce does not extend ours"));
        }
        let salt = field("s")
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| sasl_error("no salt from the broker"))?;
        let iterations: usize = field("i")
            .and_then(|i| i.parse().ok())
            .filter(|&i| i > 0)
            .ok_or_else(|| sasl_error("no iteration count from the broker"))?;
        let mut salted = vec![0u8; self.digest.size()];
        openssl::pkcs5::pbkdf2_hmac(
            self.password.as_bytes(),
            &salt,
            iterations,
            self.digest,
            &mut salted,
        )
        .map_err(|e| sasl_error(e.to_string()))?;
        let without_proof = format!("c=biws,r={nonce}");
        self.auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_key = hmac(self.digest, &salted, b"Client Key")?;
        let stored_key =
            openssl::hash::hash(self.digest, &client_key).map_err(|e| sasl_error(e.to_string()))?;
        let signature = hmac(self.digest, &stored_key, self.auth_message.as_bytes())?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        self.salted = salted;
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| sasl_error("the server's final message is not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(sasl_error(format!("the broker refused: {e}")));
        }
        let sig = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.split(',').next().unwrap_or_default()).ok())
            .ok_or_else(|| sasl_error("no server signature"))?;
        let server_key = hmac(self.digest, &self.salted, b"Server Key")?;
        let expected = hmac(self.digest, &server_key, self.auth_message.as_bytes())?;
        if !openssl::memcmp::eq(&sig, &expected) {
            return Err(sasl_error(
                "the broker's signature does not match (not the broker we meant to reach?)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's SCRAM-SHA-256 example, byte for byte.
    #[test]
    fn the_rfc_7677_exchange() {
        let mut s = Scram::with_nonce(
            MessageDigest::sha256(),
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = s
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8_lossy(&last),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
    }
}
