//! One connection to a broker for the group client: TCP, optionally TLS (OpenSSL, the stack
//! librdkafka uses, configured from the same translated settings), ApiVersions negotiation, and
//! SASL PLAIN or SCRAM-SHA-256/512 authentication. Requests go one at a time, which is all the
//! group protocol needs (a member never heartbeats while its JoinGroup is pending).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Responses larger than this are refused (a group of a few hundred workers is far below).
const MAX_RESPONSE: usize = 100 * 1024 * 1024;

/// How to reach brokers: from the translated (librdkafka-named) client settings.
#[derive(Debug, Clone, Default)]
pub struct Security {
    pub tls: bool,
    pub sasl: Option<Sasl>,
    pub ca_location: Option<String>,
    pub ca_pem: Option<String>,
    pub certificate_location: Option<String>,
    pub key_location: Option<String>,
    pub certificate_pem: Option<String>,
    pub key_pem: Option<String>,
    pub key_password: Option<String>,
    pub keystore_location: Option<String>,
    pub keystore_password: Option<String>,
    pub verify_hostname: bool,
}

#[derive(Clone)]
pub struct Sasl {
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .finish()
    }
}

impl Security {
    /// From librdkafka-named settings (`config::client::translate`'s output).
    pub fn from_librdkafka(s: &BTreeMap<String, String>) -> Result<Security> {
        let get = |k: &str| s.get(k).cloned().filter(|v| !v.is_empty());
        let protocol = get("security.protocol")
            .unwrap_or_else(|| "plaintext".into())
            .to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => {
                return Err(Error::Config(format!(
                    "security.protocol={other} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
                )));
            }
        };
        let sasl = if sasl {
            let mechanism = get("sasl.mechanism")
                .or_else(|| get("sasl.mechanisms"))
                .unwrap_or_else(|| "GSSAPI".into())
                .to_ascii_uppercase();
            if !matches!(
                mechanism.as_str(),
                "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
            ) {
                return Err(Error::Config(format!(
                    "sasl.mechanism={mechanism} is not supported by the group client; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                )));
            }
            Some(Sasl {
                mechanism,
                username: get("sasl.username").unwrap_or_default(),
                password: get("sasl.password").unwrap_or_default(),
            })
        } else {
            None
        };
        Ok(Security {
            tls,
            sasl,
            ca_location: get("ssl.ca.location"),
            ca_pem: get("ssl.ca.pem"),
            certificate_location: get("ssl.certificate.location"),
            key_location: get("ssl.key.location"),
            certificate_pem: get("ssl.certificate.pem"),
            key_pem: get("ssl.key.pem"),
            key_password: get("ssl.key.password"),
            keystore_location: get("ssl.keystore.location"),
            keystore_password: get("ssl.keystore.password"),
            verify_hostname: get("ssl.endpoint.identification.algorithm")
                .is_none_or(|a| a.eq_ignore_ascii_case("https")),
        })
    }

    fn connector(&self) -> Result<SslConnector> {
        let tls = |e: openssl::error::ErrorStack| Error::Config(format!("TLS setup: {e}"));
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(tls)?;
        if let Some(ca) = &self.ca_location {
            b.set_ca_file(ca)
                .map_err(|e| Error::Config(format!("ssl CA file {ca}: {e}")))?;
        }
        if let Some(pem) = &self.ca_pem {
            for cert in openssl::x509::X509::stack_from_pem(pem.as_bytes()).map_err(tls)? {
                b.cert_store_mut().add_cert(cert).map_err(tls)?;
            }
        }
        if let (Some(cert), Some(key)) = (&self.certificate_location, &self.key_location) {
            b.set_certificate_chain_file(cert)
                .map_err(|e| Error::Config(format!("ssl certificate {cert}: {e}")))?;
            b.set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| Error::Config(format!("ssl key {key}: {e}")))?;
        }
        if let (Some(cert), Some(key)) = (&self.certificate_pem, &self.key_pem) {
            let cert = openssl::x509::X509::from_pem(cert.as_bytes()).map_err(tls)?;
            let key = match &self.key_password {
                Some(p) => openssl::pkey::PKey::private_key_from_pem_passphrase(
                    key.as_bytes(),
                    p.as_bytes(),
                ),
                None => openssl::pkey::PKey::private_key_from_pem(key.as_bytes()),
            }
            .map_err(tls)?;
            b.set_certificate(&cert).map_err(tls)?;
            b.set_private_key(&key).map_err(tls)?;
        }
        if let Some(store) = &self.keystore_location {
            let der = std::fs::read(store)
                .map_err(|e| Error::Config(format!("ssl keystore {store}: {e}")))?;
            let parsed = openssl::pkcs12::Pkcs12::from_der(&der)
                .and_then(|p| p.parse2(self.keystore_password.as_deref().unwrap_or_default()))
                .map_err(|e| Error::Config(format!("ssl keystore {store}: {e}")))?;
            if let Some(cert) = parsed.cert {
                b.set_certificate(&cert).map_err(tls)?;
            }
            if let Some(key) = parsed.pkey {
                b.set_private_key(&key).map_err(tls)?;
            }
        }
        b.set_verify(SslVerifyMode::PEER);
        Ok(b.build())
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An open, authenticated connection.
pub struct Connection {
    stream: Box<dyn Stream>,
    correlation: i32,
    client_id: StrBytes,
    /// Versions the broker supports, by API key.
    versions: BTreeMap<i16, (i16, i16)>,
    pub address: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn kafka(what: &str, address: &str, e: impl std::fmt::Display) -> Error {
    Error::Kafka(format!("{what} ({address}): {e}"))
}

impl Connection {
    /// Connects, negotiates versions and authenticates, within `timeout`.
    pub async fn open(
        host: &str,
        port: i32,
        security: &Security,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Connection> {
        let address = format!("{host}:{port}");
        tokio::time::timeout(
            timeout,
            Self::open_inner(host, &address, security, client_id),
        )
        .await
        .map_err(|_| kafka("connect", &address, format!("no answer within {timeout:?}")))?
    }

    async fn open_inner(
        host: &str,
        address: &str,
        security: &Security,
        client_id: &str,
    ) -> Result<Connection> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| kafka("connect", address, e))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = if security.tls {
            let mut config = security
                .connector()?
                .configure()
                .map_err(|e| kafka("TLS", address, e))?;
            config.set_verify_hostname(security.verify_hostname);
            let ssl = config
                .into_ssl(host)
                .map_err(|e| kafka("TLS", address, e))?;
            let mut s =
                tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| kafka("TLS", address, e))?;
            Pin::new(&mut s)
                .connect()
                .await
                .map_err(|e| Error::Authentication(format!("TLS handshake with {address}: {e}")))?;
            Box::new(s)
        } else {
            Box::new(tcp)
        };
        let mut c = Connection {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id.to_string()),
            versions: BTreeMap::new(),
            address: address.to_string(),
        };
        let api: ApiVersionsResponse = c
            .send(
                ApiKey::ApiVersions,
                3,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("tributary"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    ))),
            )
            .await?;
        if api.error_code != 0 {
            return Err(kafka(
                "ApiVersions",
                address,
                format!("error {}", api.error_code),
            ));
        }
        c.versions = api
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(sasl) = &security.sasl {
            c.authenticate(sasl).await?;
        }
        Ok(c)
    }

    /// Asks for the coordinator of group `key`: the error code (0 when found) and the node as
    /// (id, host, port). v4+ batch keys; one is asked here.
    pub async fn find_coordinator(
        &mut self,
        key: &str,
    ) -> Result<(i16, Option<(i32, String, i32)>)> {
        let v = self.version(ApiKey::FindCoordinator, 0)?;
        let name = StrBytes::from_string(key.to_string());
        let r = FindCoordinatorRequest::default().with_key_type(0);
        let r = if v >= 4 {
            r.with_coordinator_keys(vec![name])
        } else {
            r.with_key(name)
        };
        let resp: FindCoordinatorResponse = self.send(ApiKey::FindCoordinator, v, &r).await?;
        let (error, node) = if v >= 4 {
            match resp.coordinators.first() {
                Some(c) => (c.error_code, (c.node_id.0, c.host.to_string(), c.port)),
                // COORDINATOR_NOT_AVAILABLE: ask again.
                None => (15, (-1, String::new(), -1)),
            }
        } else {
            (
                resp.error_code,
                (resp.node_id.0, resp.host.to_string(), resp.port),
            )
        };
        Ok((error, (error == 0).then_some(node)))
    }

    /// The highest version both sides support, at least `floor`.
    pub fn version(&self, key: ApiKey, floor: i16) -> Result<i16> {
        let ours = key.valid_versions();
        let (min, max) = self.versions.get(&(key as i16)).copied().ok_or_else(|| {
            kafka(
                "ApiVersions",
                &self.address,
                format!("{key:?} is not supported"),
            )
        })?;
        let v = max.min(ours.max);
        if v < min.max(ours.min).max(floor) {
            return Err(kafka(
                "ApiVersions",
                &self.address,
                format!("no common version of {key:?} (broker {min}..{max})"),
            ));
        }
        Ok(v)
    }

    /// Sends one request and reads its response.
    pub async fn send<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        let address = self.address.clone();
        let enc =
            move |e: &dyn std::fmt::Display| kafka("encode", &address, format!("{key:?}: {e}"));
        header
            .encode(&mut body, key.request_header_version(version))
            .map_err(|e| enc(&e))?;
        request.encode(&mut body, version).map_err(|e| enc(&e))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
        frame.extend_from_slice(&body);
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| kafka("write", &self.address, e))?;
        self.stream
            .flush()
            .await
            .map_err(|e| kafka("write", &self.address, e))?;
        let len = self
            .stream
            .read_u32()
            .await
            .map_err(|e| kafka("read", &self.address, e))? as usize;
        if len > MAX_RESPONSE {
            return Err(kafka(
                "read",
                &self.address,
                format!("a {len}-byte response"),
            ));
        }
        let mut buf = vec![0u8; len];
        self.stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| kafka("read", &self.address, e))?;
        let mut buf = Bytes::from(buf);
        let address = self.address.clone();
        let dec =
            move |e: &dyn std::fmt::Display| kafka("decode", &address, format!("{key:?}: {e}"));
        let h = ResponseHeader::decode(&mut buf, key.response_header_version(version))
            .map_err(|e| dec(&e))?;
        if h.correlation_id != self.correlation {
            return Err(kafka(
                "read",
                &self.address,
                format!(
                    "correlation id {} for request {}",
                    h.correlation_id, self.correlation
                ),
            ));
        }
        let resp = Resp::decode(&mut buf, version).map_err(|e| dec(&e))?;
        if buf.has_remaining() {
            tracing::trace!(key = ?key, left = buf.remaining(), "trailing response bytes");
        }
        Ok(resp)
    }

    async fn authenticate(&mut self, sasl: &Sasl) -> Result<()> {
        let hs: SaslHandshakeResponse = self
            .send(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(sasl.mechanism.clone())),
            )
            .await?;
        if hs.error_code != 0 {
            let offered: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(Error::Authentication(format!(
                "{}: the broker does not enable {} (it offers {})",
                self.address,
                sasl.mechanism,
                offered.join(", ")
            )));
        }
        match sasl.mechanism.as_str() {
            "PLAIN" => {
                let mut msg = Vec::new();
                msg.push(0);
                msg.extend_from_slice(sasl.username.as_bytes());
                msg.push(0);
                msg.extend_from_slice(sasl.password.as_bytes());
                self.sasl_step(msg).await?;
            }
            m => {
                let mut scram = super::scram::Scram::new(m, &sasl.username, &sasl.password)?;
                let first = scram.client_first();
                let server_first = self.sasl_step(first).await?;
                let client_final = scram.client_final(&server_first)?;
                let server_final = self.sasl_step(client_final).await?;
                scram.verify_server_final(&server_final)?;
            }
        }
        Ok(())
    }

    async fn sasl_step(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        let version = self.version(ApiKey::SaslAuthenticate, 0)?.min(2);
        let r: SaslAuthenticateResponse = self
            .send(
                ApiKey::SaslAuthenticate,
                version,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
            )
            .await?;
        if r.error_code != 0 {
            return Err(Error::Authentication(format!(
                "{} ({}): {}",
                self.address,
                r.error_code,
                r.error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "no message".into())
            )));
        }
        Ok(r.auth_bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn security_comes_from_the_translated_client_settings() {
        let s = Security::from_librdkafka(&settings(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "connect"),
            ("sasl.password", "s3cret-canary"),
            ("ssl.ca.location", "/etc/ca.pem"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.tls && s.verify_hostname);
        assert_eq!(s.ca_location.as_deref(), Some("/etc/ca.pem"));
        let sasl = s.sasl.clone().unwrap_or_else(|| panic!("no SASL"));
        assert_eq!(
            (sasl.mechanism.as_str(), sasl.username.as_str()),
            ("SCRAM-SHA-512", "connect")
        );
        assert!(
            !format!("{s:?}").contains("s3cret-canary"),
            "the password shows in Debug"
        );

        let plain = Security::from_librdkafka(&settings(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert!(!plain.tls && plain.sasl.is_none());
        let no_verify = Security::from_librdkafka(&settings(&[
            ("security.protocol", "ssl"),
            ("ssl.endpoint.identification.algorithm", "none"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(no_verify.tls && !no_verify.verify_hostname);
    }

    #[test]
    fn unsupported_settings_are_refused_with_the_fix() {
        let e = Security::from_librdkafka(&settings(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "GSSAPI"),
        ]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("GSSAPI") && e.contains("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            "{e}"
        );
        let e = Security::from_librdkafka(&settings(&[("security.protocol", "tls")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("security.protocol=tls"), "{e}");
    }
}
