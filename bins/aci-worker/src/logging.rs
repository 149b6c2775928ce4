//! Logs: plain or JSON lines on stderr, with every secret removed from every line
//! before it is written.
//!
//! Two nets catch secrets: the values this process knows (keys and passwords from
//! the configuration, each task's submission secret, registered while the task
//! runs), replaced wherever they appear, in any of the encodings a line may carry
//! them in (as they are; escaped as in JSON or Rust's `Debug`, once or twice;
//! percent-encoded as in URLs, `+` for a space; or a mixture); and patterns of
//! signed URLs and keys (`sig=`, `X-Amz-Signature=`, `AccountKey=`, `SharedKey
//! account:signature`, `Bearer` tokens, URL passwords), whose values are cut
//! whatever they are.

use std::borrow::Cow;
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
        let mut out = Cow::Borrowed(line);
        {
            let values = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut frontier = Frontier::default();
            for (value, _) in values.iter() {
                let redacted = match redact_value(&out, value, &mut frontier) {
                    Cow::Owned(redacted) => Some(redacted),
                    Cow::Borrowed(_) => None,
                };
                if let Some(redacted) = redacted {
                    out = Cow::Owned(redacted);
                }
            }
        }
        redact_patterns(&out)
    }
}

/// Scratch space of [`match_encoded`], kept across candidate positions so that
/// they allocate nothing.
#[derive(Default)]
struct Frontier {
    now: Vec<usize>,
    next: Vec<usize>,
}

