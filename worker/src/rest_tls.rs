//! HTTPS on the REST listener (`listeners=https://…`), configured as Java's: the
//! `listeners.https.ssl.*` settings, or the `ssl.*` ones when those are not given. Keystores and
//! truststores are read as PEM or PKCS12 (JKS cannot be read without a JVM: the error says how to
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

fn setting<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    props
        .get(&format!("listeners.https.{key}"))
        .or_else(|| props.get(key))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
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
    let path = setting(props, "ssl.keystore.location").ok_or(
        "an https listener needs listeners.https.ssl.keystore.location (its key and certificate)",
    )?;
    let bytes = std::fs::read(path)
        .map_err(|e| format!("listeners.https.ssl.keystore.location={path}: {e}"))?;
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
    let identity = if setting(props, "ssl.keystore.location").is_some() {
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
