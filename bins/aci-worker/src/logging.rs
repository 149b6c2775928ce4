//! Logs: plain or JSON lines on stderr, with every secret removed from every line
//! before it is written.
//!
//! Two nets catch secrets: the values this process knows (keys and passwords from
//! the configuration, each task's submission secret, registered while the task
//! runs), replaced wherever they appear; and patterns of signed URLs and keys
//! (`sig=`, `X-Amz-Signature=`, `AccountKey=`, `SharedKey account:signature`,
//! `Bearer` tokens, URL passwords), whose values are cut whatever they are.

use std::io::Write;
use std::sync::{Arc, RwLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// The secrets known to this process, each with how many holders registered it
/// (a submission's prediction and scoring share its secret, and may run at once).
/// Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Secrets(Arc<RwLock<Vec<(String, usize)>>>);

impl Secrets {
    /// Adds a value to remove from every line (values shorter than 4 characters
    /// would erase ordinary words and are left to the patterns). Each `add` needs
    /// its own [`Secrets::remove`].
    pub fn add(&self, value: &str) {
        if value.len() >= 4 {
            let mut values = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            match values.iter_mut().find(|(v, _)| v == value) {
                Some((_, holders)) => *holders += 1,
                None => {
                    values.push((value.to_owned(), 1));
                    // Longest first, so that a secret containing another goes whole.
                    values.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
                }
            }
        }
    }

    /// Forgets a value once its last holder removes it (a task's secret, once
    /// the task is over).
    pub fn remove(&self, value: &str) {
        let mut values = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = values.iter().position(|(v, _)| v == value) {
            values[at].1 -= 1;
            if values[at].1 == 0 {
                values.remove(at);
            }
        }
    }

    /// The line with every known secret and every secret-looking value replaced.
    pub fn redact(&self, line: &str) -> String {
        let mut out = line.to_owned();
        {
            let values = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (value, _) in values.iter() {
                if out.contains(value.as_str()) {
                    out = out.replace(value.as_str(), "[redacted]");
                }
            }
        }
        redact_patterns(&out)
    }
}

/// Cuts the values of query parameters and headers that carry credentials.
pub fn redact_patterns(line: &str) -> String {
    const KEYS: [&str; 9] = [
        "sig=",
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
        "AccountKey=",
        "SharedKey ",
        "Bearer ",
        "client_secret=",
        "secret=",
    ];
    let mut out = line.to_owned();
    for key in KEYS {
        let mut from = 0;
        while let Some(found) = find_ignore_case(&out[from..], key) {
            let start = from + found + key.len();
            let end = out[start..]
                .find(|c: char| {
                    c == '&' || c == '"' || c == '\'' || c == ',' || c.is_whitespace() || c == '\\'
                })
                .map_or(out.len(), |e| start + e);
            if end > start && &out[start..end] != "[redacted]" {
                out.replace_range(start..end, "[redacted]");
            }
            from = start + "[redacted]".len().min(out.len() - start);
        }
    }
    // user:password@ in URLs.
    let mut from = 0;
    while let Some(found) = out[from..].find("://") {
        let start = from + found + 3;
        let rest = &out[start..];
        let stop =
            rest.find(|c: char| c == '/' || c.is_whitespace() || c == '"').unwrap_or(rest.len());
        if let Some(at) = rest[..stop].rfind('@')
            && let Some(colon) = rest[..at].find(':')
            && &rest[colon + 1..at] != "[redacted]"
        {
            out.replace_range(start + colon + 1..start + at, "[redacted]");
        }
        from = start;
    }
    out
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    (0..h.len().saturating_sub(n.len() - 1)).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// A writer that redacts each formatted event before it reaches `inner`.
#[derive(Clone)]
pub struct RedactingWriter<W> {
    secrets: Secrets,
    inner: W,
}

/// One event's bytes, redacted and written when dropped.
pub struct LineBuffer<W: Write> {
    secrets: Secrets,
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> Write for LineBuffer<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for LineBuffer<W> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let clean = self.secrets.redact(&text);
        let _ = self.inner.write_all(clean.as_bytes());
        let _ = self.inner.flush();
    }
}

impl<'a, W> MakeWriter<'a> for RedactingWriter<W>
where
    W: MakeWriter<'a>,
{
    type Writer = LineBuffer<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        LineBuffer {
            secrets: self.secrets.clone(),
            inner: self.inner.make_writer(),
            buffer: Vec::with_capacity(256),
        }
    }
}

/// Installs the global subscriber writing redacted lines to `writer`.
pub fn init<W>(level: &str, format: LogFormat, secrets: Secrets, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // lapin logs every channel error it hands to us as an error of its own; the
    // worker reports those itself, so lapin stays quiet unless asked for.
    let level =
        if level.contains("lapin") { level.to_owned() } else { format!("{level},lapin=off") };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info,lapin=off"));
    let writer = RedactingWriter { secrets, inner: writer };
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false);
    let _ = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_patterns_are_cut() {
        let secrets = Secrets::default();
        secrets.add("submission-secret-1234");
        let line = "uploading to https://acct.blob.core.windows.net/c/out.zip?sv=2020&sig=abc%2Fdef&se=1 \
                    with secret submission-secret-1234 and amqp://user:hunter22@rabbit:5672// and \
                    Authorization: SharedKey acct:c2lnbmF0dXJl and X-Amz-Signature=deadbeef&X-Amz-Date=1";
        let clean = secrets.redact(line);
        for leaked in
            ["abc%2Fdef", "submission-secret-1234", "hunter22", "c2lnbmF0dXJl", "deadbeef"]
        {
            assert!(!clean.contains(leaked), "{leaked} in {clean}");
        }
        assert!(clean.contains("sv=2020") && clean.contains("X-Amz-Date=1"), "{clean}");
        secrets.remove("submission-secret-1234");
        assert!(secrets.redact("submission-secret-1234").contains("submission-secret-1234"));
    }

    #[test]
    fn a_secret_shared_by_two_tasks_stays_redacted_until_both_end() {
        let secrets = Secrets::default();
        secrets.add("shared-submission-secret");
        secrets.add("shared-submission-secret");
        secrets.remove("shared-submission-secret");
        assert_eq!(secrets.redact("x shared-submission-secret y"), "x [redacted] y");
        secrets.remove("shared-submission-secret");
        assert_eq!(secrets.redact("x shared-submission-secret y"), "x shared-submission-secret y");
        // A value never added is not counted below zero.
        secrets.remove("shared-submission-secret");
        secrets.add("shared-submission-secret");
        assert_eq!(secrets.redact("shared-submission-secret"), "[redacted]");
    }
}
