//! CodaLab `metadata` files and `run.txt`: YAML mappings of `key: value`.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// A parsed metadata file: its keys in file order, values as JSON.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
}

/// Why a metadata file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not YAML at all.
    #[error("metadata is not valid YAML: {0}")]
    Syntax(String),
    /// YAML, but not a mapping of keys to values.
    #[error("metadata is not a mapping of keys to values")]
    NotAMapping,
}

impl Metadata {
    /// Parses a metadata file. An empty file is an empty mapping.
    pub fn parse(text: &str) -> Result<Self, MetadataError> {
        let docs =
            YamlLoader::load_from_str(text).map_err(|e| MetadataError::Syntax(e.to_string()))?;
        let Some(doc) = docs.into_iter().next() else { return Ok(Metadata::default()) };
        let Yaml::Hash(hash) = doc else {
            return match doc {
                Yaml::Null => Ok(Metadata::default()),
                _ => Err(MetadataError::NotAMapping),
            };
        };
        let entries = hash
            .into_iter()
            .map(|(k, v)| {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (key, to_json(v))
            })
            .collect();
        Ok(Metadata { entries })
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Keys and values in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The program's commands: `command` as one string or a list of strings, each
    /// trimmed, empty ones dropped. A scalar YAML reads as something else
    /// (`command: true`) is taken as the text written.
    pub fn commands(&self) -> Vec<String> {
        fn text(v: &Value) -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
                _ => None,
            }
        }
        let texts: Vec<String> = match self.get("command") {
            Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
            Some(v) => text(v).into_iter().collect(),
            None => Vec::new(),
        };
        texts.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }

    /// As a JSON object.
    pub fn to_json(&self) -> Map<String, Value> {
        self.entries.iter().cloned().collect()
    }
}

fn to_json(y: Yaml) -> Value {
    match y {
        Yaml::Real(s) => {
            s.parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::String(s), Value::Number)
        }
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Hash(hash) => Value::Object(
            hash.into_iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

/// Writes the `output/metadata` records as the upstream worker does: one record as
/// a mapping, several as a list of mappings, in YAML block style.
pub fn write_records(records: &[Map<String, Value>]) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::Null => "null".to_owned(),
            Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    match records {
        [one] => {
            for (k, v) in one {
                out.push_str(&format!("{k}: {}\n", scalar(v)));
            }
        }
        many => {
            for record in many {
                let mut first = true;
                for (k, v) in record {
                    out.push_str(if first { "- " } else { "  " });
                    out.push_str(&format!("{k}: {}\n", scalar(v)));
                    first = false;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_run_txt_and_program_metadata() {
        let run = Metadata::parse(
            "program: https://x/program.zip?sig=a\ninput: https://x/input.zip\nstdout: https://x/o?sig=w\n\
             submitted-by: alice\nexecution_time_limit: 300\nratio: 0.5\n",
        )
        .unwrap();
        let keys: Vec<&str> = run.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["program", "input", "stdout", "submitted-by", "execution_time_limit", "ratio"]
        );
        assert_eq!(run.get("execution_time_limit"), Some(&json!(300)));
        assert_eq!(run.get("ratio"), Some(&json!(0.5)));

        let single = Metadata::parse("command: python $program/score.py $input $output\n").unwrap();
        assert_eq!(single.commands(), ["python $program/score.py $input $output"]);
        let list =
            Metadata::parse("command:\n  - python a.py\n  - ' python b.py '\n  - ''\n").unwrap();
        assert_eq!(list.commands(), ["python a.py", "python b.py"]);
        assert!(Metadata::parse("").unwrap().commands().is_empty());
        assert_eq!(Metadata::parse("command: true\n").unwrap().commands(), ["true"]);
    }

    #[test]
    fn refuses_what_is_not_a_mapping() {
        assert_eq!(Metadata::parse("- a\n- b\n"), Err(MetadataError::NotAMapping));
        assert_eq!(Metadata::parse("just text"), Err(MetadataError::NotAMapping));
        assert!(matches!(Metadata::parse("a: [unclosed"), Err(MetadataError::Syntax(_))));
    }

    #[test]
    fn records_are_written_like_the_upstream_worker() {
        let mut one = Map::new();
        one.insert("exitCode".into(), json!(0));
        one.insert("elapsedTime".into(), json!(1.5));
        assert_eq!(write_records(std::slice::from_ref(&one)), "elapsedTime: 1.5\nexitCode: 0\n");
        let parsed = Metadata::parse(&write_records(&[one.clone(), one])).unwrap_err();
        assert_eq!(parsed, MetadataError::NotAMapping, "a list of records is a list");
    }
}
