//! Config providers: `${provider:[path:]key}` placeholders in worker and connector configs,
//! resolved when a task starts, so secrets stay out of the config topic and the REST API (the raw
//! placeholder is what is stored and shown).
//!
//! The three providers Kafka ships, under their Java class names or short names:
//! `FileConfigProvider` (`${file:/etc/secrets/db.properties:password}`: a key of a properties
//! file), `DirectoryConfigProvider` (`${directory:/mnt/secret:password}`: a file's content, as a
//! Kubernetes Secret volume holds it) and `EnvVarConfigProvider` (`${env:DB_PASSWORD}`).
//! `allowed.paths` (KIP-993) limits the first two to given folders.
//!
//! One deliberate difference from Java: a placeholder whose key does not exist is an error
//! naming the placeholder, where Java silently leaves the `${...}` text in the value.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// A provider error, worded for the user: which placeholder, what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

type Result<T> = std::result::Result<T, ProviderError>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
    Env,
}

#[derive(Debug, Clone)]
struct Provider {
    kind: Kind,
    /// `None`: any path.
    allowed_paths: Option<Vec<PathBuf>>,
}

/// The providers a worker configured with `config.providers`.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Provider>,
}

fn kind_of(class: &str) -> Option<Kind> {
    match class {
        "org.apache.kafka.common.config.provider.FileConfigProvider" | "file" => Some(Kind::File),
        "org.apache.kafka.common.config.provider.DirectoryConfigProvider" | "directory" => {
            Some(Kind::Directory)
        }
        "org.apache.kafka.common.config.provider.EnvVarConfigProvider" | "env" => Some(Kind::Env),
        _ => None,
    }
}

/// Lexical normalisation (as Java's `Path.normalize`): `.` dropped, `..` folds its parent.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Providers {
    /// Reads `config.providers`, `config.providers.<name>.class` and
    /// `config.providers.<name>.param.allowed.paths` from worker properties.
    pub fn from_worker_config(props: &BTreeMap<String, String>) -> Result<Self> {
        let mut by_name = BTreeMap::new();
        let names = props
            .get("config.providers")
            .map(String::as_str)
            .unwrap_or("");
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let class_key = format!("config.providers.{name}.class");
            let class = props.get(&class_key).ok_or_else(|| {
                ProviderError(format!(
                    "config.providers names `{name}` but {class_key} is not set"
                ))
            })?;
            let kind = kind_of(class.trim()).ok_or_else(|| {
                ProviderError(format!(
                    "{class_key}={class} is not a known provider; use FileConfigProvider, DirectoryConfigProvider or EnvVarConfigProvider (org.apache.kafka.common.config.provider.*)"
                ))
            })?;
            let allowed_paths = props
                .get(&format!("config.providers.{name}.param.allowed.paths"))
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| normalize(Path::new(p)))
                        .collect()
                });
            by_name.insert(
                name.to_string(),
                Provider {
                    kind,
                    allowed_paths,
                },
            );
        }
        Ok(Self { by_name })
    }

    /// Whether `value` holds a placeholder of a configured provider.
    pub fn has_placeholder(&self, value: &str) -> bool {
        placeholders(value)
            .iter()
            .any(|p| self.by_name.contains_key(p.provider))
    }

    /// Resolves every placeholder of a configured provider in every value. Placeholders of
    /// providers not configured stay as they are, as in Java.
    pub fn resolve(&self, config: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
        config
            .iter()
            .map(|(k, v)| {
                self.resolve_value(v)
                    .map(|r| (k.clone(), r))
                    .map_err(|e| ProviderError(format!("{k}: {}", e.0)))
            })
            .collect()
    }

    fn resolve_value(&self, value: &str) -> Result<String> {
        let mut out = String::with_capacity(value.len());
        let mut last = 0;
        for p in placeholders(value) {
            let Some(provider) = self.by_name.get(p.provider) else {
                continue;
            };
            out.push_str(&value[last..p.start]);
            out.push_str(&provider.get(p.path, p.key, p.text)?);
            last = p.end;
        }
        out.push_str(&value[last..]);
        Ok(out)
    }
}

