//! Celery task messages: decoding protocol 1 and 2 (JSON only) and encoding.
//!
//! Decoding is a pure function of the message's properties and body, so that it can
//! be tested on captured messages and fuzzed without a broker.

use serde_json::{Map, Value, json};

/// The content type of JSON-serialized Celery messages, the only one accepted.
pub const JSON: &str = "application/json";

/// Most bytes a message body may have, unless configured otherwise.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Message properties that matter for decoding, independent of the AMQP library.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Properties {
    /// `content_type`, e.g. `application/json`.
    pub content_type: Option<String>,
    /// `content_encoding`, e.g. `utf-8`.
    pub content_encoding: Option<String>,
    /// Message priority, 0 to 255.
    pub priority: Option<u8>,
    /// Celery sets it to the task id.
    pub correlation_id: Option<String>,
    /// AMQP headers as JSON values (protocol 2 keeps the task fields there).
    pub headers: Map<String, Value>,
}

/// A decoded Celery task.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskMessage {
    /// Celery message protocol version, 1 or 2.
    pub protocol: u8,
    /// Task name, e.g. `compute_worker_run`.
    pub name: String,
    /// Task id (a UUID as Celery makes them).
    pub id: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// How often the task was retried already.
    pub retries: u32,
    /// Earliest run time, ISO 8601, as sent.
    pub eta: Option<String>,
    /// Expiry time, ISO 8601, as sent.
    pub expires: Option<String>,
    /// Soft time limit in seconds.
    pub soft_time_limit: Option<f64>,
    /// Hard time limit in seconds.
    pub time_limit: Option<f64>,
    /// Id of the first task of the workflow; the task's own id when it is the
    /// first (protocol 1 has no other).
    pub root_id: Option<String>,
    /// Id of the task that sent this one.
    pub parent_id: Option<String>,
    /// Group id.
    pub group: Option<String>,
    /// Message priority from the AMQP properties.
    pub priority: Option<u8>,
}

/// Why a message is not a task this crate can accept. Every case is permanent: the
/// same bytes will never decode, so the message is rejected without requeue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Body larger than the configured maximum.
    #[error("message body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Serialized with something other than JSON; never deserialized.
    #[error("unsupported serializer {0:?}: only application/json is accepted")]
    UnsupportedSerializer(String),
    /// Encoded with something other than UTF-8.
    #[error("unsupported content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON of the wrong shape.
    #[error("malformed task message: {0}")]
    Malformed(String),
    /// A task this consumer does not run.
    #[error("unknown task {0:?}")]
    UnknownTask(String),
    /// The arguments do not fit the task.
    #[error("invalid arguments for {task}: {reason}")]
    InvalidArgs {
        /// Task name.
        task: String,
        /// What is wrong.
        reason: String,
    },
}

