//! Typed configuration definitions, shaped like Kafka's `ConfigDef`, so one definition drives
//! both start-up validation and `PUT /connector-plugins/{plugin}/config/validate`.
//!
//! Parsing follows Java's `ConfigDef.parseType`: strings are trimmed, booleans are `true`/`false`
//! in any case, lists split on commas with the whitespace around them, and errors read
//! `Invalid value <v> for configuration <name>: <reason>`, with PASSWORD values shown as `[hidden]`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What a PASSWORD value is shown as, anywhere it could leak (errors, REST, logs).
pub const HIDDEN: &str = "[hidden]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// The name the validate endpoint reports (`"INT"`, `"PASSWORD"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    High,
    Medium,
    Low,
}

impl Importance {
    pub fn name(self) -> &'static str {
        match self {
            Importance::High => "HIGH",
            Importance::Medium => "MEDIUM",
            Importance::Low => "LOW",
        }
    }
}

/// How wide a UI should draw the field, as Java's `ConfigDef.Width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Width {
    #[default]
    None,
    Short,
    Medium,
    Long,
}

impl Width {
    pub fn name(self) -> &'static str {
        match self {
            Width::None => "NONE",
            Width::Short => "SHORT",
            Width::Medium => "MEDIUM",
            Width::Long => "LONG",
        }
    }
}

/// A parsed configuration value.
#[derive(Clone, PartialEq)]
pub enum ConfigValue {
    Boolean(bool),
    String(String),
    Int(i32),
    Short(i16),
    Long(i64),
    Double(f64),
    List(Vec<String>),
    Class(String),
    Password(Password),
}

/// A secret whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
    /// The secret itself, for the one place that needs it (a client's configuration).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

impl fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl fmt::Display for ConfigValue {
    /// The value as Java prints it back (lists comma-joined, passwords hidden).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Boolean(b) => write!(f, "{b}"),
            ConfigValue::String(s) | ConfigValue::Class(s) => f.write_str(s),
            ConfigValue::Int(n) => write!(f, "{n}"),
            ConfigValue::Short(n) => write!(f, "{n}"),
            ConfigValue::Long(n) => write!(f, "{n}"),
            ConfigValue::Double(n) => write!(f, "{n:?}"),
            ConfigValue::List(items) => f.write_str(&items.join(",")),
            ConfigValue::Password(_) => f.write_str(HIDDEN),
        }
    }
}

/// A configuration error: which key, which value, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("Missing required configuration \"{0}\" which has no default value.")]
    Missing(String),
}

impl ConfigError {
    pub fn name(&self) -> &str {
        match self {
            ConfigError::Invalid { name, .. } | ConfigError::Missing(name) => name,
        }
    }
}

/// Checks a parsed value; returns the reason it is refused.
pub type Validator = Arc<dyn Fn(&ConfigValue) -> Result<(), String> + Send + Sync>;

/// Java's `Range.atLeast`.
pub fn at_least(min: f64) -> Validator {
    range(Some(min), None)
}

/// Java's `Range.between`.
pub fn between(min: f64, max: f64) -> Validator {
    range(Some(min), Some(max))
}

fn range(min: Option<f64>, max: Option<f64>) -> Validator {
    Arc::new(move |v| {
        let n = match v {
            ConfigValue::Int(n) => f64::from(*n),
            ConfigValue::Short(n) => f64::from(*n),
            ConfigValue::Long(n) => *n as f64,
            ConfigValue::Double(n) => *n,
            _ => return Ok(()),
        };
        let show = |x: f64| {
            if x.fract() == 0.0 {
                format!("{}", x as i64)
            } else {
                x.to_string()
            }
        };
        match (min, max) {
            (Some(lo), _) if n < lo => Err(format!("Value must be at least {}", show(lo))),
            (_, Some(hi)) if n > hi => Err(format!("Value must be no more than {}", show(hi))),
            _ => Ok(()),
        }
    })
}

