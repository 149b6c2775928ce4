//! Container image references, checked against the Docker reference grammar.
//!
//! A reference is `[domain[:port]/]path[:tag][@digest]`. The grammar is the one the
//! Docker engine and registries apply; a string that does not match it is refused
//! with a message that says which part is wrong, instead of being altered.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The registry that references without a domain resolve to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A validated container image reference such as `codalab/codalab-legacy:py37` or
/// `127.0.0.1:5000/tools/python@sha256:…`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    domain: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct InvalidImageRef {
    reference: String,
    reason: &'static str,
}

impl InvalidImageRef {
    /// What is wrong with the reference, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl ImageRef {
    /// Parses and validates a reference.
    pub fn parse(reference: &str) -> Result<Self, InvalidImageRef> {
        let fail = |reason| InvalidImageRef { reference: reference.to_owned(), reason };
        if reference.is_empty() {
            return Err(fail("it is empty"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                if !is_digest(digest) {
                    return Err(fail("the digest is not algorithm:hex with 32 or more hex digits"));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let (name, tag) = rest.split_at(last_slash + i);
                let tag = &tag[1..];
                if !is_tag(tag) {
                    return Err(fail(
                        "the tag must be up to 128 letters, digits, '_', '.' or '-', \
                         not starting with '.' or '-'",
                    ));
                }
                (name, Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.len() > NAME_MAX {
            return Err(fail("the name is longer than 255 characters"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_domain(first) => (Some(first), path),
            _ => (None, name),
        };
        if let Some(domain) = domain
            && !is_domain_and_port(domain)
        {
            return Err(fail("the registry host or port is malformed"));
        }
        if path.is_empty() {
            return Err(fail("the repository name is empty"));
        }
        for component in path.split('/') {
            if component.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(fail("the repository name must be lowercase"));
            }
            if !is_path_component(component) {
                return Err(fail(
                    "each part of the repository name must be lowercase letters and digits, \
                     joined by '.', '_', '__' or dashes",
                ));
            }
        }
        Ok(ImageRef { domain: domain.map(str::to_owned), path: path.to_owned(), tag, digest })
    }

    /// The registry host (and port) the image comes from; [`DEFAULT_REGISTRY`] when the
    /// reference names none.
    pub fn registry(&self) -> &str {
        self.domain.as_deref().unwrap_or(DEFAULT_REGISTRY)
    }

    /// The repository as written, with its registry when one was given and without
    /// tag or digest, e.g. `127.0.0.1:5000/tools/python`.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`algorithm:hex`), if the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask a registry for: the digest when there is one, else the tag, else
    /// `latest`.
    pub fn tag_or_digest(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = InvalidImageRef;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl TryFrom<String> for ImageRef {
    type Error = InvalidImageRef;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        ImageRef::parse(&value)
    }
}

impl From<ImageRef> for String {
    fn from(value: ImageRef) -> Self {
        value.to_string()
    }
}

/// Docker's rule: the first component names a registry when it has a dot or a
/// port, is `localhost`, or has an uppercase letter (which a repository cannot).
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_domain_and_port(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    // An empty host here only follows a bracketed IPv6 address, checked above.
    host.is_empty() && s.starts_with('[') || host.split('.').all(is_domain_component)
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

/// `[a-z0-9]+` runs joined by one `.`, one `_`, `__`, or any number of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

fn is_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else { return false };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && algorithm.split(['-', '_', '+', '.']).all(component_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_docker_accepts() {
        let cases = [
            ("busybox", None, "busybox", None),
            ("codalab/codalab-legacy:py37", None, "codalab/codalab-legacy", Some("py37")),
            (
                "127.0.0.1:5000/aci-worker/busybox:latest",
                Some("127.0.0.1:5000"),
                "aci-worker/busybox",
                Some("latest"),
            ),
            ("localhost/x", Some("localhost"), "x", None),
            ("my.registry.io/a/b/c:1.0-rc_1", Some("my.registry.io"), "a/b/c", Some("1.0-rc_1")),
            ("[::1]:5000/img", Some("[::1]:5000"), "img", None),
            ("a__b/c.d/e---f:TAG", None, "a__b/c.d/e---f", Some("TAG")),
        ];
        for (input, domain, path, tag) in cases {
            let image = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(image.domain.as_deref(), domain, "{input}");
            assert_eq!(image.path, path, "{input}");
            assert_eq!(image.tag(), tag, "{input}");
            assert_eq!(image.to_string(), input);
        }
    }

    #[test]
    fn digest_is_what_gets_pulled_when_present() {
        let hex = "a".repeat(64);
        let image = ImageRef::parse(&format!("python:3.11@sha256:{hex}")).unwrap();
        assert_eq!(image.tag(), Some("3.11"));
        assert_eq!(image.tag_or_digest(), format!("sha256:{hex}"));
        assert_eq!(image.registry(), DEFAULT_REGISTRY);
        assert_eq!(ImageRef::parse("python").unwrap().tag_or_digest(), "latest");
    }

    #[test]
    fn refuses_what_the_upstream_worker_only_stripped() {
        let cases = [
            ("", "empty"),
            ("busybox; rm -rf /", "lowercase letters"),
            ("bad_host:5000/x", "host or port"),
            ("codalab/Legacy", "lowercase"),
            ("img:", "tag"),
            ("img:-x", "tag"),
            ("img@sha256:abc", "digest"),
            ("img$(id)", "lowercase letters"),
            ("reg:port/x", "host or port"),
            ("a//b", "lowercase letters"),
            ("a/b/", "lowercase letters"),
            ("-a", "lowercase letters"),
            ("a...b", "lowercase letters"),
        ];
        for (input, reason) in cases {
            let err = ImageRef::parse(input).expect_err(input);
            assert!(err.reason().contains(reason), "{input}: {err}");
            assert!(err.to_string().contains("invalid image reference"));
        }
        let long = format!("a/{}", "b".repeat(300));
        assert!(ImageRef::parse(&long).is_err());
    }

    #[test]
    fn serde_goes_through_validation() {
        let ok: ImageRef = serde_json::from_str("\"busybox:1\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"busybox:1\"");
        assert!(serde_json::from_str::<ImageRef>("\"bad image\"").is_err());
    }
}
