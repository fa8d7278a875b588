//! Java Kafka client settings, as users write them in worker and connector configs, translated
//! into librdkafka's. Java's names mostly carry over; the ones that do not (JAAS, truststores,
//! `buffer.memory`, assignment strategies) are translated here, Java-only ones are dropped, and
//! anything unknown is warned about and left out, since librdkafka refuses unknown properties.
//!
//! Memory: librdkafka buffers up to 1 GiB per producer and 64 MiB per consumer by default, which
//! across many tasks would exhaust a pod; the defaults here follow Java's (32 MiB `buffer.memory`).

use std::collections::BTreeMap;
use std::fmt;

/// Which client a setting is for; `producer.`, `consumer.` and `admin.` prefixes select it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer,
    Consumer,
    Admin,
}

impl Role {
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Producer => "producer.",
            Role::Consumer => "consumer.",
            Role::Admin => "admin.",
        }
    }
}

/// librdkafka settings, with secrets hidden from `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    pub librdkafka: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// Java's `max.poll.records`: the sink loop's batch limit (librdkafka has no such setting).
    pub max_poll_records: Option<usize>,
}

const SECRET_KEYS: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
];

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if SECRET_KEYS.contains(&k.as_str()) {
                        "[hidden]"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("ClientSettings")
            .field("librdkafka", &shown)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Settings with the same name and meaning in both clients.
const SAME_NAME: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "client.rack",
    "acks",
    "linger.ms",
    "batch.size",
    "compression.type",
    "enable.idempotence",
    "max.in.flight.requests.per.connection",
    "request.timeout.ms",
    "retries",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "delivery.timeout.ms",
    "transactional.id",
    "transaction.timeout.ms",
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.max.wait.ms",
    "max.partition.fetch.bytes",
    "isolation.level",
    "metadata.max.age.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "socket.connection.setup.timeout.ms",
    "sasl.mechanism",
    "ssl.cipher.suites",
    "ssl.endpoint.identification.algorithm",
    "ssl.key.password",
];

/// Java-only settings with no librdkafka meaning; dropped without a warning.
const JAVA_ONLY: &[&str] = &[
    "key.serializer",
    "value.serializer",
    "key.deserializer",
    "value.deserializer",
    "interceptor.classes",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.sample.window.ms",
    "metrics.recording.level",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.engine.factory.class",
    "default.api.timeout.ms",
    "allow.auto.create.topics",
    "auto.include.jmx.reporter",
    "enable.metrics.push",
    "sasl.login.callback.handler.class",
    "sasl.client.callback.handler.class",
];

/// The settings of one client: worker-level keys, then `<role>.` ones (which win), translated.
pub fn client_settings(
    role: Role,
    worker: &BTreeMap<String, String>,
) -> Result<ClientSettings, String> {
    connector_client_settings(role, worker, &BTreeMap::new(), "None")
}

/// Settings `connector.client.config.override.policy=Principal` lets a connector override.
const PRINCIPAL_KEYS: &[&str] = &["sasl.jaas.config", "sasl.mechanism", "security.protocol"];

