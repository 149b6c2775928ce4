//! The `task_args` of a `compute_worker_run` task, as the CodaLab site sends them.

use std::fmt;

use compute::Secret;
use serde::Deserialize;
use serde_json::{Map, Value};

/// What the site asks for. Unknown fields are tolerated; a missing required field
/// is an error that names it.
#[derive(Clone, Debug, Deserialize)]
pub struct TaskArgs {
    /// The submission, as the site numbers it.
    pub submission_id: Value,
    /// Image for the participant's program (prediction) or the scoring program.
    #[serde(default)]
    pub docker_image: Option<String>,
    /// Image for the ingestion program; the main image when absent.
    #[serde(default)]
    pub ingestion_program_docker_image: Option<String>,
    /// The run bundle (`run.txt`): what to fetch.
    pub bundle_url: SignedUrl,
    /// Where the program's stdout goes.
    pub stdout_url: SignedUrl,
    /// Where the program's stderr goes.
    pub stderr_url: SignedUrl,
    /// Where `output.zip` goes.
    pub output_url: SignedUrl,
    /// Where `private_output.zip` goes.
    #[serde(default)]
    pub private_output_url: Option<SignedUrl>,
    /// Where the ingestion program's stdout goes.
    #[serde(default)]
    pub ingestion_program_output_url: Option<SignedUrl>,
    /// Where the ingestion program's stderr goes.
    #[serde(default)]
    pub ingestion_program_stderr_url: Option<SignedUrl>,
    /// Where `detailed_results.html` goes, while the program runs and at the end.
    #[serde(default)]
    pub detailed_results_url: Option<SignedUrl>,
    /// Proof, sent back with every status update.
    pub secret: Secret,
    /// Seconds the programs may run.
    pub execution_time_limit: f64,
    /// Prediction step (`true`) or scoring step.
    #[serde(default)]
    pub predict: bool,
    /// CPU cores for the prediction step (ACI fork's hint).
    #[serde(rename = "PRED_CPU", default, deserialize_with = "number")]
    pub pred_cpu: Option<f64>,
    /// Memory in GB for the prediction step.
    #[serde(rename = "PRED_RAM", default, deserialize_with = "number")]
    pub pred_ram: Option<f64>,
    /// GPUs for the prediction step.
    #[serde(rename = "PRED_GPU", default, deserialize_with = "number")]
    pub pred_gpu: Option<f64>,
    /// CPU cores for the scoring step.
    #[serde(rename = "SCORE_CPU", default, deserialize_with = "number")]
    pub score_cpu: Option<f64>,
    /// Memory in GB for the scoring step.
    #[serde(rename = "SCORE_RAM", default, deserialize_with = "number")]
    pub score_ram: Option<f64>,
    /// GPUs for the scoring step.
    #[serde(rename = "SCORE_GPU", default, deserialize_with = "number")]
    pub score_gpu: Option<f64>,
}

/// Resource hints of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Hints {
    /// CPU cores.
    pub cpu: Option<f64>,
    /// Memory in GB.
    pub ram_gb: Option<f64>,
    /// GPU count.
    pub gpu: Option<u32>,
}

/// Why `task_args` cannot be used; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid task arguments: {0}")]
pub struct InvalidTaskArgs(String);

impl TaskArgs {
    /// Reads `task_args`.
    pub fn from_json(args: &Map<String, Value>) -> Result<Self, InvalidTaskArgs> {
        let parsed: TaskArgs = serde_json::from_value(Value::Object(args.clone()))
            .map_err(|e| InvalidTaskArgs(e.to_string()))?;
        if !(parsed.execution_time_limit.is_finite() && parsed.execution_time_limit > 0.0) {
            return Err(InvalidTaskArgs("execution_time_limit must be a positive number".into()));
        }
        Ok(parsed)
    }

    /// The step's resource hints.
    pub fn hints(&self) -> Hints {
        let (cpu, ram, gpu) = if self.predict {
            (self.pred_cpu, self.pred_ram, self.pred_gpu)
        } else {
            (self.score_cpu, self.score_ram, self.score_gpu)
        };
        let positive = |v: Option<f64>| v.filter(|x| x.is_finite() && *x > 0.0);
        Hints {
            cpu: positive(cpu),
            ram_gb: positive(ram),
            gpu: positive(gpu).map(|g| g.round() as u32),
        }
    }

    /// `predict` or `score`, for names and logs.
    pub fn step(&self) -> &'static str {
        if self.predict { "predict" } else { "score" }
    }
}

/// Numbers may come as numbers or numeric strings (environment-style hints).
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!("expected a number, got {other}"))),
    }
}

/// A URL whose query may carry a credential (an Azure SAS or an S3 signature).
/// `Display` and `Debug` show it without the query.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SignedUrl(String);

impl SignedUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        SignedUrl(url.into())
    }

    /// The whole URL, for the request that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL's path without query, e.g. to tell a `.zip` by its name.
    pub fn path(&self) -> &str {
        let no_query = self.0.split(['?', '#']).next().unwrap_or("");
        match no_query.find("://") {
            Some(i) => no_query[i + 3..].find('/').map_or("", |j| &no_query[i + 3 + j..]),
            None => no_query,
        }
    }
}

impl fmt::Display for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('?') {
            Some((base, _)) => write!(f, "{base}?[redacted]"),
            None => f.write_str(&self.0),
        }
    }
}

impl fmt::Debug for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Map<String, Value> {
        let Value::Object(m) = json!({
            "submission_id": 42, "docker_image": "codalab/codalab-legacy:py37",
            "bundle_url": "https://a.blob.core.windows.net/b/run.txt?sv=1&sig=SECRET",
            "stdout_url": "https://a/o?sig=x", "stderr_url": "https://a/e?sig=x",
            "output_url": "https://a/out.zip?sig=x", "secret": "s3cr3t",
            "execution_time_limit": 300, "predict": true, "PRED_CPU": "2", "PRED_RAM": 8,
            "unknown_future_field": {"tolerated": true},
        }) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn reads_what_the_site_sends() {
        let args = TaskArgs::from_json(&base()).unwrap();
        assert_eq!(args.step(), "predict");
        assert_eq!(args.hints(), Hints { cpu: Some(2.0), ram_gb: Some(8.0), gpu: None });
        assert_eq!(args.bundle_url.path(), "/b/run.txt");
        let shown = format!("{args:?}");
        assert!(!shown.contains("SECRET") && !shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn a_missing_field_is_named() {
        for field in ["bundle_url", "secret", "output_url", "execution_time_limit"] {
            let mut args = base();
            args.remove(field);
            let err = TaskArgs::from_json(&args).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
        let mut args = base();
        args.insert("execution_time_limit".into(), json!(-1));
        assert!(TaskArgs::from_json(&args).is_err());
    }
}