impl TaskMessage {
    /// Decodes a message body with its properties, in protocol 2 when the headers
    /// carry the task name, else in protocol 1.
    pub fn decode(props: &Properties, body: &[u8], max_body: usize) -> Result<Self, DecodeError> {
        if body.len() > max_body {
            return Err(DecodeError::TooLarge { size: body.len(), limit: max_body });
        }
        match props.content_type.as_deref() {
            Some(JSON) => {}
            Some(other) => return Err(DecodeError::UnsupportedSerializer(other.to_owned())),
            None => return Err(DecodeError::UnsupportedSerializer(String::new())),
        }
        match props.content_encoding.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("utf-8" | "utf8") => {}
            Some(other) => return Err(DecodeError::UnsupportedEncoding(other.to_owned())),
        }
        let body: Value =
            serde_json::from_slice(body).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        let mut task = if props.headers.contains_key("task") {
            decode_v2(&props.headers, body)?
        } else {
            decode_v1(body)?
        };
        task.priority = props.priority;
        Ok(task)
    }

    /// The message Celery would send for this task, in the given protocol (1 or 2).
    ///
    /// `secrets` are values to elide from the human-readable `argsrepr` and
    /// `kwargsrepr` headers that Celery adds; values under keys that name secrets
    /// (`secret`, `password`, `token`, `key`, `sig`, ...) are elided as well.
    pub fn encode(&self, protocol: u8, origin: &str, secrets: &[&str]) -> Encoded {
        let timelimit = json!([self.time_limit, self.soft_time_limit]);
        let props = |headers: Map<String, Value>| Properties {
            content_type: Some(JSON.to_owned()),
            content_encoding: Some("utf-8".to_owned()),
            priority: self.priority,
            correlation_id: Some(self.id.clone()),
            headers,
        };
        if protocol == 1 {
            let body = json!({
                "task": self.name, "id": self.id, "args": self.args, "kwargs": self.kwargs,
                "group": self.group, "group_index": null, "retries": self.retries,
                "eta": self.eta, "expires": self.expires, "utc": true, "callbacks": null,
                "errbacks": null, "timelimit": timelimit, "taskset": null, "chord": null,
            });
            return Encoded { properties: props(Map::new()), body: body.to_string().into_bytes() };
        }
        let argsrepr = repr::args(&self.args, secrets);
        let kwargsrepr = repr::kwargs(&self.kwargs, secrets);
        let headers = json!({
            "lang": "py", "task": self.name, "id": self.id, "shadow": null, "eta": self.eta,
            "expires": self.expires, "group": self.group, "group_index": null,
            "retries": self.retries, "timelimit": timelimit,
            "root_id": self.root_id.as_deref().unwrap_or(&self.id), "parent_id": self.parent_id,
            "argsrepr": argsrepr, "kwargsrepr": kwargsrepr, "origin": origin,
            "ignore_result": false, "replaced_task_nesting": 0, "stamped_headers": null,
            "stamps": {},
        });
        let Value::Object(headers) = headers else { unreachable!("json! of an object") };
        let embed = json!({"callbacks": null, "errbacks": null, "chain": null, "chord": null});
        let body = json!([self.args, self.kwargs, embed]);
        Encoded { properties: props(headers), body: body.to_string().into_bytes() }
    }

    /// A new task with a fresh id, no options set, ready to [`encode`](Self::encode).
    pub fn new(name: impl Into<String>, args: Vec<Value>) -> Self {
        let id = new_task_id();
        TaskMessage {
            protocol: 2,
            name: name.into(),
            id: id.clone(),
            args,
            kwargs: Map::new(),
            retries: 0,
            eta: None,
            expires: None,
            soft_time_limit: None,
            time_limit: None,
            root_id: Some(id),
            parent_id: None,
            group: None,
            priority: None,
        }
    }
}

/// A task encoded for publishing.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    /// Properties and headers to send.
    pub properties: Properties,
    /// The body.
    pub body: Vec<u8>,
}

impl Encoded {
    /// The properties as lapin sends them: persistent, with the headers typed as
    /// py-amqp types them.
    pub fn basic_properties(&self) -> lapin::BasicProperties {
        crate::amqp::basic_properties(&self.properties)
    }
}

/// A random (version 4) UUID, as Celery uses for task ids.
pub fn new_task_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn malformed(msg: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(msg.into())
}

fn string_field(map: &Map<String, Value>, key: &str) -> Result<Option<String>, DecodeError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(format!("{key} is not a string"))),
    }
}

fn required_string(map: &Map<String, Value>, key: &str) -> Result<String, DecodeError> {
    string_field(map, key)?.ok_or_else(|| malformed(format!("{key} is missing")))
}

fn retries(map: &Map<String, Value>) -> Result<u32, DecodeError> {
    match map.get("retries") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| malformed("retries is not a small non-negative integer")),
    }
}

/// `timelimit` is `[hard, soft]`, either may be null.
fn time_limits(map: &Map<String, Value>) -> Result<(Option<f64>, Option<f64>), DecodeError> {
    let limit = |v: &Value| match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_f64().filter(|f| *f >= 0.0).map(Some).ok_or(()),
        _ => Err(()),
    };
    match map.get("timelimit") {
        None | Some(Value::Null) => Ok((None, None)),
        Some(Value::Array(pair)) if pair.len() == 2 => {
            let bad = |_| malformed("timelimit is not [hard, soft] in seconds");
            Ok((limit(&pair[0]).map_err(bad)?, limit(&pair[1]).map_err(bad)?))
        }
        Some(_) => Err(malformed("timelimit is not [hard, soft] in seconds")),
    }
}

fn args_and_kwargs(
    args: Value,
    kwargs: Value,
) -> Result<(Vec<Value>, Map<String, Value>), DecodeError> {
    let Value::Array(args) = args else { return Err(malformed("args is not a list")) };
    let kwargs = match kwargs {
        Value::Object(kwargs) => kwargs,
        Value::Null => Map::new(),
        _ => return Err(malformed("kwargs is not a mapping")),
    };
    Ok((args, kwargs))
}