/// Java's `ValidString.in`: one of the given strings, case-sensitive.
pub fn one_of(valid: &[&str]) -> Validator {
    let valid: Vec<String> = valid.iter().map(|s| s.to_string()).collect();
    Arc::new(move |v| match v {
        ConfigValue::String(s) if !valid.contains(s) => {
            Err(format!("String must be one of: {}", valid.join(", ")))
        }
        _ => Ok(()),
    })
}

/// Java's `NonEmptyString`.
pub fn non_empty_string() -> Validator {
    Arc::new(|v| match v {
        ConfigValue::String(s) if s.is_empty() => Err("String must be non-empty".to_string()),
        _ => Ok(()),
    })
}

/// One key of a [`ConfigDef`].
#[derive(Clone)]
pub struct ConfigKey {
    pub name: String,
    pub type_: ConfigType,
    /// `None`: required, no default.
    pub default: Option<String>,
    pub importance: Importance,
    pub documentation: String,
    pub group: Option<String>,
    pub order_in_group: i32,
    pub width: Width,
    pub display_name: String,
    pub dependents: Vec<String>,
    pub validator: Option<Validator>,
    /// No default and not required: absent means null (Java's `default null`).
    pub nullable: bool,
}

impl fmt::Debug for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigKey")
            .field("name", &self.name)
            .field("type", &self.type_)
            .field(
                "default",
                &self.default.as_ref().map(|d| {
                    if self.type_ == ConfigType::Password {
                        HIDDEN
                    } else {
                        d
                    }
                }),
            )
            .field("importance", &self.importance)
            .finish_non_exhaustive()
    }
}

impl ConfigKey {
    pub fn new(name: &str, type_: ConfigType, importance: Importance, documentation: &str) -> Self {
        Self {
            name: name.to_string(),
            type_,
            default: None,
            importance,
            documentation: documentation.to_string(),
            group: None,
            order_in_group: -1,
            width: Width::None,
            display_name: name.to_string(),
            dependents: Vec::new(),
            validator: None,
            nullable: false,
        }
    }
    /// Not required, and null when absent (Java's `null` default).
    pub fn default_null(mut self) -> Self {
        self.default = None;
        self.nullable = true;
        self
    }
    /// Whether a value must be given.
    pub fn required(&self) -> bool {
        self.default.is_none() && !self.nullable
    }
    pub fn default_value(mut self, default: &str) -> Self {
        self.default = Some(default.to_string());
        self
    }
    pub fn validator(mut self, validator: Validator) -> Self {
        self.validator = Some(validator);
        self
    }
    pub fn group(mut self, group: &str, order: i32, width: Width, display_name: &str) -> Self {
        self.group = Some(group.to_string());
        self.order_in_group = order;
        self.width = width;
        self.display_name = display_name.to_string();
        self
    }

    /// Parses and validates one raw value of this key.
    pub fn parse(&self, raw: &str) -> Result<ConfigValue, ConfigError> {
        let trimmed = raw.trim();
        let shown = if self.type_ == ConfigType::Password {
            HIDDEN.to_string()
        } else {
            trimmed.to_string()
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name: self.name.clone(),
            value: shown.clone(),
            reason,
        };
        let number = |t: ConfigType| invalid(format!("Not a number of type {}", t.name()));
        let value = match self.type_ {
            ConfigType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" => ConfigValue::Boolean(true),
                "false" => ConfigValue::Boolean(false),
                _ => {
                    return Err(invalid(
                        "Expected value to be either true or false".to_string(),
                    ));
                }
            },
            ConfigType::String => ConfigValue::String(trimmed.to_string()),
            ConfigType::Int => {
                ConfigValue::Int(trimmed.parse().map_err(|_| number(ConfigType::Int))?)
            }
            ConfigType::Short => {
                ConfigValue::Short(trimmed.parse().map_err(|_| number(ConfigType::Short))?)
            }
            ConfigType::Long => {
                ConfigValue::Long(trimmed.parse().map_err(|_| number(ConfigType::Long))?)
            }
            ConfigType::Double => {
                ConfigValue::Double(trimmed.parse().map_err(|_| number(ConfigType::Double))?)
            }
            ConfigType::List if trimmed.is_empty() => ConfigValue::List(Vec::new()),
            ConfigType::List => {
                ConfigValue::List(trimmed.split(',').map(|s| s.trim().to_string()).collect())
            }
            ConfigType::Class => ConfigValue::Class(trimmed.to_string()),
            ConfigType::Password => ConfigValue::Password(Password::new(trimmed)),
        };
        if let Some(validate) = &self.validator {
            // Java's validators see the parsed value and print it: a list as `[a, b]`.
            validate(&value).map_err(|reason| match &value {
                ConfigValue::List(items) => ConfigError::Invalid {
                    name: self.name.clone(),
                    value: format!("[{}]", items.join(", ")),
                    reason,
                },
                _ => invalid(reason),
            })?;
        }
        Ok(value)
    }
}

