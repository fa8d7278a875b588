//! HTTPS on the REST listener (`listeners=https://…`), configured as Java's: the
//! `listeners.https.ssl.*` settings when any is given (all or nothing, as Java's
//! `valuesWithPrefixAllOrNothing`, so the Kafka clients' `ssl.*` never mix in), else the `ssl.*`
//! ones. Keystores and truststores are read as PEM (files, or inline through
//! `ssl.keystore.certificate.chain`/`ssl.keystore.key` and `ssl.truststore.certificates`) or PKCS12 (JKS cannot be read without a JVM: the error says how to
//! convert it). Workers trust each other through the truststore when they forward requests, and
//! present their keystore's certificate, so `ssl.client.auth=required` clusters still forward.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;

const PREFIX: &str = "listeners.https.";

fn setting<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    let prefixed = props.keys().any(|k| k.starts_with(PREFIX));
    let v = if prefixed {
        props.get(&format!("{PREFIX}{key}"))
    } else {
        props.get(key)
    };
    v.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The setting's name as the user wrote it, for messages.
fn named(props: &BTreeMap<String, String>, key: &str) -> String {
    if props.keys().any(|k| k.starts_with(PREFIX)) {
        format!("{PREFIX}{key}")
    } else {
        key.to_string()
    }
}

/// Whether a keystore is configured (a file, or inline PEM).
fn has_keystore(props: &BTreeMap<String, String>) -> bool {
    setting(props, "ssl.keystore.location").is_some()
        || setting(props, "ssl.keystore.key").is_some()
}

fn store_type(props: &BTreeMap<String, String>, key: &str) -> Result<&'static str, String> {
    match setting(props, key).map(str::to_ascii_uppercase).as_deref() {
        Some("PEM") => Ok("PEM"),
        Some("PKCS12") => Ok("PKCS12"),
        other => Err(format!(
            "listeners.https.{key}={} cannot be read; use PEM or PKCS12 (convert a JKS store with keytool -importkeystore -deststoretype PKCS12)",
            other.unwrap_or("JKS (the default)")
        )),
    }
}

/// The key and certificate chain of the listener's keystore.
type Identity = (PKey<openssl::pkey::Private>, X509, Vec<X509>);

fn identity(props: &BTreeMap<String, String>) -> Result<Identity, String> {
    if let Some(key_pem) = setting(props, "ssl.keystore.key") {
        // Inline PEM (KIP-651), e.g. from a mounted Secret through a config provider.
        let chain_name = named(props, "ssl.keystore.certificate.chain");
        let chain = setting(props, "ssl.keystore.certificate.chain")
            .ok_or_else(|| format!("{} needs {chain_name}", named(props, "ssl.keystore.key")))?;
        let key = match setting(props, "ssl.key.password") {
            Some(p) => PKey::private_key_from_pem_passphrase(key_pem.as_bytes(), p.as_bytes()),
            None => PKey::private_key_from_pem(key_pem.as_bytes()),
        }
        .map_err(|e| {
            format!(
                "{}: no readable private key: {e}",
                named(props, "ssl.keystore.key")
            )
        })?;
        let mut certs = X509::stack_from_pem(chain.as_bytes())
            .map_err(|e| format!("{chain_name}: no readable certificate: {e}"))?
            .into_iter();
        let leaf = certs
            .next()
            .ok_or_else(|| format!("{chain_name}: no certificate"))?;
        return Ok((key, leaf, certs.collect()));
    }
    let path = setting(props, "ssl.keystore.location").ok_or(
        "an https listener needs listeners.https.ssl.keystore.location (its key and certificate), or listeners.https.ssl.keystore.key and listeners.https.ssl.keystore.certificate.chain (PEM)",
    )?;
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}={path}: {e}", named(props, "ssl.keystore.location")))?;
    match store_type(props, "ssl.keystore.type")? {
        "PEM" => {
            let key = match setting(props, "ssl.key.password") {
                Some(p) => PKey::private_key_from_pem_passphrase(&bytes, p.as_bytes()),
                None => PKey::private_key_from_pem(&bytes),
            }
            .map_err(|e| format!("{path}: no readable private key: {e}"))?;
            let mut certs = X509::stack_from_pem(&bytes)
                .map_err(|e| format!("{path}: no readable certificate: {e}"))?
                .into_iter();
            let leaf = certs
                .next()
                .ok_or_else(|| format!("{path}: no certificate"))?;
            Ok((key, leaf, certs.collect()))
        }
        _ => {
            let password = setting(props, "ssl.keystore.password").unwrap_or("");
            let parsed = Pkcs12::from_der(&bytes)
                .and_then(|p| p.parse2(password))
                .map_err(|e| format!("{path}: not a PKCS12 keystore this password opens: {e}"))?;
            match (parsed.pkey, parsed.cert) {
                (Some(k), Some(c)) => Ok((
                    k,
                    c,
                    parsed
                        .ca
                        .map(|s| s.into_iter().collect())
                        .unwrap_or_default(),
                )),
                _ => Err(format!("{path}: the keystore holds no key and certificate")),
            }
        }
    }
}

