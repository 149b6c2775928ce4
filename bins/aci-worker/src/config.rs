//! Settings: defaults, then an optional TOML file, then the environment. Every
//! problem is collected before anything connects; messages never hold a secret
//! value. `docs/configuration.md` is the reference.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use celery_amqp::BrokerUrl;
use compute::{RegistryCredentials, Secret};

/// Every setting this worker knows, lower case (TOML keys; upper case in the
/// environment).
pub const KNOWN: &[&str] = &[
    "broker_url",
    "broker_use_ssl",
    "main_broker_url",
    "main_broker_login",
    "main_broker_pass",
    "azure_auth_location",
    "aci_pred",
    "aci_score",
    "submission_temp_dir",
    "worker_concurrency",
    "image_registry_server",
    "image_registry_username",
    "image_registry_pwd",
    "afs_credentials",
    "afs_name",
    "afs_key",
    "afs_share",
    "use_gpu",
    "codalab_hostname",
    "dont_finalize_submission",
    "log_cfg",
    "worker",
    "queue_name",
    "updates_queue",
    "broker_ca_file",
    "worker_name",
    "state_dir",
    "http_addr",
    "log_level",
    "log_format",
    "shutdown_grace_secs",
    "on_shutdown",
    "azure_resource_group",
    "azure_location",
    "azure_subscription_id",
    "azure_managed_identity",
    "azure_client_id",
    "azure_arm_endpoint",
    "azure_ca_file",
    "aci_priority",
    "aci_default_cpu",
    "aci_default_memory_gb",
    "aci_gpu_sku",
    "aci_capacity_retry_secs",
    "orphan_age_secs",
    "afs_mode",
    "afs_endpoint",
    "network",
    "task_max_attempts",
    "task_retry_delay_secs",
    "orphan_sweep_secs",
];

/// The first layer: every setting whose default does not depend on others.
/// (`WORKER_CONCURRENCY`, `CODALAB_HOSTNAME`, `WORKER_NAME` and `AFS_ENDPOINT`
/// have defaults computed from other settings or the machine; see [`build`].)
const DEFAULTS: &[(&str, &str)] = &[
    ("broker_use_ssl", "false"),
    ("aci_pred", "false"),
    ("aci_score", "false"),
    ("submission_temp_dir", "/tmp/codalab"),
    ("use_gpu", "false"),
    ("dont_finalize_submission", "false"),
    ("queue_name", "compute-worker"),
    ("updates_queue", "submission-updates"),
    ("state_dir", "/var/lib/aci-worker/state"),
    ("http_addr", "127.0.0.1:9100"),
    ("log_level", "info"),
    ("log_format", "plain"),
    ("shutdown_grace_secs", "600"),
    ("on_shutdown", "requeue"),
    ("azure_managed_identity", "false"),
    ("aci_priority", "regular"),
    ("aci_default_cpu", "1"),
    ("aci_default_memory_gb", "1.5"),
    ("aci_gpu_sku", "V100"),
    ("aci_capacity_retry_secs", "900"),
    ("orphan_age_secs", "86400"),
    ("orphan_sweep_secs", "3600"),
    ("afs_mode", "shares"),
    ("network", "false"),
    ("task_max_attempts", "5"),
    ("task_retry_delay_secs", "30"),
];

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// What happens to tasks still running when the shutdown grace period is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnShutdown {
    /// Publish the task again for another worker.
    Requeue,
    /// Report it `failed`.
    Fail,
}

/// How ARM tokens are obtained.
#[derive(Clone, Debug)]
pub enum AzureAuth {
    /// The `azure_creds` file.
    SdkFile(PathBuf),
    /// The machine's managed identity (user-assigned when a client id is given).
    ManagedIdentity { client_id: Option<String> },
}

/// Settings of the ACI backend.
#[derive(Clone, Debug)]
pub struct Azure {
    pub auth: AzureAuth,
    pub subscription_id: Option<String>,
    pub resource_group: String,
    pub location: String,
    pub arm_endpoint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub spot: bool,
    pub default_cpu: f64,
    pub default_memory_gb: f64,
    pub gpu_sku: String,
    pub capacity_retry: Duration,
}