/// The settings of one client of a connector: the worker's (as [`client_settings`]), then the
/// connector's `<role>.override.*` keys where the override policy (`None`, `Principal`, `All`)
/// allows them. A refused override is an error naming the key, as Java's validation reports it.
pub fn connector_client_settings(
    role: Role,
    worker: &BTreeMap<String, String>,
    connector: &BTreeMap<String, String>,
    policy: &str,
) -> Result<ClientSettings, String> {
    let mut java: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in worker {
        let shared = k == "bootstrap.servers"
            || k == "security.protocol"
            || k.starts_with("ssl.")
            || k.starts_with("sasl.")
            || k == "client.rack"
            || k == "metadata.max.age.ms";
        if shared {
            java.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in worker {
        if let Some(key) = k.strip_prefix(role.prefix()) {
            java.insert(key.to_string(), v.clone());
        }
    }
    let override_prefix = format!("{}override.", role.prefix());
    for (k, v) in connector {
        let Some(key) = k.strip_prefix(&override_prefix) else {
            continue;
        };
        let allowed = match policy {
            "All" => true,
            "Principal" => PRINCIPAL_KEYS.contains(&key),
            _ => false,
        };
        if !allowed {
            return Err(format!(
                "{k}: the worker's connector.client.config.override.policy={policy} does not allow overriding {key}"
            ));
        }
        java.insert(key.to_string(), v.clone());
    }
    translate(role, &java)
}

/// Translates Java client settings (no prefixes) into librdkafka's.
pub fn translate(role: Role, java: &BTreeMap<String, String>) -> Result<ClientSettings, String> {
    let mut out = ClientSettings::default();
    let set = |out: &mut ClientSettings, k: &str, v: &str| {
        out.librdkafka.insert(k.to_string(), v.to_string());
    };
    if role == Role::Producer {
        // Java's buffer.memory default, 32 MiB, instead of librdkafka's 1 GiB.
        set(&mut out, "queue.buffering.max.kbytes", "32768");
    }
    if role == Role::Consumer {
        set(&mut out, "queued.max.messages.kbytes", "16384");
        // Once its queue holds queued.min.messages (100k), librdkafka waits this long before the
        // next fetch, 1 s by default; a sink drains 100k records in a fraction of that and then
        // sits idle (10M × 100 B moved ~190k records/s with the default). Java's consumer fetches
        // again as soon as its buffer for the partition is empty; 10 ms comes close to that.
        set(&mut out, "fetch.queue.backoff.ms", "10");
        set(&mut out, "enable.auto.commit", "false");
    }
    for (k, v) in java {
        let v = v.trim();
        match k.as_str() {
            k if SAME_NAME.contains(&k) => set(&mut out, k, v),
            k if JAVA_ONLY.contains(&k) => {}
            "security.protocol" => set(&mut out, k, &v.to_ascii_lowercase()),
            "buffer.memory" => {
                let bytes: u64 = v
                    .parse()
                    .map_err(|_| format!("buffer.memory={v} is not a number of bytes"))?;
                set(
                    &mut out,
                    "queue.buffering.max.kbytes",
                    &(bytes / 1024).max(1).to_string(),
                );
            }
            "max.poll.records" => {
                out.max_poll_records = Some(
                    v.parse()
                        .map_err(|_| format!("max.poll.records={v} is not a number"))?,
                );
            }
            "auto.offset.reset" => set(&mut out, k, if v == "none" { "error" } else { v }),
            "send.buffer.bytes" => set(&mut out, "socket.send.buffer.bytes", v),
            "receive.buffer.bytes" => set(&mut out, "socket.receive.buffer.bytes", v),
            "partition.assignment.strategy" => set(&mut out, k, &assignment_strategies(v)?),
            "sasl.jaas.config" => {
                let login = parse_jaas(v)?;
                if let Some(u) = login.options.get("username") {
                    set(&mut out, "sasl.username", u);
                }
                if let Some(p) = login.options.get("password") {
                    set(&mut out, "sasl.password", p);
                }
                let mechanism = java
                    .get("sasl.mechanism")
                    .map(|m| m.trim())
                    .unwrap_or("GSSAPI");
                let fits = match login.module.rsplit('.').next().unwrap_or_default() {
                    "PlainLoginModule" => mechanism == "PLAIN",
                    "ScramLoginModule" => mechanism.starts_with("SCRAM-SHA-"),
                    other => {
                        return Err(format!(
                            "sasl.jaas.config uses {other}; only PlainLoginModule and ScramLoginModule are supported"
                        ));
                    }
                };
                if !fits {
                    return Err(format!(
                        "sasl.jaas.config uses {} but sasl.mechanism is {mechanism}",
                        login.module
                    ));
                }
            }
            "ssl.truststore.type" | "ssl.keystore.type" | "ssl.truststore.password" => {}
            "ssl.truststore.location" => match java
                .get("ssl.truststore.type")
                .map(|t| t.trim().to_ascii_uppercase())
            {
                Some(t) if t == "PEM" => set(&mut out, "ssl.ca.location", v),
                Some(t) if t == "PKCS12" => set(
                    &mut out,
                    "ssl.ca.pem",
                    &pkcs12_truststore_to_pem(v, java.get("ssl.truststore.password"))?,
                ),
                other => {
                    return Err(format!(
                        "ssl.truststore.type={} is not supported; use PEM or PKCS12 (convert JKS with keytool -importkeystore -deststoretype PKCS12)",
                        other.as_deref().unwrap_or("JKS (the default)")
                    ));
                }
            },
            "ssl.truststore.certificates" => set(&mut out, "ssl.ca.pem", v),
            "ssl.keystore.location" => match java
                .get("ssl.keystore.type")
                .map(|t| t.trim().to_ascii_uppercase())
            {
                Some(t) if t == "PEM" => {
                    set(&mut out, "ssl.key.location", v);
                    set(&mut out, "ssl.certificate.location", v);
                }
                Some(t) if t == "PKCS12" => set(&mut out, "ssl.keystore.location", v),
                other => {
                    return Err(format!(
                        "ssl.keystore.type={} is not supported; use PEM or PKCS12",
                        other.as_deref().unwrap_or("JKS (the default)")
                    ));
                }
            },
            "ssl.keystore.password" => {
                if java
                    .get("ssl.keystore.type")
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("PKCS12"))
                {
                    set(&mut out, "ssl.keystore.password", v);
                }
            }
            "ssl.keystore.key" => set(&mut out, "ssl.key.pem", v),
            "ssl.keystore.certificate.chain" => set(&mut out, "ssl.certificate.pem", v),
            other => out.warnings.push(format!(
                "{}{other} has no librdkafka equivalent and is ignored",
                role.prefix()
            )),
        }
    }
    // Java verifies the broker's host name by default; librdkafka too since 2.0, but say it.
    if out
        .librdkafka
        .get("ssl.endpoint.identification.algorithm")
        .is_some_and(|a| a.is_empty())
    {
        set(&mut out, "ssl.endpoint.identification.algorithm", "none");
    }
    // Java's reconnect back-off (50 ms, at most 1 s) rather than librdkafka's (100 ms, 10 s):
    // librdkafka also paces its first connection by half of it, which every new client (each
    // task's consumer or producer) waited for: ~50 ms of every connector's start.
    let backoff = out
        .librdkafka
        .get("reconnect.backoff.ms")
        .cloned()
        .unwrap_or_else(|| "50".to_string());
    if !out.librdkafka.contains_key("reconnect.backoff.max.ms") {
        // librdkafka refuses a maximum below the back-off a user set.
        let max = backoff.parse::<u64>().map_or(1000, |b| b.max(1000));
        set(&mut out, "reconnect.backoff.max.ms", &max.to_string());
    }
    set(&mut out, "reconnect.backoff.ms", &backoff);
    Ok(out)
}

fn assignment_strategies(v: &str) -> Result<String, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.rsplit('.').next().unwrap_or(s) {
            "RangeAssignor" | "range" => Ok("range"),
            "RoundRobinAssignor" | "roundrobin" => Ok("roundrobin"),
            "CooperativeStickyAssignor" | "cooperative-sticky" => Ok("cooperative-sticky"),
            other => Err(format!("partition.assignment.strategy {other} is not available; use RangeAssignor, RoundRobinAssignor or CooperativeStickyAssignor")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(","))
}

/// A parsed `sasl.jaas.config`: `<LoginModule class> <flag> key="value" ...;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasLogin {
    pub module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// Parses one JAAS login module entry, with quoted option values (`\"` and `\\` escapes).
pub fn parse_jaas(text: &str) -> Result<JaasLogin, String> {
    let err = |why: &str| {
        format!(
            "sasl.jaas.config is not valid JAAS ({why}); expected: <LoginModule class> required username=\"...\" password=\"...\";"
        )
    };
    let mut chars = text.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    let flag = word(&mut chars);
    if module.is_empty()
        || !matches!(
            flag.as_str(),
            "required" | "requisite" | "sufficient" | "optional"
        )
    {
        return Err(err("no login module and control flag"));
    }
    let mut options = BTreeMap::new();
    // Errors name options by position, never by text: a mistyped option (`password:"…"`, a
    // stray quoted value) is read as a key and may be the secret itself.
    let mut position = 0;
    loop {
        let key = word(&mut chars);
        if key.is_empty() {
            break;
        }
        position += 1;
        if chars.next() != Some('=') {
            return Err(err(&format!(
                "option {position} after the control flag has no `=value`"
            )));
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => v.extend(chars.next()),
                    Some(c) => v.push(c),
                    None => {
                        return Err(err(&format!(
                            "unterminated quote in option {position} after the control flag"
                        )));
                    }
                }
            }
            v
        } else {
            word(&mut chars)
        };
        options.insert(key, value);
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    if chars.next() != Some(';') {
        return Err(err("missing the closing ;"));
    }
    Ok(JaasLogin {
        module,
        flag,
        options,
    })
}

