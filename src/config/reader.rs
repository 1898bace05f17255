//! Typed values out of the YAML tree, each error naming the key by its full path.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::ConfigError;

/// One hour: no timing key may exceed it; larger values are typos.
pub(super) const MAX_MS: u64 = 3_600_000;

/// Reads typed values out of one YAML mapping, naming keys by their full path.
pub(super) struct Reader<'a> {
    pub(super) file: &'a str,
    pub(super) prefix: &'a str,
    pub(super) map: &'a Map<String, Value>,
}

impl<'a> Reader<'a> {
    pub(super) fn err(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            file: self.file.to_string(),
            key: format!("{}.{key}", self.prefix),
            reason: reason.into(),
        }
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // YAML 1.1 spellings, as the original gateway's parser accepted them.
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "yes" | "on" | "true" => Ok(Some(true)),
                "no" | "off" | "false" => Ok(Some(false)),
                _ => Err(self.err(key, format!("expected true or false, got {s:?}"))),
            },
            Some(other) => {
                Err(self.err(key, format!("expected true or false, got {}", kind(other))))
            }
        }
    }

    pub(super) fn int(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(self.err(key, format!("{n} is out of range {min}..={max}"))),
            },
            Some(other) => Err(self.err(
                key,
                format!("expected an integer {min}..={max}, got {}", kind(other)),
            )),
        }
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(self.err(key, "must not be empty"))
            }
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(self.err(key, format!("expected a string, got {}", kind(other)))),
        }
    }

    pub(super) fn ipv4(&self, key: &str) -> Result<Option<Ipv4Addr>, ConfigError> {
        self.string(key)?
            .map(|s| {
                s.parse()
                    .map_err(|_| self.err(key, format!("{s:?} is not an IPv4 address")))
            })
            .transpose()
    }

    /// One line per key of this mapping not in `known`, naming the closest known key.
    pub(super) fn unknown_keys(&self, known: &[&str]) -> Vec<String> {
        self.map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| {
                let hint = match closest(k, known) {
                    Some(near) => format!("did you mean {}.{near}?", self.prefix),
                    None => format!("known keys here: {}", known.join(", ")),
                };
                format!("{}: unknown key {}.{k} ({hint})", self.file, self.prefix)
            })
            .collect()
    }
}

/// The known key nearest to `key` by edit distance, if it is near enough to be a typo.
pub(super) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let key = key.to_ascii_lowercase();
    let (distance, near) = known
        .iter()
        .map(|k| (strsim::levenshtein(&key, k), *k))
        .min()?;
    (distance <= (key.len() / 3).max(2)).then_some(near)
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