/// Azure Files: per-run shares or the mounted share.
#[derive(Clone, Debug)]
pub struct Afs {
    pub account: String,
    pub key: Secret,
    pub share: Option<String>,
    pub endpoint: String,
    pub mounted: bool,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub broker: Option<BrokerUrl>,
    pub main_broker: Option<BrokerUrl>,
    pub broker_ca_file: Option<PathBuf>,
    pub queue: String,
    pub updates_queue: String,
    pub aci_pred: bool,
    pub aci_score: bool,
    pub work_root: PathBuf,
    pub concurrency: usize,
    pub registry: Option<RegistryCredentials>,
    pub afs: Option<Afs>,
    pub azure: Option<Azure>,
    pub use_gpu: bool,
    pub hostname: String,
    pub dont_finalize: bool,
    pub worker_name: String,
    pub state_dir: PathBuf,
    pub http_addr: Option<SocketAddr>,
    pub log_level: String,
    pub log_format: LogFormat,
    pub grace: Duration,
    pub on_shutdown: OnShutdown,
    pub orphan_age: Duration,
    /// How often `serve` sweeps ACI orphans after the start-up sweep (`None`: never).
    pub orphan_sweep_every: Option<Duration>,
    /// Runs of one task at most, transient failures included; the last one's
    /// transient failure is reported `failed`.
    pub task_attempts: u32,
    /// The pause before handing a task back the first time (it doubles after).
    pub retry_delay: Duration,
    pub network: bool,
    /// Things worth telling the operator (ignored legacy settings, unknown keys).
    pub notices: Vec<String>,
    /// Every secret value, for log redaction.
    pub secrets: Vec<String>,
}

impl Config {
    /// Whether any step runs on ACI.
    #[cfg(test)]
    pub fn uses_aci(&self) -> bool {
        self.aci_pred || self.aci_score
    }
}

/// Every problem found, one per line.
#[derive(Debug)]
pub struct Problems(pub Vec<String>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// Raw values by lower-case name, layered by the `config` crate.
pub struct Sources {
    values: BTreeMap<String, String>,
    unknown: Vec<String>,
}

/// Where in `text` the byte `offset` is: line and column, from 1.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// A configuration error, told without any text of the file: a syntax error's
/// message quotes the line, and the line may hold a password.
fn describe(error: &config::ConfigError, file: Option<&Path>, text: &str) -> String {
    let name = file.map_or_else(String::new, |f| format!(" {}", f.display()));
    match error {
        config::ConfigError::FileParse { cause, .. } => {
            let at = cause
                .downcast_ref::<toml::de::Error>()
                .and_then(toml::de::Error::span)
                .map(|span| {
                    let (line, column) = line_column(text, span.start);
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            format!("configuration file{name}: not valid TOML{at}")
        }
        _ => format!("configuration file{name}: cannot be read as settings"),
    }
}

impl Sources {
    /// Layers the settings with the `config` crate: [`DEFAULTS`], then the TOML
    /// file (if any), then the environment. Of the environment, only the names of
    /// [`KNOWN`] settings are taken (any case; upper case by convention).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Sources, Problems> {
        let mut builder = config::Config::builder();
        for (key, value) in DEFAULTS {
            builder = builder.set_default(*key, *value).expect("default keys are plain names");
        }
        // Read here rather than by `config::File::from(path)`, which would try
        // other names (`FILE.toml`, ...) when FILE does not exist.
        let text = match file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                Problems(vec![format!("configuration file {}: {e}", path.display())])
            })?,
            None => String::new(),
        };
        // The file layer, its keys in lower case like the environment's, so that
        // `QUEUE_NAME` in the file and in the environment are the same setting.
        let mut unknown = Vec::new();
        if file.is_some() {
            let table = config::Config::builder()
                .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                .build()
                .and_then(|c| c.try_deserialize::<BTreeMap<String, config::Value>>())
                .map_err(|e| Problems(vec![describe(&e, file, &text)]))?;
            let mut layer = config::Config::builder();
            let mut problems = Vec::new();
            for (key, value) in table {
                let key = key.to_ascii_lowercase();
                if !KNOWN.contains(&key.as_str()) {
                    unknown.push(key.clone());
                }
                match value.into_string() {
                    Ok(text) => {
                        layer = layer.set_default(key, text).expect("file keys are plain names");
                    }
                    Err(_) => problems.push(format!(
                        "configuration file: {key} must be a string, number or boolean"
                    )),
                }
            }
            if !problems.is_empty() {
                return Err(Problems(problems));
            }
            let layer = layer.build().map_err(|e| Problems(vec![describe(&e, file, &text)]))?;
            builder = builder.add_source(layer);
        }
        let known: config::Map<String, String> = env
            .into_iter()
            .filter(|(name, _)| KNOWN.contains(&name.to_ascii_lowercase().as_str()))
            .collect();
        builder = builder.add_source(config::Environment::default().source(Some(known)));
        let values = builder
            .build()
            .and_then(|c| c.try_deserialize::<BTreeMap<String, String>>())
            .map_err(|e| Problems(vec![describe(&e, file, &text)]))?;
        Ok(Sources { values, unknown })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// What the settings are needed for: `serve` and `check` need a broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Serve,
    RunTask,
    Cleanup,
}