/// The TLS acceptor for `listener` when it is an https one.
pub fn acceptor(
    listener: &str,
    props: &BTreeMap<String, String>,
) -> Result<Option<Arc<SslAcceptor>>, String> {
    if !listener.trim().starts_with("https://") {
        return Ok(None);
    }
    let (key, cert, chain) = identity(props)?;
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| format!("TLS: {e}"))?;
    b.set_private_key(&key)
        .map_err(|e| format!("TLS key: {e}"))?;
    b.set_certificate(&cert)
        .map_err(|e| format!("TLS certificate: {e}"))?;
    for c in chain {
        b.add_extra_chain_cert(c)
            .map_err(|e| format!("TLS chain: {e}"))?;
    }
    b.check_private_key()
        .map_err(|e| format!("the keystore's key does not match its certificate: {e}"))?;
    let mode = match setting(props, "ssl.client.auth")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("none") => None,
        Some("requested") => Some(SslVerifyMode::PEER),
        Some("required") => Some(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT),
        Some(other) => {
            return Err(format!(
                "listeners.https.ssl.client.auth={other} is not a choice; use none, requested or required"
            ));
        }
    };
    if let Some(mode) = mode {
        // Client certificates must be signed by a CA of the truststore.
        let cas = trust_store(props)?;
        if cas.is_empty() {
            return Err("listeners.https.ssl.client.auth needs listeners.https.ssl.truststore.location: the CAs that sign client certificates".into());
        }
        for ca in cas {
            b.add_client_ca(&ca)
                .map_err(|e| format!("TLS client CA: {e}"))?;
            b.cert_store_mut()
                .add_cert(ca)
                .map_err(|e| format!("TLS client CA: {e}"))?;
        }
        b.set_verify(mode);
    }
    Ok(Some(Arc::new(b.build())))
}

/// The CA certificates of the truststore, if one is configured.
fn trust_store(props: &BTreeMap<String, String>) -> Result<Vec<X509>, String> {
    if let Some(pem) = setting(props, "ssl.truststore.certificates") {
        return X509::stack_from_pem(pem.as_bytes())
            .map_err(|e| format!("{}: {e}", named(props, "ssl.truststore.certificates")));
    }
    let Some(path) = setting(props, "ssl.truststore.location") else {
        return Ok(Vec::new());
    };
    let bytes = std::fs::read(path)
        .map_err(|e| format!("listeners.https.ssl.truststore.location={path}: {e}"))?;
    match store_type(props, "ssl.truststore.type")? {
        "PEM" => X509::stack_from_pem(&bytes).map_err(|e| format!("{path}: {e}")),
        _ => {
            let password = setting(props, "ssl.truststore.password").unwrap_or("");
            let parsed = Pkcs12::from_der(&bytes)
                .and_then(|p| p.parse2(password))
                .map_err(|e| format!("{path}: {e}"))?;
            Ok(parsed
                .ca
                .map(|s| s.into_iter().collect())
                .unwrap_or_default())
        }
    }
}