/// `line` with every occurrence of `secret` replaced, in whatever encoding it
/// appears (see [`encoded_char_at`]); `line` itself when there is none.
fn redact_value<'a>(line: &'a str, secret: &str, frontier: &mut Frontier) -> Cow<'a, str> {
    let Some(first) = secret.chars().next() else { return Cow::Borrowed(line) };
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < line.len() {
        // Every encoding of a character starts with it, `\`, `%` or `+`.
        let b = line.as_bytes()[at];
        let candidate = line[at..].starts_with(first) || matches!(b, b'\\' | b'%' | b'+');
        if candidate && let Some(end) = match_encoded(line, at, secret, frontier) {
            let out = out.get_or_insert_with(|| String::with_capacity(line.len()));
            out.push_str(&line[copied..at]);
            out.push_str("[redacted]");
            copied = end;
            at = end;
            continue;
        }
        at += line[at..].chars().next().map_or(1, char::len_utf8);
    }
    match out {
        Some(mut out) => {
            out.push_str(&line[copied..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(line),
    }
}

/// Where `secret`, encoded character by character in any of the ways
/// [`encoded_char_at`] knows, ends when it starts at `at` in `line`: the
/// furthest end when several encodings fit.
///
/// Follows every way at once, as the set of positions the characters so far
/// can end at (a secret of backslashes against a run of them has many), so
/// that each character costs at most one step per position, whatever the line.
fn match_encoded(line: &str, at: usize, secret: &str, frontier: &mut Frontier) -> Option<usize> {
    let Frontier { now, next } = frontier;
    now.clear();
    now.push(at);
    for c in secret.chars() {
        next.clear();
        for &from in now.iter() {
            next.extend_from_slice(encoded_char_at(line, from, c).as_slice());
        }
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup();
        std::mem::swap(now, next);
    }
    now.last().copied()
}

/// The ends of the encodings of a character found at one place, in no order.
struct Ends {
    ends: [usize; 5],
    len: usize,
}

impl Ends {
    fn push(&mut self, end: usize) {
        self.ends[self.len] = end;
        self.len += 1;
    }

    fn as_slice(&self) -> &[usize] {
        &self.ends[..self.len]
    }
}

/// `c` escaped once and twice as JSON or `Debug` escape it, when it is one of
/// those with a short escape.
fn named_escape(c: char) -> Option<(&'static str, &'static str)> {
    // Escaping again doubles every backslash and escapes the quote.
    match c {
        '"' => Some((r#"\""#, r#"\\\""#)),
        '\\' => Some((r"\\", r"\\\\")),
        '\n' => Some((r"\n", r"\\n")),
        '\r' => Some((r"\r", r"\\r")),
        '\t' => Some((r"\t", r"\\t")),
        _ => None,
    }
}

/// Whether `rest` starts with `form`, ASCII letters in either case.
fn starts_with_ignore_case(rest: &[u8], form: &[u8]) -> bool {
    rest.len() >= form.len() && rest[..form.len()].eq_ignore_ascii_case(form)
}

/// The value of an ASCII hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The ends of the encodings of `c` found at `at` in `line`: the character
/// itself; escaped once or twice as JSON or `Debug` escape it (`\"`, `\\\"`,
/// `\n`, `\u0001`); percent-encoded, one `%XX` per UTF-8 byte in either case;
/// `+` for a space.
fn encoded_char_at(line: &str, at: usize, c: char) -> Ends {
    let rest = &line.as_bytes()[at..];
    let mut ends = Ends { ends: [0; 5], len: 0 };
    let mut bytes = [0; 4];
    let utf8 = c.encode_utf8(&mut bytes).as_bytes();
    if rest.starts_with(utf8) {
        ends.push(at + utf8.len());
    }
    if c == ' ' && rest.starts_with(b"+") {
        ends.push(at + 1);
    }
    if let Some((once, twice)) = named_escape(c) {
        for form in [once, twice] {
            if starts_with_ignore_case(rest, form.as_bytes()) {
                ends.push(at + form.len());
            }
        }
    } else if c.is_control() {
        // `\u0001`, and escaped again `\\u0001`.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let code = c as u32;
        let mut twice = *br"\\u0000";
        for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
            twice[3 + i] = HEX[((code >> shift) & 0xf) as usize];
        }
        for form in [&twice[1..], &twice[..]] {
            if starts_with_ignore_case(rest, form) {
                ends.push(at + form.len());
            }
        }
    }
    let percent = 3 * utf8.len();
    if rest.len() >= percent
        && utf8.iter().zip(rest.chunks_exact(3)).all(|(b, hex)| {
            hex[0] == b'%'
                && hex_value(hex[1]).zip(hex_value(hex[2])).map(|(hi, lo)| hi << 4 | lo) == Some(*b)
        })
    {
        ends.push(at + percent);
    }
    ends
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

    /// Captures what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines one event gives in `format`, through the redacting writer.
    fn log_lines(secrets: &Secrets, format: LogFormat, event: impl FnOnce()) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let writer = RedactingWriter { secrets: secrets.clone(), inner: move || sink.clone() };
        let builder = tracing_subscriber::fmt().with_writer(writer).with_ansi(false);
        match format {
            LogFormat::Plain => tracing::subscriber::with_default(builder.finish(), event),
            LogFormat::Json => {
                let subscriber =
                    builder.json().flatten_event(true).with_current_span(true).finish();
                tracing::subscriber::with_default(subscriber, event)
            }
        }
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn secrets_with_quotes_and_backslashes_are_cut_in_plain_and_json_lines() {
        let secrets = Secrets::default();
        let quoted = r#"pa"ss\word-one"#;
        let spaced = "two words/and=more+";
        secrets.add(quoted);
        secrets.add(spaced);
        let url = format!("https://site.example/upload?token={}", percent(spaced));
        let debugged = format!("{quoted:?}");
        for format in [LogFormat::Plain, LogFormat::Json] {
            let lines = log_lines(&secrets, format, || {
                tracing::warn!(password = quoted, debugged = ?quoted, %url, "broker said {quoted} and {debugged}");
                tracing::info!(nested = %format!("{{\"secret\": {}}}", serde_json::json!(spaced)), "{spaced:?}");
            });
            assert_eq!(lines.lines().count(), 2, "{lines}");
            for line in lines.lines() {
                if format == LogFormat::Json {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|e| panic!("{e}: {line}"));
                }
                // Every distinctive piece of either secret, in any form.
                for piece in [
                    "word-one",
                    "two words",
                    "two+words",
                    "two%20words",
                    "words/and",
                    "words%2Fand",
                    "and=more",
                    "and%3Dmore",
                ] {
                    assert!(!line.contains(piece), "{piece:?} in {line}");
                }
                assert!(line.contains("[redacted]"), "{line}");
            }
        }
        // Forms of the secret that appear in plain output as well.
        assert_eq!(secrets.redact(&format!("a {} b", percent(quoted))), "a [redacted] b");
        assert_eq!(
            secrets.redact(&format!("a {} b", percent(quoted).to_lowercase())),
            "a [redacted] b"
        );
        assert_eq!(
            secrets.redact(r#"x pa\\\"ss\\\\word-one y"#),
            "x [redacted] y",
            "escaped twice"
        );
        assert_eq!(secrets.redact("two+words%2Fand=more%2B"), "[redacted]", "mixed encodings");
        // What merely resembles a secret stays.
        assert_eq!(secrets.redact(r#"pa"ss\word-two"#), r#"pa"ss\word-two"#);
    }

    /// Percent-encodes everything but unreserved characters, as URLs carry values.
    fn percent(text: &str) -> String {
        const UNRESERVED: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
    }

    #[test]
    fn a_secret_of_backslashes_against_a_long_run_of_them_is_matched_without_backtracking() {
        // Each backslash of the secret matches the run as `\`, `\\` or `\\\\`
        // from any place: trying the ways one by one would never end.
        let secret = format!("{}x", "\\".repeat(25));
        let secrets = Secrets::default();
        secrets.add(&secret);
        let run = "\\".repeat(2000);
        assert_eq!(secrets.redact(&run), run, "no occurrence");
        assert_eq!(
            secrets.redact(&format!("{run} and {secret} end")),
            format!("{run} and [redacted] end")
        );
        // Escaped twice at the end of the run: the furthest encoding goes whole.
        assert_eq!(secrets.redact(&format!("{run}x")), format!("{}[redacted]", "\\".repeat(1900)));
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