fn decode_v2(headers: &Map<String, Value>, body: Value) -> Result<TaskMessage, DecodeError> {
    let Value::Array(mut parts) = body else {
        return Err(malformed("protocol 2 body is not [args, kwargs, embed]"));
    };
    if !(2..=3).contains(&parts.len()) {
        return Err(malformed("protocol 2 body is not [args, kwargs, embed]"));
    }
    let kwargs = parts.swap_remove(1);
    let args = parts.swap_remove(0);
    let (args, kwargs) = args_and_kwargs(args, kwargs)?;
    let (time_limit, soft_time_limit) = time_limits(headers)?;
    let id = required_string(headers, "id")?;
    Ok(TaskMessage {
        protocol: 2,
        name: required_string(headers, "task")?,
        root_id: Some(string_field(headers, "root_id")?.unwrap_or_else(|| id.clone())),
        id,
        args,
        kwargs,
        retries: retries(headers)?,
        eta: string_field(headers, "eta")?,
        expires: string_field(headers, "expires")?,
        soft_time_limit,
        time_limit,
        parent_id: string_field(headers, "parent_id")?,
        group: string_field(headers, "group")?,
        priority: None,
    })
}

fn decode_v1(body: Value) -> Result<TaskMessage, DecodeError> {
    let Value::Object(mut map) = body else {
        return Err(malformed("protocol 1 body is not a mapping (and no task header was sent)"));
    };
    let args = map.remove("args").unwrap_or(Value::Array(Vec::new()));
    let kwargs = map.remove("kwargs").unwrap_or(Value::Null);
    let (args, kwargs) = args_and_kwargs(args, kwargs)?;
    let (time_limit, soft_time_limit) = time_limits(&map)?;
    let id = required_string(&map, "id")?;
    Ok(TaskMessage {
        protocol: 1,
        name: required_string(&map, "task")?,
        root_id: Some(id.clone()),
        id,
        args,
        kwargs,
        retries: retries(&map)?,
        eta: string_field(&map, "eta")?,
        expires: string_field(&map, "expires")?,
        soft_time_limit,
        time_limit,
        parent_id: None,
        group: string_field(&map, "group")?,
        priority: None,
    })
}

/// Python-style `repr` of arguments, as Celery writes into `argsrepr`, with
/// secrets elided and the length capped as Celery caps it.
pub(crate) mod repr {
    use serde_json::{Map, Value};

    const MAX: usize = 1024;
    const ELIDED: &str = "'***'";
    const SECRET_KEYS: [&str; 7] =
        ["secret", "password", "passwd", "token", "key", "sig", "signature"];