struct Reader<'a> {
    sources: &'a Sources,
    problems: Vec<String>,
    secrets: Vec<String>,
}

/// The value of `key` in [`DEFAULTS`]; what an empty value also stands for.
fn default_of(key: &str) -> &'static str {
    DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{key} has no entry in DEFAULTS"))
}

impl Reader<'_> {
    fn string(&self, key: &str) -> Option<String> {
        self.sources.get(key).map(str::to_owned)
    }

    /// A setting of [`DEFAULTS`]: its value, or the default when it is empty.
    fn setting(&self, key: &str) -> String {
        self.string(key).unwrap_or_else(|| default_of(key).to_owned())
    }

    fn secret(&mut self, key: &str) -> Option<Secret> {
        let value = self.string(key)?;
        self.secrets.push(value.clone());
        Some(Secret::new(value))
    }

    /// A boolean setting of [`DEFAULTS`].
    fn bool(&mut self, key: &str) -> bool {
        let default = default_of(key) == "true";
        match self.sources.get(key) {
            None => default,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    self.problems.push(format!(
                        "{}: {v:?} is not a boolean (true or false)",
                        key.to_uppercase()
                    ));
                    default
                }
            },
        }
    }

    /// A numeric setting of [`DEFAULTS`].
    fn number<T: std::str::FromStr>(
        &mut self,
        key: &str,
        check: impl Fn(&T) -> bool,
        what: &str,
    ) -> T {
        let default = default_of(key)
            .parse()
            .unwrap_or_else(|_| panic!("the default of {key} is not {what}"));
        self.number_or(key, default, check, what)
    }

    /// A numeric setting whose default depends on other settings.
    fn number_or<T: std::str::FromStr>(
        &mut self,
        key: &str,
        default: T,
        check: impl Fn(&T) -> bool,
        what: &str,
    ) -> T {
        match self.sources.get(key) {
            None => default,
            Some(v) => match v.parse::<T>() {
                Ok(n) if check(&n) => n,
                _ => {
                    self.problems.push(format!("{}: {v:?} is not {what}", key.to_uppercase()));
                    default
                }
            },
        }
    }

    fn path(&mut self, key: &str) -> Option<PathBuf> {
        self.string(key).map(PathBuf::from)
    }

    fn readable_file(&mut self, key: &str) -> Option<PathBuf> {
        let path = self.path(key)?;
        if let Err(e) = std::fs::metadata(&path) {
            self.problems.push(format!("{}: {}: {e}", key.to_uppercase(), path.display()));
        }
        Some(path)
    }

    /// A PEM file of CA certificates, read and parsed now.
    fn certificates(&mut self, key: &str) -> Option<PathBuf> {
        let path = self.path(key)?;
        if let Err(e) = backend_aci::credentials::http_client(Some(&path)) {
            self.problems.push(format!("{}: {e}", key.to_uppercase()));
        }
        Some(path)
    }

    fn broker(&mut self, key: &str) -> Option<BrokerUrl> {
        let text = self.string(key)?;
        match BrokerUrl::parse(&text) {
            Ok(url) => {
                if !url.password.expose().is_empty() {
                    self.secrets.push(url.password.expose().to_owned());
                }
                Some(url)
            }
            Err(e) => {
                self.problems.push(format!("{}: {e}", key.to_uppercase()));
                None
            }
        }
    }
}

