//! Azure Storage request authentication: SharedKey signatures and SAS tokens.
//!
//! Both sides use this module: the client signs what it sends, and the emulator
//! recomputes the signature of what it receives. The canonical form follows the
//! Storage service's rules: the verb, eleven standard headers, the `x-ms-*` headers
//! sorted, then `/account` + the request path exactly as sent + the query
//! parameters, sorted, names lowercased and values percent-decoded.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The standard headers that take part in a SharedKey signature, in order.
const SIGNED_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The account name is empty or not a storage account name.
    #[error("storage account name {0:?} is not 3-24 lowercase letters and digits")]
    AccountName(String),
    /// The key is not base64 (its value is never shown).
    #[error("the storage account key for {0} is not valid base64")]
    Key(String),
}

/// A storage account name and its key.
#[derive(Clone)]
pub struct SharedKey {
    account: String,
    key: Vec<u8>,
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKey").field("account", &self.account).finish_non_exhaustive()
    }
}

impl SharedKey {
    /// A key from the account name and the base64 key Azure shows.
    pub fn new(account: &str, base64_key: &str) -> Result<Self, KeyError> {
        let valid_name = (3..=24).contains(&account.len())
            && account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid_name {
            return Err(KeyError::AccountName(account.to_owned()));
        }
        let key =
            BASE64.decode(base64_key.trim()).map_err(|_| KeyError::Key(account.to_owned()))?;
        if key.is_empty() {
            return Err(KeyError::Key(account.to_owned()));
        }
        Ok(SharedKey { account: account.to_owned(), key })
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The `Authorization` header value for a request: `SharedKey account:signature`.
    ///
    /// `path` and `query` are the request target exactly as sent (still
    /// percent-encoded); `headers` are all headers of the request.
    pub fn authorization<'h>(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: impl IntoIterator<Item = (&'h str, &'h str)> + Clone,
    ) -> String {
        let signature = self.sign(&string_to_sign(&self.account, method, path, query, headers));
        format!("SharedKey {}:{}", self.account, signature)
    }

    /// Checks an `Authorization` header value against a received request.
    pub fn verify<'h>(
        &self,
        authorization: &str,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: impl IntoIterator<Item = (&'h str, &'h str)> + Clone,
    ) -> bool {
        let Some(rest) = authorization.strip_prefix("SharedKey ") else { return false };
        let Some((account, signature)) = rest.split_once(':') else { return false };
        if account != self.account {
            return false;
        }
        let Ok(signature) = BASE64.decode(signature.trim()) else { return false };
        let mut mac = self.mac();
        mac.update(string_to_sign(&self.account, method, path, query, headers).as_bytes());
        mac.verify_slice(&signature).is_ok()
    }

    /// The key in base64, as Azure shows it: for the one request body that must carry
    /// it (an ACI volume definition).
    pub fn base64_key(&self) -> String {
        BASE64.encode(&self.key)
    }

    /// Base64 HMAC-SHA256 of `text` under the account key.
    pub fn sign(&self, text: &str) -> String {
        let mut mac = self.mac();
        mac.update(text.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }
}