impl Provider {
    fn check_allowed(&self, path: &Path, text: &str) -> Result<PathBuf> {
        let normalized = normalize(path);
        if let Some(allowed) = &self.allowed_paths
            && !allowed.iter().any(|a| normalized.starts_with(a))
        {
            return Err(ProviderError(format!(
                "{text}: {} is not in allowed.paths",
                path.display()
            )));
        }
        Ok(normalized)
    }

    fn get(&self, path: Option<&str>, key: &str, text: &str) -> Result<String> {
        match self.kind {
            Kind::Env => {
                if path.is_some_and(|p| !p.is_empty()) {
                    return Err(ProviderError(format!(
                        "{text}: the env provider takes no path; write ${{env:NAME}}"
                    )));
                }
                std::env::var(key).map_err(|_| {
                    ProviderError(format!("{text}: environment variable {key} is not set"))
                })
            }
            Kind::File => {
                let path = path.ok_or_else(|| {
                    ProviderError(format!(
                        "{text}: the file provider needs a path: ${{file:/path:key}}"
                    ))
                })?;
                let file = self.check_allowed(Path::new(path), text)?;
                let props = super::properties::load(&file)
                    .map_err(|e| ProviderError(format!("{text}: {e}")))?;
                super::properties::to_map(&props)
                    .remove(key)
                    .ok_or_else(|| {
                        ProviderError(format!("{text}: {} has no key {key}", file.display()))
                    })
            }
            Kind::Directory => {
                let dir = path.ok_or_else(|| {
                    ProviderError(format!(
                        "{text}: the directory provider needs a path: ${{directory:/dir:file}}"
                    ))
                })?;
                let file = self.check_allowed(&Path::new(dir).join(key), text)?;
                std::fs::read_to_string(&file).map_err(|e| {
                    ProviderError(format!("{text}: cannot read {}: {e}", file.display()))
                })
            }
        }
    }
}

/// One `${provider:[path:]key}` occurrence.
#[derive(Debug, PartialEq, Eq)]
struct Placeholder<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    provider: &'a str,
    path: Option<&'a str>,
    key: &'a str,
}