/// How a worker's own REST client meets other workers' https listeners: the CAs it trusts and,
/// when it has a keystore, the certificate it presents (for `ssl.client.auth`), as Java's.
#[derive(Clone, Default)]
pub struct ClientTls {
    pub roots: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// The client side of the worker's TLS settings.
pub fn client_tls(props: &BTreeMap<String, String>) -> Result<ClientTls, String> {
    let roots = trust_store(props)?
        .iter()
        .map(|c| {
            c.to_pem()
                .map_err(|e| e.to_string())
                .and_then(|p| reqwest::Certificate::from_pem(&p).map_err(|e| e.to_string()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let identity = if has_keystore(props) {
        let (key, cert, chain) = identity(props)?;
        let mut pem = cert.to_pem().map_err(|e| e.to_string())?;
        for c in chain {
            pem.extend(c.to_pem().map_err(|e| e.to_string())?);
        }
        let key = key
            .private_key_to_pem_pkcs8()
            .map_err(|e| format!("the keystore's key: {e}"))?;
        Some(
            reqwest::Identity::from_pkcs8_pem(&pem, &key)
                .map_err(|e| format!("the keystore as a client identity: {e}"))?,
        )
    } else {
        None
    };
    Ok(ClientTls { roots, identity })
}

/// A listener that completes the TLS handshake before handing a connection to the server. A
/// failed or slow handshake costs that connection only.
pub struct TlsListener {
    pub tcp: TcpListener,
    pub acceptor: Arc<SslAcceptor>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = SslStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a REST connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(mut stream) =
                Ssl::new(self.acceptor.context()).and_then(|ssl| SslStream::new(ssl, tcp))
            else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(10), Pin::new(&mut stream).accept())
                .await
            {
                Ok(Ok(())) => return (stream, addr),
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;

    fn self_signed() -> (String, String) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "worker").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = String::from_utf8(b.build().to_pem().unwrap()).unwrap();
        let key = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (cert, key)
    }

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inline_pem_keystore_and_truststore_serve_and_trust() {
        let (cert, key) = self_signed();
        let p = props(&[
            ("listeners.https.ssl.keystore.type", "PEM"),
            ("listeners.https.ssl.keystore.certificate.chain", &cert),
            ("listeners.https.ssl.keystore.key", &key),
            ("listeners.https.ssl.truststore.type", "PEM"),
            ("listeners.https.ssl.truststore.certificates", &cert),
        ]);
        assert!(acceptor("https://:8443", &p).unwrap().is_some());
        let c = client_tls(&p).unwrap();
        assert_eq!(c.roots.len(), 1);
        assert!(c.identity.is_some());
        // A key without its chain is named.
        let p = props(&[("listeners.https.ssl.keystore.key", &key)]);
        let Err(e) = acceptor("https://:8443", &p) else {
            panic!("a key without a chain was accepted")
        };
        assert!(
            e.contains("listeners.https.ssl.keystore.certificate.chain"),
            "{e}"
        );
    }

    #[test]
    fn prefixed_settings_are_all_or_nothing_so_kafka_ssl_settings_never_mix_in() {
        let (cert, key) = self_signed();
        // The Kafka clients' keystore (unprefixed) must not become the REST identity once any
        // listeners.https.* setting is given.
        let p = props(&[
            ("ssl.keystore.location", "/kafka/keystore.p12"),
            ("ssl.truststore.location", "/kafka/ca.pem"),
            ("listeners.https.ssl.keystore.type", "PEM"),
            ("listeners.https.ssl.keystore.certificate.chain", &cert),
            ("listeners.https.ssl.keystore.key", &key),
        ]);
        let c = client_tls(&p).unwrap();
        assert!(c.roots.is_empty());
        assert!(c.identity.is_some());
        // Without any prefixed setting, the unprefixed ones serve the listener (as Java's).
        let p = props(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.certificate.chain", &cert),
            ("ssl.keystore.key", &key),
        ]);
        assert!(acceptor("https://:8443", &p).unwrap().is_some());
    }
}