/// The CA certificates of a PKCS12 truststore as PEM, since librdkafka reads no PKCS12 truststores.
fn pkcs12_truststore_to_pem(path: &str, password: Option<&String>) -> Result<String, String> {
    let der = std::fs::read(path).map_err(|e| format!("ssl.truststore.location={path}: {e}"))?;
    let p12 = openssl::pkcs12::Pkcs12::from_der(&der)
        .map_err(|e| format!("ssl.truststore.location={path} is not PKCS12: {e}"))?;
    let parsed = p12
        .parse2(password.map(String::as_str).unwrap_or(""))
        .map_err(|_| {
            format!("ssl.truststore.location={path}: wrong ssl.truststore.password or damaged file")
        })?;
    let mut pem = String::new();
    for cert in parsed.ca.into_iter().flatten().chain(parsed.cert) {
        let bytes = cert
            .to_pem()
            .map_err(|e| format!("ssl.truststore.location={path}: {e}"))?;
        pem.push_str(&String::from_utf8_lossy(&bytes));
    }
    if pem.is_empty() {
        return Err(format!(
            "ssl.truststore.location={path} holds no certificates"
        ));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn jaas_for_plain_and_scram_with_quotes_and_escapes() {
        let login = parse_jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"p\\\"w;d\" tokenauth=false;",
        )
        .expect("valid");
        assert_eq!(
            login.module,
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        );
        assert_eq!(login.options["username"], "alice");
        assert_eq!(login.options["password"], "p\"w;d");
        assert_eq!(login.options["tokenauth"], "false");
        for bad in [
            "",
            "Module",
            "Module required username=\"x\"",
            "Module required username=\"x;",
            "Module required user;",
        ] {
            assert!(parse_jaas(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_mistyped_jaas_option_is_not_echoed_in_the_error() {
        for bad in [
            "Module required username=\"u\" password:\"s3cr3t\";",
            "Module required username=\"u\" \"s3cr3t\";",
            "Module required username=\"u\" s3cr3t",
            "Module required password=\"s3cr3t",
        ] {
            let e = parse_jaas(bad).err().unwrap_or_default();
            assert!(e.contains("sasl.jaas.config"), "{e}");
            assert!(!e.contains("s3cr3t"), "the error shows the secret: {e}");
        }
    }

    #[test]
    fn a_java_sasl_ssl_worker_config_becomes_librdkafka_settings() {
        let worker = map(&[
            ("bootstrap.servers", "b1:9093,b2:9093"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"connect\" password=\"s3cret\";",
            ),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/etc/kafka/ca.crt"),
            ("producer.buffer.memory", "67108864"),
            (
                "producer.key.serializer",
                "org.apache.kafka.common.serialization.ByteArraySerializer",
            ),
            ("consumer.max.poll.records", "1000"),
            ("consumer.auto.offset.reset", "none"),
            (
                "consumer.partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
            ),
            ("consumer.made.up", "1"),
            ("group.id", "connect-cluster"),
        ]);
        let p = client_settings(Role::Producer, &worker).expect("valid");
        assert_eq!(p.librdkafka["bootstrap.servers"], "b1:9093,b2:9093");
        assert_eq!(p.librdkafka["security.protocol"], "sasl_ssl");
        assert_eq!(p.librdkafka["sasl.username"], "connect");
        assert_eq!(p.librdkafka["sasl.password"], "s3cret");
        assert_eq!(p.librdkafka["ssl.ca.location"], "/etc/kafka/ca.crt");
        assert_eq!(p.librdkafka["queue.buffering.max.kbytes"], "65536");
        assert!(
            !p.librdkafka.contains_key("group.id"),
            "the worker's group is not the producer's"
        );
        assert!(
            !format!("{p:?}").contains("s3cret"),
            "Debug hides the password"
        );

        let c = client_settings(Role::Consumer, &worker).expect("valid");
        assert_eq!(c.max_poll_records, Some(1000));
        assert_eq!(c.librdkafka["auto.offset.reset"], "error");
        assert_eq!(
            c.librdkafka["partition.assignment.strategy"],
            "cooperative-sticky"
        );
        assert_eq!(c.librdkafka["queued.max.messages.kbytes"], "16384");
        assert_eq!(
            c.warnings,
            ["consumer.made.up has no librdkafka equivalent and is ignored"]
        );
    }

    #[test]
    fn reconnect_back_off_is_javas_unless_set() {
        let backoff = |java: &[(&str, &str)]| {
            let s = translate(Role::Consumer, &map(java)).expect("valid");
            (
                s.librdkafka.get("reconnect.backoff.ms").cloned(),
                s.librdkafka.get("reconnect.backoff.max.ms").cloned(),
            )
        };
        let some = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
        assert_eq!(backoff(&[]), some("50", "1000"));
        // A back-off above Java's maximum: librdkafka refuses a smaller maximum.
        assert_eq!(
            backoff(&[("reconnect.backoff.ms", "2000")]),
            some("2000", "2000")
        );
        assert_eq!(
            backoff(&[("reconnect.backoff.max.ms", "30000")]),
            some("50", "30000")
        );
    }

    #[test]
    fn mismatches_and_unsupported_stores_are_refused_with_the_fix() {
        let err = translate(
            Role::Producer,
            &map(&[
                ("sasl.mechanism", "PLAIN"),
                ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"b\";"),
            ]),
        )
        .expect_err("mismatch");
        assert!(err.contains("sasl.mechanism is PLAIN"), "{err}");
        let err = translate(
            Role::Producer,
            &map(&[("ssl.truststore.location", "/x.jks")]),
        )
        .expect_err("jks");
        assert!(err.contains("JKS") && err.contains("PKCS12"), "{err}");
        let err = translate(
            Role::Consumer,
            &map(&[("partition.assignment.strategy", "com.example.Mine")]),
        )
        .expect_err("custom");
        assert!(
            err.contains("com.example.Mine") || err.contains("Mine"),
            "{err}"
        );
    }
}
