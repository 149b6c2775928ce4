//! Helpers for the emulator's tests: an in-process emulator on a temporary data
//! directory, and requests signed with the account key (through reqwest, or written
//! by hand on a TCP socket when the path must reach the server exactly as written).

#![allow(dead_code)]

pub mod arm;

use std::path::{Path, PathBuf};

use afs_staging::auth::SharedKey;
use azure_emulator::{Emulator, FilesConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub const VERSION: &str = "2025-05-05";

/// An emulator whose data directory is `<root>/data`, so that tests can look for
/// anything written beside it (`<root>` is removed when the test ends).
pub struct Harness {
    pub root: tempfile::TempDir,
    pub emulator: Emulator,
    pub key: SharedKey,
    pub http: reqwest::Client,
}

/// An answer: status, headers (names lowercased) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `x-ms-error-code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.header("x-ms-error-code")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(None).await
    }

    /// With the Entra ID and ARM part too, configured by `arm` from
    /// `ArmConfig::new(<root>/tls)`.
    pub async fn start_with(arm: Option<&dyn Fn(&mut azure_emulator::ArmConfig)>) -> Harness {
        let root = tempfile::tempdir().unwrap();
        let config = FilesConfig::new(root.path().join("data"));
        let key = SharedKey::new(&config.account, &config.key).unwrap();
        let arm = arm.map(|configure| {
            let mut config = azure_emulator::ArmConfig::new(root.path().join("tls"));
            configure(&mut config);
            (config, "127.0.0.1:0".parse().unwrap())
        });
        let emulator =
            Emulator::start_with(config, "127.0.0.1:0".parse().unwrap(), arm).await.unwrap();
        Harness { root, emulator, key, http: reqwest::Client::new() }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// `/devstoreaccount1` + `rest`: a path and query as sent.
    pub fn target(&self, rest: &str) -> String {
        format!("/{}{rest}", self.key.account())
    }

    /// A request signed with the account key, through reqwest. `rest` follows the
    /// account in the URL: `/share/dir/file?comp=range`.
    pub async fn send(
        &self,
        method: &str,
        rest: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let url =
            reqwest::Url::parse(&format!("{}{rest}", self.emulator.files_endpoint())).unwrap();
        let mut all = self.standard_headers(headers, body.len());
        let authorization = self.sign(method, url.path(), url.query(), &all);
        all.push(("authorization".into(), authorization));
        self.send_unsigned(method, url, &all, body).await
    }

    /// A request with exactly these headers (and no signature of its own).
    pub async fn send_unsigned(
        &self,
        method: &str,
        url: reqwest::Url,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, url).body(body);
        for (name, value) in headers {
            if name != "content-length" {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response.bytes().await.unwrap().to_vec();
        Answer { status, headers, body }
    }

    /// A signed request written by hand, so that the path reaches the server exactly
    /// as given (reqwest would resolve `..` and `%2e%2e` segments before sending).
    pub async fn send_raw(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let mut all = self.standard_headers(headers, 0);
        let authorization = self.sign(method, path, query, &all);
        all.push(("authorization".into(), authorization));
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.emulator.files_addr()
        );
        for (name, value) in &all {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = TcpStream::connect(self.emulator.files_addr()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse_answer(&raw)
    }

    fn standard_headers(&self, extra: &[(&str, &str)], body_len: usize) -> Vec<(String, String)> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut all = vec![
            ("x-ms-date".to_owned(), date),
            ("x-ms-version".to_owned(), VERSION.to_owned()),
            ("content-length".to_owned(), body_len.to_string()),
        ];
        all.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        all
    }

    fn sign(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(String, String)],
    ) -> String {
        let pairs: Vec<(&str, &str)> =
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.key.authorization(method, path, query, pairs.iter().copied())
    }

    pub async fn create_share(&self, share: &str) {
        let answer = self.send("PUT", &format!("/{share}?restype=share"), &[], vec![]).await;
        assert_eq!(answer.status, 201, "{}", answer.text());
    }

    pub async fn create_file(&self, path: &str, data: &[u8]) {
        let len = data.len().to_string();
        let headers = [("x-ms-type", "file"), ("x-ms-content-length", len.as_str())];
        let answer = self.send("PUT", path, &headers, vec![]).await;
        assert_eq!(answer.status, 201, "{}", answer.text());
        if !data.is_empty() {
            let range = format!("bytes=0-{}", data.len() - 1);
            let headers = [("x-ms-range", range.as_str()), ("x-ms-write", "update")];
            let answer =
                self.send("PUT", &format!("{path}?comp=range"), &headers, data.to_vec()).await;
            assert_eq!(answer.status, 201, "{}", answer.text());
        }
    }
}

fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer { status, headers, body: raw[split + 4..].to_vec() }
}

/// Every path under `root`, relative to it, sorted; links are listed, not followed.
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn python() -> PathBuf {
    std::env::var("ACI_TEST_VENV_PYTHON")
        .unwrap_or_else(|_| "/var/lib/aci-worker-dev/venv/bin/python".into())
        .into()
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}
