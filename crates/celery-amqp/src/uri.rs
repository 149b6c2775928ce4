//! Broker URLs as CodaLab deployments write them (`BROKER_URL`).

use std::fmt;
use std::str::FromStr;

use compute::Secret;
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};

/// A parsed broker URL: `amqp://`, `amqps://`, or the `pyamqp://` and
/// `librabbitmq://` aliases Celery accepts, with user, password, host, port,
/// virtual host (percent-encoded in the path, `%2f` or `//` for `/`) and an optional
/// `heartbeat` query parameter in seconds.
///
/// `Display` and `Debug` never show the password.
#[derive(Clone, PartialEq)]
pub struct BrokerUrl {
    /// Connect with TLS.
    pub tls: bool,
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Virtual host.
    pub vhost: String,
    /// Heartbeat interval to ask for, in seconds; `None` takes the broker's.
    pub heartbeat: Option<u16>,
}

/// Why a broker URL was refused. The message never contains the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker URL: {0}")]
pub struct InvalidBrokerUrl(String);

impl BrokerUrl {
    /// Parses a URL.
    pub fn parse(url: &str) -> Result<Self, InvalidBrokerUrl> {
        let bad = |m: &str| InvalidBrokerUrl(m.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("it has no scheme"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "amqp" | "pyamqp" | "librabbitmq" => false,
            "amqps" => true,
            _ => return Err(bad("the scheme must be amqp, amqps, pyamqp or librabbitmq")),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                (
                    decode(user).map_err(|_| bad("the user name is badly percent-encoded"))?,
                    decode(pass).map_err(|_| bad("the password is badly percent-encoded"))?,
                )
            }
            None => ("guest".to_owned(), "guest".to_owned()),
        };
        let (host, port) =
            split_host_port(hostport).ok_or_else(|| bad("the host or port is malformed"))?;
        let host = decode(host).map_err(|_| bad("the host is badly percent-encoded"))?;
        let host = if host.is_empty() { "localhost".to_owned() } else { host };
        let port = port.unwrap_or(if tls { 5671 } else { 5672 });
        let vhost = decode(path).map_err(|_| bad("the virtual host is badly percent-encoded"))?;
        let vhost = if vhost.is_empty() { "/".to_owned() } else { vhost };
        let mut heartbeat = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == "heartbeat" {
                heartbeat =
                    Some(v.parse().map_err(|_| bad("heartbeat is not a number of seconds"))?);
            }
        }
        Ok(BrokerUrl {
            tls,
            username,
            password: Secret::new(password),
            host,
            port,
            vhost,
            heartbeat,
        })
    }

    /// The same broker with TLS on, as `BROKER_USE_SSL` asks; the port moves to
    /// 5671 when it was the plain default.
    pub fn with_tls(mut self) -> Self {
        if !self.tls && self.port == 5672 {
            self.port = 5671;
        }
        self.tls = true;
        self
    }

    /// The same broker with other credentials (`MAIN_BROKER_LOGIN`,
    /// `MAIN_BROKER_PASS`).
    pub fn with_credentials(mut self, username: &str, password: Secret) -> Self {
        self.username = username.to_owned();
        self.password = password;
        self
    }

    pub(crate) fn to_amqp_uri(&self) -> AMQPUri {
        AMQPUri {
            scheme: if self.tls { AMQPScheme::AMQPS } else { AMQPScheme::AMQP },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: self.username.clone(),
                    password: self.password.expose().to_owned(),
                },
                host: self.host.clone(),
                port: self.port,
            },
            vhost: self.vhost.clone(),
            query: AMQPQueryString { heartbeat: self.heartbeat, ..Default::default() },
        }
    }
}

impl FromStr for BrokerUrl {
    type Err = InvalidBrokerUrl;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BrokerUrl::parse(s)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "amqps" } else { "amqp" };
        let vhost: String = self
            .vhost
            .bytes()
            .map(|b| match b {
                b'/' => "%2f".to_owned(),
                b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        write!(f, "{scheme}://{}:***@{}:{}/{vhost}", self.username, self.host, self.port)
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerUrl({self})")
    }
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

fn decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codalab_broker_urls() {
        let u =
            BrokerUrl::parse("pyamqp://codalab:p%40ss%2Fw@rabbit.example.org:5672/comp%2Fvhost")
                .unwrap();
        assert!(!u.tls);
        assert_eq!((u.username.as_str(), u.password.expose()), ("codalab", "p@ss/w"));
        assert_eq!(
            (u.host.as_str(), u.port, u.vhost.as_str()),
            ("rabbit.example.org", 5672, "comp/vhost")
        );

        let slash = BrokerUrl::parse("amqp://guest:guest@127.0.0.1//").unwrap();
        assert_eq!(slash.vhost, "/");
        assert_eq!(BrokerUrl::parse("amqp://u:p@h/%2f").unwrap().vhost, "/");
        assert_eq!(BrokerUrl::parse("amqp://u:p@h").unwrap().vhost, "/");

        let tls = BrokerUrl::parse("amqps://u:p@[::1]/v?heartbeat=30").unwrap();
        assert!(tls.tls);
        assert_eq!((tls.host.as_str(), tls.port, tls.heartbeat), ("::1", 5671, Some(30)));
        let upgraded = BrokerUrl::parse("amqp://u:p@h/v").unwrap().with_tls();
        assert_eq!((upgraded.tls, upgraded.port), (true, 5671));
    }

    #[test]
    fn the_password_never_shows() {
        let u = BrokerUrl::parse("amqp://user:hunter2@h:1234/v").unwrap();
        assert_eq!(u.to_string(), "amqp://user:***@h:1234/v");
        assert!(!format!("{u:?}").contains("hunter2"));
        let err = BrokerUrl::parse("amqp://user:hunter2@h:port/v").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn refuses_what_is_not_a_broker() {
        for bad in [
            "redis://h",
            "h:5672",
            "amqp://u:p@h:99999/",
            "amqp://u:%zz@h/",
            "amqp://h/?heartbeat=x",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