/// The SharedKey string to sign for a request.
pub fn string_to_sign<'h>(
    account: &str,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: impl IntoIterator<Item = (&'h str, &'h str)> + Clone,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&method.to_ascii_uppercase());
    out.push('\n');
    for name in SIGNED_HEADERS {
        let value = headers
            .clone()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .unwrap_or("");
        // A zero Content-Length is signed as empty (versions from 2015-02-21 on).
        if !(name == "content-length" && value == "0") {
            out.push_str(value);
        }
        out.push('\n');
    }
    let mut ms: Vec<(String, &str)> = headers
        .into_iter()
        .filter(|(n, _)| n.len() > 5 && n[..5].eq_ignore_ascii_case("x-ms-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .collect();
    ms.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in ms {
        out.push_str(&name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('/');
    out.push_str(account);
    out.push_str(path);
    for (name, values) in query_params(query.unwrap_or("")) {
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// Query parameters with lowercased names and decoded values, grouped and sorted.
fn query_params(query: &str) -> BTreeMap<String, Vec<String>> {
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode_str(name).decode_utf8_lossy().to_ascii_lowercase();
        let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
        params.entry(name).or_default().push(value);
    }
    for values in params.values_mut() {
        values.sort();
    }
    params
}

/// Decoded query parameters by exact name (for reading SAS fields).
pub fn query_map(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(name).decode_utf8_lossy().into_owned(),
                percent_decode_str(value).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

/// What a SAS token grants, as its `sp` letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SasPermission {
    /// `r`
    Read,
    /// `c`
    Create,
    /// `w`
    Write,
    /// `d`
    Delete,
    /// `l`
    List,
}

impl SasPermission {
    fn letter(self) -> char {
        match self {
            SasPermission::Read => 'r',
            SasPermission::Create => 'c',
            SasPermission::Write => 'w',
            SasPermission::Delete => 'd',
            SasPermission::List => 'l',
        }
    }
}

/// The fields of a SAS token that a verifier needs, parsed from a query string.
#[derive(Clone)]
pub struct SasToken {
    fields: BTreeMap<String, String>,
}

/// The fields, the signature left out.
impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.fields {
            if name == "sig" {
                map.entry(name, &"[redacted]");
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

/// Why a SAS token does not authorize a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SasError {
    /// A required field is absent.
    #[error("the SAS token has no {0} field")]
    Missing(&'static str),
    /// The signature does not match.
    #[error("the SAS signature does not match")]
    Signature,
    /// The token has expired or is not valid yet.
    #[error("the SAS token is not valid at this time")]
    Time,
    /// The token does not grant this operation or resource.
    #[error("the SAS token does not grant this operation")]
    Permission,
}

impl SasToken {
    /// Parses the SAS fields of a query string; `None` when it carries no `sig`.
    pub fn from_query(query: &str) -> Option<SasToken> {
        let fields = query_map(query);
        fields.contains_key("sig").then_some(SasToken { fields })
    }

    fn field(&self, name: &'static str) -> Result<&str, SasError> {
        self.fields.get(name).map(String::as_str).ok_or(SasError::Missing(name))
    }

    fn optional(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// Checks the token for a request on `share` (and `path` in it, decoded, without a
    /// leading slash) needing `permission`, at `now` (seconds since the epoch).
    pub fn verify(
        &self,
        key: &SharedKey,
        share: Option<&str>,
        path: &str,
        permission: SasPermission,
        now: u64,
    ) -> Result<(), SasError> {
        let account_sas = self.fields.contains_key("ss");
        let expected = if account_sas {
            self.account_string_to_sign(key.account())?
        } else {
            let Some(share) = share else { return Err(SasError::Permission) };
            let resource = match self.field("sr")? {
                "s" => format!("/file/{}/{share}", key.account()),
                "f" if !path.is_empty() => format!("/file/{}/{share}/{path}", key.account()),
                _ => return Err(SasError::Permission),
            };
            self.service_string_to_sign(&resource)?
        };
        let given = BASE64.decode(self.field("sig")?).map_err(|_| SasError::Signature)?;
        let mut mac = key.mac();
        mac.update(expected.as_bytes());
        mac.verify_slice(&given).map_err(|_| SasError::Signature)?;

        let expiry = parse_iso8601(self.field("se")?).ok_or(SasError::Time)?;
        let start = match self.fields.get("st") {
            Some(st) => parse_iso8601(st).ok_or(SasError::Time)?,
            None => 0,
        };
        if now >= expiry || now + 300 < start {
            return Err(SasError::Time);
        }
        if !self.field("sp")?.contains(permission.letter()) {
            return Err(SasError::Permission);
        }
        if account_sas && !self.field("ss")?.contains('f') {
            return Err(SasError::Permission);
        }
        Ok(())
    }

    fn account_string_to_sign(&self, account: &str) -> Result<String, SasError> {
        Ok(format!(
            "{account}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.field("sp")?,
            self.field("ss")?,
            self.field("srt")?,
            self.optional("st"),
            self.field("se")?,
            self.optional("sip"),
            self.optional("spr"),
            self.field("sv")?,
            self.optional("ses"),
        ))
    }

    fn service_string_to_sign(&self, resource: &str) -> Result<String, SasError> {
        Ok(format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.field("sp")?,
            self.optional("st"),
            self.field("se")?,
            resource,
            self.optional("si"),
            self.optional("sip"),
            self.optional("spr"),
            self.field("sv")?,
            self.optional("rscc"),
            self.optional("rscd"),
            self.optional("rsce"),
            self.optional("rscl"),
            self.optional("rsct"),
        ))
    }
}

/// Makes a service SAS for a whole share: the query string to append to its URLs.
pub fn share_sas(
    key: &SharedKey,
    share: &str,
    permissions: &[SasPermission],
    expiry_unix: u64,
    version: &str,
) -> String {
    let sp: String = permissions.iter().map(|p| p.letter()).collect();
    let se = format_iso8601(expiry_unix);
    let resource = format!("/file/{}/{share}", key.account());
    let text = format!("{sp}\n\n{se}\n{resource}\n\n\nhttps,http\n{version}\n\n\n\n\n");
    let sig = key.sign(&text);
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!("sv={version}&se={}&sr=s&sp={sp}&spr=https,http&sig={}", enc(&se), enc(&sig))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn format_iso8601(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Seconds since the epoch of `YYYY-MM-DD[THH:MM[:SS[.frac]]]Z`; `None` for anything
/// else, a year beyond 9999 or a time before the epoch included.
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00"));
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let time = time.split('.').next()?;
    let mut time_parts = time.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let h = time_parts.next()??;
    let min = time_parts.next()??;
    let s = time_parts.next().unwrap_or(Some(0))?;
    // Four-digit years only, as in the formats SAS tokens use: also what keeps the
    // day arithmetic below far from overflowing.
    if !(0..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || h > 23
        || min > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    u64::try_from(days * 86_400).ok().map(|base| base + h * 3600 + min * 60 + s)
}

// Days/civil conversions on the proleptic Gregorian calendar (Howard Hinnant's
// well-known algorithms).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for unix in [0, 951_782_400, 1_796_313_721, 4_102_444_800] {
            assert_eq!(parse_iso8601(&format_iso8601(unix)), Some(unix));
        }
        assert_eq!(format_iso8601(1_796_313_721), "2026-12-03T16:02:01Z");
        assert_eq!(parse_iso8601("2026-12-03T16:02:01.1234567Z"), Some(1_796_313_721));
        assert_eq!(parse_iso8601("2026-13-03T16:02:01Z"), None);
        assert_eq!(parse_iso8601("9999-12-31T23:59:59Z"), Some(253_402_300_799));
        for bad in [
            "10000-01-01T00:00:00Z",
            "99999999999999999-01-01T00:00:00Z",
            "9223372036854775807-12-31T23:59:59Z",
            "+18446744073709551615-01-01",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        let err = SharedKey::new("acct", "not base64!!").unwrap_err();
        assert!(!err.to_string().contains("not base64!!"));
        assert!(SharedKey::new("Bad_Name", "AAAA").is_err());
        let debug = format!("{:?}", SharedKey::new("acct", "AAECAw==").unwrap());
        assert!(!debug.contains("AAECAw"));
    }

    #[test]
    fn sas_tokens_do_not_show_their_signature() {
        let key = SharedKey::new("devstoreaccount1", "AAECAwQFBgcICQoLDA0ODw==").unwrap();
        let query = share_sas(&key, "run", &[SasPermission::Read], 1_796_313_721, "2025-05-05");
        let sig = query_map(&query)["sig"].clone();
        let token = SasToken::from_query(&query).unwrap();
        let debug = format!("{token:?} {token:#?}");
        assert!(!debug.contains(&sig), "{debug}");
        let encoded =
            percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC);
        assert!(!debug.contains(&encoded.to_string()), "{debug}");
        assert!(debug.contains("\"sig\": \"[redacted]\""), "{debug}");
        assert!(debug.contains("\"sp\": \"r\""), "{debug}");
    }

    #[test]
    fn share_sas_verifies_and_limits() {
        let key = SharedKey::new("devstoreaccount1", "AAECAwQFBgcICQoLDA0ODw==").unwrap();
        let now = 1_796_313_721;
        let query = share_sas(&key, "run", &[SasPermission::Read], now + 3600, "2025-05-05");
        let token = SasToken::from_query(&query).unwrap();
        assert_eq!(token.verify(&key, Some("run"), "a", SasPermission::Read, now), Ok(()));
        assert_eq!(
            token.verify(&key, Some("run"), "a", SasPermission::Write, now),
            Err(SasError::Permission)
        );
        assert_eq!(
            token.verify(&key, Some("run"), "a", SasPermission::Read, now + 7200),
            Err(SasError::Time)
        );
        assert_eq!(
            token.verify(&key, Some("other"), "", SasPermission::Read, now),
            Err(SasError::Signature)
        );
        let wrong = SharedKey::new("devstoreaccount1", "AQECAwQFBgcICQoLDA0ODw==").unwrap();
        assert_eq!(
            token.verify(&wrong, Some("run"), "a", SasPermission::Read, now),
            Err(SasError::Signature)
        );
    }
}