/// Reads `KEY=VALUE` lines of the AFS credentials file.
fn afs_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("AFS_CREDENTIALS: {}: {e}", path.display()))?;
    let mut values = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "AFS_CREDENTIALS: {} line {}: expected NAME=value",
                path.display(),
                n + 1
            ));
        };
        let value = value.trim().trim_matches('"').trim_matches('\'');
        values.insert(key.trim().to_ascii_uppercase(), value.to_owned());
    }
    Ok(values)
}

/// Validates the settings for `purpose`.
pub fn build(sources: &Sources, purpose: Purpose) -> Result<Config, Problems> {
    let mut r = Reader { sources, problems: Vec::new(), secrets: Vec::new() };
    let mut notices = Vec::new();
    for key in &sources.unknown {
        notices.push(format!("configuration file: unknown setting {key} is ignored"));
    }
    if sources.get("log_cfg").is_some() {
        notices.push(
            "LOG_CFG is no longer needed and is ignored: use LOG_LEVEL and LOG_FORMAT".into(),
        );
    }
    if sources.get("worker").is_some() {
        notices
            .push("WORKER is no longer needed and is ignored: there is one kind of worker".into());
    }

    let use_ssl = r.bool("broker_use_ssl");
    let broker = r.broker("broker_url").map(|u| if use_ssl { u.with_tls() } else { u });
    let mut main_broker =
        r.broker("main_broker_url").map(|u| if use_ssl { u.with_tls() } else { u });
    let main_login = r.string("main_broker_login");
    let main_pass = r.secret("main_broker_pass");
    if main_broker.is_none() {
        main_broker = broker.clone();
    }
    if let Some(url) = main_broker.take() {
        let username = main_login.clone().unwrap_or_else(|| url.username.clone());
        let password = main_pass.clone().unwrap_or_else(|| url.password.clone());
        main_broker = Some(url.with_credentials(&username, password));
    }
    if purpose == Purpose::Serve && broker.is_none() && sources.get("broker_url").is_none() {
        r.problems.push("BROKER_URL is required: where the compute-worker queue is".into());
    }

    let aci_pred = r.bool("aci_pred");
    let aci_score = r.bool("aci_score");
    let uses_aci = aci_pred || aci_score;
    let concurrency = r.number_or(
        "worker_concurrency",
        if uses_aci { 8usize } else { 1 },
        |n| (1..=1000).contains(n),
        "a number of tasks from 1 to 1000",
    );

    let registry = match (r.string("image_registry_server"), r.string("image_registry_username")) {
        (Some(server), Some(username)) => {
            let password = r.secret("image_registry_pwd").unwrap_or_default();
            Some(RegistryCredentials { server, username, password })
        }
        (None, None) => None,
        _ => {
            r.problems.push("IMAGE_REGISTRY_SERVER and IMAGE_REGISTRY_USERNAME go together".into());
            None
        }
    };

    // Azure Files: the credentials file, overridden by the environment.
    let mut afs_values = BTreeMap::new();
    if let Some(path) = r.path("afs_credentials") {
        match afs_file(&path) {
            Ok(values) => afs_values = values,
            Err(e) => r.problems.push(e),
        }
    }
    for key in ["afs_name", "afs_key", "afs_share"] {
        if let Some(v) = r.string(key) {
            afs_values.insert(key.to_uppercase(), v);
        }
    }
    if let Some(key) = afs_values.get("AFS_KEY") {
        r.secrets.push(key.clone());
    }
    let afs_mode = r.setting("afs_mode");
    let mounted = match afs_mode.as_str() {
        "shares" => false,
        "mounted" => true,
        other => {
            r.problems.push(format!("AFS_MODE: {other:?} is not shares or mounted"));
            false
        }
    };
    let afs = match (afs_values.get("AFS_NAME"), afs_values.get("AFS_KEY")) {
        (Some(account), Some(key)) => {
            let shared_key = afs_staging::auth::SharedKey::new(account, key);
            if let Err(e) = &shared_key {
                r.problems.push(format!("AFS_NAME/AFS_KEY: {e}"));
            }
            let share = afs_values.get("AFS_SHARE").cloned();
            if mounted && share.is_none() {
                r.problems.push("AFS_MODE=mounted needs AFS_SHARE".into());
            }
            let endpoint = r
                .string("afs_endpoint")
                .unwrap_or_else(|| afs_staging::ClientConfig::azure_endpoint(account));
            // The client the worker will build, built once here to check the URL.
            // Its message would quote the value, which may carry a signature.
            if let Ok(key) = shared_key {
                let client = afs_staging::ClientConfig::new(
                    endpoint.clone(),
                    afs_staging::Credential::SharedKey(key),
                );
                if afs_staging::FileClient::new(client).is_err() {
                    r.problems.push(
                        "AFS_ENDPOINT: not a file service URL such as https://<account>.file.core.windows.net (http or https, no query)"
                            .into(),
                    );
                }
            }
            Some(Afs {
                account: account.clone(),
                key: Secret::new(key.clone()),
                share,
                endpoint,
                mounted,
            })
        }
        (None, None) => None,
        _ => {
            r.problems.push("AFS_NAME and AFS_KEY go together".into());
            None
        }
    };

    let managed = r.bool("azure_managed_identity");
    let auth_file = if managed {
        r.path("azure_auth_location")
    } else {
        r.readable_file("azure_auth_location")
    };
    let azure_ca = r.certificates("azure_ca_file");
    let priority = r.setting("aci_priority");
    let spot = match priority.to_ascii_lowercase().as_str() {
        "regular" => false,
        "spot" => true,
        other => {
            r.problems.push(format!("ACI_PRIORITY: {other:?} is not regular or spot"));
            false
        }
    };
    let default_cpu = r.number("aci_default_cpu", |n| *n > 0.0 && *n <= 64.0, "a CPU count");
    let default_memory_gb =
        r.number("aci_default_memory_gb", |n| *n > 0.0 && *n <= 1024.0, "a memory size in GB");
    let capacity_retry =
        Duration::from_secs(r.number("aci_capacity_retry_secs", |_| true, "a number of seconds"));
    let gpu_sku = r.setting("aci_gpu_sku");
    let azure = if uses_aci {
        let resource_group = r.string("azure_resource_group");
        let location = r.string("azure_location");
        if resource_group.is_none() {
            r.problems
                .push("AZURE_RESOURCE_GROUP is required when ACI_PRED or ACI_SCORE is on".into());
        }
        if location.is_none() {
            r.problems.push("AZURE_LOCATION is required when ACI_PRED or ACI_SCORE is on".into());
        }
        let auth = if managed {
            if r.string("azure_subscription_id").is_none() {
                r.problems
                    .push("AZURE_SUBSCRIPTION_ID is required with AZURE_MANAGED_IDENTITY".into());
            }
            AzureAuth::ManagedIdentity { client_id: r.string("azure_client_id") }
        } else {
            match &auth_file {
                Some(path) => {
                    if path.exists() {
                        match backend_aci::credentials::SdkAuth::from_file(path) {
                            // Its client secret is kept out of every log line.
                            Ok(auth) => r.secrets.push(auth.client_secret.expose().to_owned()),
                            Err(e) => r.problems.push(format!("AZURE_AUTH_LOCATION: {e}")),
                        }
                    }
                    AzureAuth::SdkFile(path.clone())
                }
                None => {
                    r.problems.push(
                        "AZURE_AUTH_LOCATION (or AZURE_MANAGED_IDENTITY) is required when ACI_PRED or ACI_SCORE is on".into(),
                    );
                    AzureAuth::SdkFile(PathBuf::new())
                }
            }
        };
        if afs.is_none() {
            r.problems.push("AFS_NAME and AFS_KEY (or AFS_CREDENTIALS) are required when ACI_PRED or ACI_SCORE is on".into());
        }
        Some(Azure {
            auth,
            subscription_id: r.string("azure_subscription_id"),
            resource_group: resource_group.unwrap_or_default(),
            location: location.unwrap_or_default(),
            arm_endpoint: r.string("azure_arm_endpoint"),
            ca_file: azure_ca,
            spot,
            default_cpu,
            default_memory_gb,
            gpu_sku,
            capacity_retry,
        })
    } else {
        None
    };

    // Empty disables the endpoint.
    let http_addr = match r.sources.get("http_addr") {
        None => None,
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                r.problems
                    .push(format!("HTTP_ADDR: {text:?} is not an address such as 127.0.0.1:9100"));
                None
            }
        },
    };
    let log_format = match r.setting("log_format").as_str() {
        "plain" => LogFormat::Plain,
        "json" => LogFormat::Json,
        other => {
            r.problems.push(format!("LOG_FORMAT: {other:?} is not plain or json"));
            LogFormat::Plain
        }
    };
    let log_level = r.setting("log_level");
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        r.problems.push(format!(
            "LOG_LEVEL: {log_level:?} is not a filter such as info or info,celery_amqp=debug"
        ));
    }
    let on_shutdown = match r.setting("on_shutdown").as_str() {
        "requeue" => OnShutdown::Requeue,
        "fail" => OnShutdown::Fail,
        other => {
            r.problems.push(format!("ON_SHUTDOWN: {other:?} is not requeue or fail"));
            OnShutdown::Requeue
        }
    };
    let grace =
        Duration::from_secs(r.number("shutdown_grace_secs", |_| true, "a number of seconds"));
    let orphan_age =
        Duration::from_secs(r.number("orphan_age_secs", |_| true, "a number of seconds"));
    let orphan_sweep_every = Some(Duration::from_secs(r.number(
        "orphan_sweep_secs",
        |_| true,
        "a number of seconds (0: only at start)",
    )))
    .filter(|every| !every.is_zero());
    let task_attempts = r.number(
        "task_max_attempts",
        |n| (1..=100).contains(n),
        "a number of attempts from 1 to 100",
    );
    let retry_delay = Duration::from_secs(r.number(
        "task_retry_delay_secs",
        |n| *n <= 3600,
        "a number of seconds up to 3600",
    ));
    let hostname = r.string("codalab_hostname").unwrap_or_else(codalab_run::hostname);
    let worker_name = r.string("worker_name").unwrap_or_else(codalab_run::hostname);
    let broker_ca_file = r.certificates("broker_ca_file");
    let use_gpu = r.bool("use_gpu");
    let dont_finalize = r.bool("dont_finalize_submission");
    let network = r.bool("network");
    let config = Config {
        broker,
        main_broker,
        broker_ca_file,
        queue: r.setting("queue_name"),
        updates_queue: r.setting("updates_queue"),
        aci_pred,
        aci_score,
        work_root: PathBuf::from(r.setting("submission_temp_dir")),
        concurrency,
        registry,
        afs,
        azure,
        use_gpu,
        hostname,
        dont_finalize,
        worker_name,
        state_dir: PathBuf::from(r.setting("state_dir")),
        http_addr,
        log_level,
        log_format,
        grace,
        on_shutdown,
        orphan_age,
        orphan_sweep_every,
        task_attempts,
        retry_delay,
        network,
        notices,
        secrets: Vec::new(),
    };
    if !r.problems.is_empty() {
        return Err(Problems(r.problems));
    }
    Ok(Config { secrets: r.secrets, ..config })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)], purpose: Purpose) -> Result<Config, Problems> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        build(&Sources::load(None, env)?, purpose)
    }

    #[test]
    fn an_empty_value_stands_for_the_default() {
        let mut env = vec![("BROKER_URL", "amqp://u:p@h/v")];
        env.extend(DEFAULTS.iter().map(|(key, _)| (*key, " ")));
        let config = load(&env, Purpose::Serve).unwrap();
        assert_eq!(
            (config.queue.as_str(), config.updates_queue.as_str()),
            ("compute-worker", "submission-updates")
        );
        assert_eq!(config.work_root, PathBuf::from("/tmp/codalab"));
        assert_eq!((config.task_attempts, config.retry_delay), (5, Duration::from_secs(30)));
        assert_eq!(config.orphan_age, Duration::from_secs(86_400));
        assert_eq!(config.log_level, "info");
        assert!(!config.use_gpu && !config.network && !config.uses_aci());
    }

    #[test]
    fn defaults_for_local_docker() {
        let config =
            load(&[("BROKER_URL", "pyamqp://u:p@127.0.0.1:5672/comp")], Purpose::Serve).unwrap();
        assert_eq!(config.concurrency, 1);
        assert_eq!(config.queue, "compute-worker");
        assert!(!config.uses_aci());
        assert_eq!(config.main_broker.as_ref().unwrap().vhost, "comp");
        assert_eq!(config.secrets, vec!["p".to_string()]);
    }

    #[test]
    fn every_problem_is_listed_without_secrets() {
        let err = load(
            &[
                ("BROKER_URL", "nonsense"),
                ("ACI_PRED", "True"),
                ("WORKER_CONCURRENCY", "many"),
                ("IMAGE_REGISTRY_PWD", "registry-secret"),
                ("AFS_NAME", "acct"),
                ("AFS_KEY", "not base64 at all!"),
                ("LOG_FORMAT", "xml"),
            ],
            Purpose::Serve,
        )
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "BROKER_URL",
            "WORKER_CONCURRENCY",
            "AZURE_RESOURCE_GROUP",
            "AZURE_LOCATION",
            "AZURE_AUTH_LOCATION",
            "AFS_NAME/AFS_KEY",
            "LOG_FORMAT",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        assert!(!text.contains("registry-secret") && !text.contains("not base64 at all"), "{text}");
    }

    #[test]
    fn main_broker_credentials_replace_the_urls() {
        let config = load(
            &[
                ("BROKER_URL", "amqp://comp:cpass@rabbit:5672/comp"),
                ("MAIN_BROKER_URL", "amqp://rabbit:5672//"),
                ("MAIN_BROKER_LOGIN", "main"),
                ("MAIN_BROKER_PASS", "mpass"),
                ("BROKER_USE_SSL", "true"),
                ("LOG_CFG", "/x"),
            ],
            Purpose::Serve,
        )
        .unwrap();
        let main = config.main_broker.unwrap();
        assert_eq!(
            (main.username.as_str(), main.password.expose(), main.vhost.as_str()),
            ("main", "mpass", "/")
        );
        assert!(main.tls && config.broker.unwrap().tls);
        assert!(config.notices.iter().any(|n| n.contains("LOG_CFG")));
        assert!(config.secrets.contains(&"mpass".to_string()));
    }

    #[test]
    fn the_file_layer_is_overridden_by_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("worker.toml");
        std::fs::write(
            &file,
            "broker_url = \"amqp://a:b@h/v\"\nworker_concurrency = 3\nbogus = 1\n",
        )
        .unwrap();
        let env = vec![("WORKER_CONCURRENCY".to_string(), "5".to_string())];
        let config = build(&Sources::load(Some(&file), env).unwrap(), Purpose::Serve).unwrap();
        assert_eq!(config.concurrency, 5);
        assert_eq!(config.broker.unwrap().vhost, "v");
        assert!(config.notices.iter().any(|n| n.contains("bogus")));
    }

    #[test]
    fn afs_credentials_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afs_creds");
        std::fs::write(&file, "AFS_NAME=storageacct\nAFS_KEY=AAECAw==\nAFS_SHARE=codalab\n")
            .unwrap();
        let config = load(
            &[("AFS_CREDENTIALS", file.to_str().unwrap()), ("AFS_MODE", "mounted")],
            Purpose::RunTask,
        )
        .unwrap();
        let afs = config.afs.unwrap();
        assert_eq!(
            (afs.account.as_str(), afs.share.as_deref(), afs.mounted),
            ("storageacct", Some("codalab"), true)
        );
        assert!(config.secrets.contains(&"AAECAw==".to_string()));
    }

    #[test]
    fn a_toml_syntax_error_names_the_place_and_not_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("worker.toml");
        std::fs::write(&file, "broker_url = \"amqp://h\"\nmain_broker_pass = \"s3cret\n").unwrap();
        let err = Sources::load(Some(&file), Vec::new()).err().unwrap().to_string();
        assert!(err.contains("worker.toml") && err.contains("line 2"), "{err}");
        assert!(!err.contains("s3cret") && !err.contains("main_broker_pass"), "{err}");
        let missing = Sources::load(Some(&dir.path().join("absent")), Vec::new()).err().unwrap();
        assert!(missing.to_string().contains("absent"), "{missing}");
    }

    #[test]
    fn layers_give_defaults_then_the_file_then_known_environment_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("worker.toml");
        std::fs::write(
            &file,
            "QUEUE_NAME = \"from-file\"\nlog_level = \"debug\"\nhttp_addr = \"\"\n",
        )
        .unwrap();
        let env = vec![
            ("LOG_LEVEL".to_string(), "warn".to_string()),
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("Broker_Url".to_string(), "amqp://u:p@h/v".to_string()),
        ];
        let sources = Sources::load(Some(&file), env).unwrap();
        assert!(sources.get("path").is_none(), "only known names are taken");
        let config = build(&sources, Purpose::Serve).unwrap();
        assert_eq!(config.queue, "from-file", "a file key in upper case overrides the default");
        assert_eq!(config.log_level, "warn", "the environment overrides the file");
        assert_eq!(config.http_addr, None, "empty disables the endpoint");
        assert!(config.notices.is_empty(), "{:?}", config.notices);
        // Defaults of the first layer.
        assert_eq!(config.updates_queue, "submission-updates");
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/aci-worker/state"));
        assert_eq!((config.task_attempts, config.retry_delay), (5, Duration::from_secs(30)));
        assert_eq!(config.orphan_sweep_every, Some(Duration::from_secs(3600)));
        let env = vec![
            ("BROKER_URL".to_string(), "amqp://u:p@h/v".to_string()),
            ("ORPHAN_SWEEP_SECS".to_string(), "0".to_string()),
        ];
        let config = build(&Sources::load(None, env).unwrap(), Purpose::Serve).unwrap();
        assert_eq!(config.orphan_sweep_every, None);
        assert_eq!(config.http_addr, Some("127.0.0.1:9100".parse().unwrap()));
    }

    #[test]
    fn endpoint_and_certificate_files_are_checked_with_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let err = load(
            &[
                ("BROKER_URL", "amqp://u:p@h/v"),
                ("AFS_NAME", "acct"),
                ("AFS_KEY", "AAECAw=="),
                ("AFS_ENDPOINT", "ftp://files.example?sig=endpoint-signature"),
                ("BROKER_CA_FILE", not_pem.to_str().unwrap()),
                ("AZURE_CA_FILE", dir.path().join("missing.pem").to_str().unwrap()),
                ("LOG_FORMAT", "xml"),
            ],
            Purpose::Serve,
        )
        .unwrap_err()
        .to_string();
        for expected in ["AFS_ENDPOINT", "BROKER_CA_FILE", "AZURE_CA_FILE", "LOG_FORMAT"] {
            assert!(err.contains(expected), "{expected} missing from:\n{err}");
        }
        assert!(!err.contains("endpoint-signature"), "{err}");
    }

    #[test]
    fn retry_settings_are_bounded() {
        let err = load(
            &[
                ("BROKER_URL", "amqp://u:p@h/v"),
                ("TASK_MAX_ATTEMPTS", "0"),
                ("TASK_RETRY_DELAY_SECS", "soon"),
                ("ORPHAN_SWEEP_SECS", "-1"),
            ],
            Purpose::Serve,
        )
        .unwrap_err()
        .to_string();
        for expected in ["TASK_MAX_ATTEMPTS", "TASK_RETRY_DELAY_SECS", "ORPHAN_SWEEP_SECS"] {
            assert!(err.contains(expected), "{expected} missing from:\n{err}");
        }
    }
}