/// The placeholders in a value, split as Java's pattern `\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}` does.
fn placeholders(value: &str) -> Vec<Placeholder<'_>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = value[from..].find("${").map(|i| from + i) {
        let Some(close) = value[open..].find('}').map(|i| open + i) else {
            break;
        };
        let inner = &value[open + 2..close];
        if let Some((provider, rest)) = inner.split_once(':') {
            let (path, key) = match rest.split_once(':') {
                Some((path, key)) => (Some(path), key),
                None => (None, rest),
            };
            found.push(Placeholder {
                text: &value[open..=close],
                start: open,
                end: close + 1,
                provider,
                path,
                key,
            });
            from = close + 1;
        } else {
            from = open + 2;
        }
    }
    found
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
    fn placeholders_split_like_javas_pattern() {
        let p = placeholders("a ${file:/x/y.properties:pw} b ${env:HOME} ${dir:/a:b:c} ${nocolon}");
        let parts: Vec<_> = p.iter().map(|p| (p.provider, p.path, p.key)).collect();
        assert_eq!(
            parts,
            [
                ("file", Some("/x/y.properties"), "pw"),
                ("env", None, "HOME"),
                ("dir", Some("/a"), "b:c")
            ]
        );
        assert_eq!(p[0].text, "${file:/x/y.properties:pw}");
    }

    #[test]
    fn file_directory_and_env_providers_resolve() {
        let dir = std::env::temp_dir().join(format!("tributary-providers-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("secret")).expect("dir");
        std::fs::write(dir.join("db.properties"), "user=ada\npassword=s3cret\n").expect("write");
        std::fs::write(dir.join("secret/token"), "t0ken\n").expect("write");
        let worker = map(&[
            ("config.providers", "file, directory,env"),
            (
                "config.providers.file.class",
                "org.apache.kafka.common.config.provider.FileConfigProvider",
            ),
            (
                "config.providers.directory.class",
                "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
            ),
            ("config.providers.env.class", "env"),
        ]);
        let providers = Providers::from_worker_config(&worker).expect("valid");
        let f = dir.display();
        let connector = map(&[
            ("connection.url", "postgres://db/x"),
            (
                "connection.user",
                &format!("${{file:{f}/db.properties:user}}"),
            ),
            (
                "connection.password",
                &format!("pre-${{file:{f}/db.properties:password}}-post"),
            ),
            ("token", &format!("${{directory:{f}/secret:token}}")),
            ("home", "${env:HOME}"),
            ("other", "${vault:secret/x:y}"),
        ]);
        assert!(providers.has_placeholder(&connector["token"]));
        assert!(!providers.has_placeholder(&connector["other"]));
        let resolved = providers.resolve(&connector).expect("resolves");
        assert_eq!(resolved["connection.user"], "ada");
        assert_eq!(resolved["connection.password"], "pre-s3cret-post");
        assert_eq!(
            resolved["token"], "t0ken\n",
            "a directory file's content is taken as is"
        );
        assert_eq!(resolved["home"], std::env::var("HOME").expect("HOME"));
        assert_eq!(
            resolved["other"], "${vault:secret/x:y}",
            "an unconfigured provider's placeholder stays"
        );

        let missing = providers
            .resolve(&map(&[(
                "pw",
                &format!("${{file:{f}/db.properties:nope}}"),
            )]))
            .expect_err("missing key");
        assert!(
            missing.0.starts_with("pw: ${file:") && missing.0.contains("has no key nope"),
            "{}",
            missing.0
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn allowed_paths_confine_file_providers() {
        let worker = map(&[
            ("config.providers", "file"),
            (
                "config.providers.file.class",
                "FileConfigProvider"
                    .replace("FileConfigProvider", "file")
                    .as_str(),
            ),
            (
                "config.providers.file.param.allowed.paths",
                "/etc/secrets, /mnt/creds",
            ),
        ]);
        let providers = Providers::from_worker_config(&worker).expect("valid");
        let err = providers
            .resolve(&map(&[("pw", "${file:/etc/secrets/../passwd:root}")]))
            .expect_err("escapes");
        assert!(err.0.contains("is not in allowed.paths"), "{}", err.0);
    }

    #[test]
    fn misconfigured_providers_are_named() {
        let err = Providers::from_worker_config(&map(&[("config.providers", "file")]))
            .expect_err("no class");
        assert!(err.0.contains("config.providers.file.class"), "{}", err.0);
        let err = Providers::from_worker_config(&map(&[
            ("config.providers", "vault"),
            ("config.providers.vault.class", "com.example.VaultProvider"),
        ]))
        .expect_err("unknown class");
        assert!(
            err.0
                .contains("com.example.VaultProvider is not a known provider"),
            "{}",
            err.0
        );
        let env = Providers::from_worker_config(&map(&[
            ("config.providers", "env"),
            ("config.providers.env.class", "env"),
        ]))
        .expect("valid");
        let err = env
            .resolve(&map(&[("x", "${env:/path:HOME}")]))
            .expect_err("path given");
        assert!(err.0.contains("takes no path"), "{}", err.0);
        let err = env
            .resolve(&map(&[("x", "${env:TRIBUTARY_SURELY_UNSET_VAR}")]))
            .expect_err("unset");
        assert!(
            err.0.contains("TRIBUTARY_SURELY_UNSET_VAR is not set"),
            "{}",
            err.0
        );
    }
}