    pub(crate) fn args(args: &[Value], secrets: &[&str]) -> String {
        let mut out = String::from("(");
        for (i, v) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            value(&mut out, v, secrets);
        }
        if args.len() == 1 {
            out.push(',');
        }
        out.push(')');
        cap(out)
    }

    pub(crate) fn kwargs(kwargs: &Map<String, Value>, secrets: &[&str]) -> String {
        let mut out = String::new();
        object(&mut out, kwargs, secrets);
        cap(out)
    }

    fn cap(mut s: String) -> String {
        if s.len() > MAX {
            let mut end = MAX;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("...");
        }
        s
    }

    /// Azure SAS and S3 presigned URLs carry their credential in the query.
    fn is_signed_url(s: &str) -> bool {
        s.contains('?')
            && (s.contains("sig=") || s.contains("Signature=") || s.contains("Credential="))
    }

    fn is_secret_key(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        SECRET_KEYS.iter().any(|k| key == *k || key.ends_with(&format!("_{k}")))
    }

    fn object(out: &mut String, map: &Map<String, Value>, secrets: &[&str]) {
        out.push('{');
        for (i, (k, v)) in map.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            string(out, k);
            out.push_str(": ");
            if is_secret_key(k) && !v.is_null() {
                out.push_str(ELIDED);
            } else {
                value(out, v, secrets);
            }
        }
        out.push('}');
    }

    fn value(out: &mut String, v: &Value, secrets: &[&str]) {
        match v {
            Value::Null => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) if secrets.contains(&s.as_str()) => out.push_str(ELIDED),
            Value::String(s) if is_signed_url(s) => {
                let (base, _) = s.split_once('?').unwrap_or((s, ""));
                string(out, &format!("{base}?***"));
            }
            Value::String(s) => string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    value(out, item, secrets);
                }
                out.push(']');
            }
            Value::Object(map) => object(out, map, secrets),
        }
    }

    fn string(out: &mut String, s: &str) {
        out.push('\'');
        for c in s.chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_props() -> Properties {
        Properties {
            content_type: Some(JSON.into()),
            content_encoding: Some("utf-8".into()),
            ..Properties::default()
        }
    }

    fn v2_props(task: &str) -> Properties {
        let mut p = json_props();
        p.headers.insert("task".into(), json!(task));
        p.headers.insert("id".into(), json!("6c1b0c43-0000-4000-8000-000000000001"));
        p
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        let cases: Vec<(Properties, &[u8], &str)> = vec![
            (v2_props("t"), b"not json", "not valid JSON"),
            (v2_props("t"), b"{}", "[args, kwargs, embed]"),
            (v2_props("t"), b"[1, {}, {}]", "args is not a list"),
            (v2_props("t"), b"[[], [], {}]", "kwargs is not a mapping"),
            (json_props(), b"[[], {}, {}]", "protocol 1 body is not a mapping"),
            (json_props(), br#"{"id": "x", "args": []}"#, "task is missing"),
            (json_props(), br#"{"task": "t", "id": 5}"#, "id is not a string"),
            (json_props(), br#"{"task": "t", "id": "x", "retries": -1}"#, "retries"),
            (json_props(), br#"{"task": "t", "id": "x", "timelimit": [1]}"#, "timelimit"),
        ];
        for (props, body, expected) in cases {
            let err = TaskMessage::decode(&props, body, DEFAULT_MAX_BODY).unwrap_err();
            assert!(err.to_string().contains(expected), "{}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn other_serializers_are_never_deserialized() {
        for ct in ["application/x-python-serialize", "application/x-yaml", "application/x-msgpack"]
        {
            let props = Properties { content_type: Some(ct.into()), ..v2_props("t") };
            // A pickle that would run code if it were loaded.
            let body = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.";
            let err = TaskMessage::decode(&props, body, DEFAULT_MAX_BODY).unwrap_err();
            assert_eq!(err, DecodeError::UnsupportedSerializer(ct.into()));
        }
        let latin = Properties { content_encoding: Some("latin-1".into()), ..v2_props("t") };
        assert!(matches!(
            TaskMessage::decode(&latin, b"[[], {}, {}]", DEFAULT_MAX_BODY),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let body = vec![b' '; 101];
        let err = TaskMessage::decode(&v2_props("t"), &body, 100).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { size: 101, limit: 100 });
    }

    #[test]
    fn encoding_then_decoding_gives_the_task_back() {
        let mut task =
            TaskMessage::new("compute_worker_run", vec![json!(7), json!({"a": [1, null]})]);
        task.soft_time_limit = Some(3900.0);
        task.priority = Some(2);
        task.kwargs.insert("k".into(), json!(true));
        for protocol in [1, 2] {
            let encoded = task.encode(protocol, "1@host", &[]);
            let mut back =
                TaskMessage::decode(&encoded.properties, &encoded.body, DEFAULT_MAX_BODY).unwrap();
            assert_eq!(back.protocol, protocol);
            back.protocol = task.protocol;
            assert_eq!(back, task);
        }
    }

    #[test]
    fn argsrepr_elides_secrets_and_signed_urls() {
        let task = TaskMessage::new(
            "apps.web.tasks.update_submission",
            vec![
                json!(1234),
                json!({"status": "failed", "extra": {"traceback": "it's\nbroken"},
                       "password": "p4ss", "stdout_url": "https://a.blob.core.windows.net/c/o.txt?sv=1&sig=SECRETSIG"}),
                json!("the-submission-secret"),
            ],
        );
        let encoded = task.encode(2, "1@host", &["the-submission-secret"]);
        let argsrepr = encoded.properties.headers["argsrepr"].as_str().unwrap();
        assert!(argsrepr.starts_with("(1234, {"), "{argsrepr}");
        assert!(argsrepr.contains(r"'it\'s\nbroken'"), "{argsrepr}");
        assert!(argsrepr.contains("'https://a.blob.core.windows.net/c/o.txt?***'"), "{argsrepr}");
        for secret in ["p4ss", "SECRETSIG", "the-submission-secret"] {
            assert!(!argsrepr.contains(secret), "{secret} in {argsrepr}");
        }
        assert_eq!(repr::args(&[json!(1)], &[]), "(1,)");
        assert!(repr::args(&[json!("x".repeat(5000))], &[]).len() < 1100);
    }
}