/// A set of keys, in definition order (the order the validate endpoint lists them).
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
}

/// The outcome of validating one key, as the validate endpoint reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValidation {
    pub name: String,
    /// The value shown back: the raw value given, or the default; `[hidden]` for passwords.
    pub value: Option<String>,
    pub errors: Vec<String>,
}

impl ConfigDef {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key. Defining a name twice is a programming error (Java refuses it too); debug
    /// builds, and so the tests, stop on it.
    pub fn define(mut self, key: ConfigKey) -> Self {
        debug_assert!(
            self.key(&key.name).is_none(),
            "config key {} defined twice",
            key.name
        );
        self.keys.retain(|k| k.name != key.name);
        self.keys.push(key);
        self
    }

    /// Adds every key of `other` not already defined here (the worker's common connector keys
    /// plus a plugin's own).
    pub fn extend(mut self, other: &ConfigDef) -> Self {
        for key in &other.keys {
            if self.key(&key.name).is_none() {
                self.keys.push(key.clone());
            }
        }
        self
    }

    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }

    pub fn key(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Parses every defined key (unknown keys are left to the caller to warn about), failing
    /// with every error at once so a user fixes them in one go.
    pub fn parse(
        &self,
        props: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, ConfigValue>, Vec<ConfigError>> {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        for key in &self.keys {
            match props.get(&key.name).or(key.default.as_ref()) {
                Some(raw) => match key.parse(raw) {
                    Ok(v) => {
                        values.insert(key.name.clone(), v);
                    }
                    Err(e) => errors.push(e),
                },
                None if key.nullable => {}
                None => errors.push(ConfigError::Missing(key.name.clone())),
            }
        }
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(errors)
        }
    }

    /// Validates every defined key for the validate endpoint: each key's shown value and errors.
    pub fn validate(&self, props: &BTreeMap<String, String>) -> Vec<KeyValidation> {
        self.keys
            .iter()
            .map(|key| {
                let raw = props.get(&key.name).or(key.default.as_ref());
                let shown = raw.map(|r| {
                    if key.type_ == ConfigType::Password {
                        HIDDEN.to_string()
                    } else {
                        r.clone()
                    }
                });
                let errors = match raw {
                    Some(r) => key
                        .parse(r)
                        .err()
                        .map(|e| e.to_string())
                        .into_iter()
                        .collect(),
                    None if key.nullable => Vec::new(),
                    None => vec![ConfigError::Missing(key.name.clone()).to_string()],
                };
                KeyValidation {
                    name: key.name.clone(),
                    value: shown,
                    errors,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::new(
                    "topic",
                    ConfigType::String,
                    Importance::High,
                    "Where to write.",
                )
                .validator(non_empty_string()),
            )
            .define(
                ConfigKey::new("tasks.max", ConfigType::Int, Importance::High, "Tasks.")
                    .default_value("1")
                    .validator(at_least(1.0)),
            )
            .define(
                ConfigKey::new("batch.size", ConfigType::Int, Importance::Low, "Batch.")
                    .default_value("2000")
                    .validator(between(1.0, 10000.0)),
            )
            .define(
                ConfigKey::new("mode", ConfigType::String, Importance::Medium, "Mode.")
                    .default_value("bulk")
                    .validator(one_of(&["bulk", "incrementing"])),
            )
            .define(
                ConfigKey::new("enabled", ConfigType::Boolean, Importance::Low, "On?")
                    .default_value("true"),
            )
            .define(
                ConfigKey::new("topics", ConfigType::List, Importance::High, "Topics.")
                    .default_value(""),
            )
            .define(
                ConfigKey::new(
                    "connection.password",
                    ConfigType::Password,
                    Importance::High,
                    "Secret.",
                )
                .default_value(""),
            )
    }

    fn props(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    #[should_panic(expected = "defined twice")]
    fn defining_a_key_twice_is_caught() {
        let key = || ConfigKey::new("k", ConfigType::Int, Importance::Low, "");
        let _ = ConfigDef::new().define(key()).define(key());
    }

    #[test]
    fn values_parse_like_java_trimmed_and_typed() {
        let parsed = def()
            .parse(&props(&[
                ("topic", " t1 "),
                ("enabled", "FALSE"),
                ("topics", " a , b,c ,"),
                ("tasks.max", "4"),
            ]))
            .expect("valid");
        assert_eq!(parsed["topic"], ConfigValue::String("t1".into()));
        assert_eq!(parsed["enabled"], ConfigValue::Boolean(false));
        assert_eq!(
            parsed["topics"],
            ConfigValue::List(vec!["a".into(), "b".into(), "c".into(), "".into()])
        );
        assert_eq!(parsed["tasks.max"], ConfigValue::Int(4));
        assert_eq!(parsed["batch.size"], ConfigValue::Int(2000));
    }

    #[test]
    fn errors_name_key_value_and_reason_and_all_come_at_once() {
        let errors = def()
            .parse(&props(&[
                ("tasks.max", "0"),
                ("batch.size", "x"),
                ("mode", "fast"),
                ("enabled", "yes"),
            ]))
            .expect_err("invalid");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "Missing required configuration \"topic\" which has no default value.",
                "Invalid value 0 for configuration tasks.max: Value must be at least 1",
                "Invalid value x for configuration batch.size: Not a number of type INT",
                "Invalid value fast for configuration mode: String must be one of: bulk, incrementing",
                "Invalid value yes for configuration enabled: Expected value to be either true or false",
            ]
        );
    }

    #[test]
    fn passwords_never_show() {
        let d = ConfigDef::new().define(
            ConfigKey::new("pw", ConfigType::Password, Importance::High, "")
                .validator(Arc::new(|_| Err("too short".to_string()))),
        );
        let err = d.parse(&props(&[("pw", "s3cret")])).expect_err("refused");
        assert_eq!(
            err[0].to_string(),
            "Invalid value [hidden] for configuration pw: too short"
        );
        let validation = d.validate(&props(&[("pw", "s3cret")]));
        assert_eq!(validation[0].value.as_deref(), Some(HIDDEN));
        let ok = ConfigDef::new().define(ConfigKey::new(
            "pw",
            ConfigType::Password,
            Importance::High,
            "",
        ));
        let v = &ok.parse(&props(&[("pw", "s3cret")])).expect("valid")["pw"];
        assert_eq!(format!("{v} {v:?}"), "[hidden] [hidden]");
        match v {
            ConfigValue::Password(p) => assert_eq!(p.expose(), "s3cret"),
            other => panic!("not a password: {other}"),
        }
    }

    #[test]
    fn validate_reports_every_key_in_definition_order() {
        let v = def().validate(&props(&[("topic", ""), ("batch.size", "20000")]));
        let names: Vec<&str> = v.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "topic",
                "tasks.max",
                "batch.size",
                "mode",
                "enabled",
                "topics",
                "connection.password"
            ]
        );
        assert_eq!(
            v[0].errors,
            ["Invalid value  for configuration topic: String must be non-empty"]
        );
        assert_eq!(v[1].value.as_deref(), Some("1"));
        assert!(v[1].errors.is_empty());
        assert_eq!(
            v[2].errors,
            ["Invalid value 20000 for configuration batch.size: Value must be no more than 10000"]
        );
    }
}
