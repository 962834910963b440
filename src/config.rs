//! Raw flag values → a typed, validated `Config`.
//!
//! Every default lives here, next to the rule that checks the value, so
//! `--help`, the README's configuration table and the behaviour agree.

use crate::cli::{Raw, UsageError};
use crate::mail;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: u64,
    pub leeway: u64,
    pub refresh_ttl: u64,
    pub max_private_token_ttl: u64,
    pub rotate_refresh_tokens: bool,
    pub refresh_reuse_interval: u64,
    pub key_rotation_interval: u64,
    pub expired_token_status: u16,
    pub cleanup_interval: u64,
    pub max_image_bytes: usize,
    pub max_image_pixels: u64,
    pub login_max_failures: u32,
    pub login_window: u64,
    pub threads: usize,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub trusted_proxies: Vec<IpAddr>,
    /// `--public-url` without a trailing `/`; `None`: `http://` + the bound address.
    pub public_url: Option<String>,
    pub mail: mail::settings::Settings,
    pub verify_ttl: u64,
    pub reset_ttl: u64,
    pub require_verified_email: bool,
}

/// The database path alone, for subcommands other than `serve`.
pub fn db_path(raw: &Raw) -> PathBuf {
    PathBuf::from(raw.get("--db").unwrap_or("./latchkey.db"))
}

/// The mail delivery flags, for `serve` and `mail-test`.
pub fn mail_settings(raw: &Raw) -> Result<mail::settings::Settings, UsageError> {
    mail::settings::parse(
        raw.get("--smtp-url"),
        raw.get("--mail-from"),
        raw.get("--mail-dir"),
        &db_path(raw),
    )
    .map_err(UsageError)
}

/// `--public-url`: an http(s) origin, perhaps with a path prefix.
fn public_url(raw: &Raw) -> Result<Option<String>, UsageError> {
    let Some(value) = raw.get("--public-url") else {
        return Ok(None);
    };
    let problem = "must be an http:// or https:// URL without query or fragment";
    let url = url::Url::parse(value).map_err(|_| bad("--public-url", problem))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(bad("--public-url", problem));
    }
    Ok(Some(url.as_str().trim_end_matches('/').to_string()))
}

/// Worker threads when `--threads` is not given: handlers spend much of their
/// time waiting on SQLite's fsync, so a few per core keep the cores busy.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).max(8)
}

impl Config {
    pub fn from_raw(raw: &Raw) -> Result<Config, UsageError> {
        let issuer = text(raw, "--issuer", "latchkey")?;
        let audience = match raw.get("--audience") {
            Some(_) => text(raw, "--audience", "")?,
            None => issuer.clone(),
        };
        let leeway = number(raw, "--leeway", 30u64)?;
        if leeway > 60 {
            return Err(bad("--leeway", "must be at most 60 seconds"));
        }
        let expired_token_status = number(raw, "--expired-token-status", 401u16)?;
        if !matches!(expired_token_status, 401 | 419) {
            return Err(bad("--expired-token-status", "must be 401 or 419"));
        }
        Ok(Config {
            listen: listen(raw)?,
            db: db_path(raw),
            issuer,
            audience,
            access_ttl: positive(raw, "--access-ttl", 3600)?,
            leeway,
            refresh_ttl: positive(raw, "--refresh-ttl", 2_592_000)?,
            max_private_token_ttl: positive(raw, "--max-private-token-ttl", 31_536_000)?,
            rotate_refresh_tokens: raw.has("--rotate-refresh-tokens"),
            refresh_reuse_interval: number(raw, "--refresh-reuse-interval", 10)?,
            key_rotation_interval: number(raw, "--key-rotation-interval", 0)?,
            expired_token_status,
            cleanup_interval: positive(raw, "--cleanup-interval", 3600)?,
            max_image_bytes: positive(raw, "--max-image-bytes", 2_097_152)?,
            max_image_pixels: positive(raw, "--max-image-pixels", 16_777_216)?,
            login_max_failures: positive(raw, "--login-max-failures", 5)?,
            login_window: positive(raw, "--login-window", 900)?,
            threads: positive(raw, "--threads", default_threads())?,
            idle_timeout: Duration::from_secs(positive(raw, "--idle-timeout", 30)?),
            request_timeout: Duration::from_secs(positive(raw, "--request-timeout", 10)?),
            max_connections: positive(raw, "--max-connections", 1024)?,
            trusted_proxies: raw
                .list("--trusted-proxy")
                .iter()
                .map(|v| {
                    v.parse()
                        .map_err(|_| bad("--trusted-proxy", &format!("'{v}' is not an IP address")))
                })
                .collect::<Result<_, _>>()?,
            public_url: public_url(raw)?,
            mail: mail_settings(raw)?,
            verify_ttl: positive(raw, "--verify-ttl", 259_200)?,
            reset_ttl: positive(raw, "--reset-ttl", 1800)?,
            require_verified_email: raw.has("--require-verified-email"),
        })
    }
}

fn bad(flag: &str, problem: &str) -> UsageError {
    UsageError(format!("{flag}: {problem}"))
}

fn text(raw: &Raw, flag: &str, default: &str) -> Result<String, UsageError> {
    let value = raw.get(flag).unwrap_or(default);
    if value.trim().is_empty() || value.chars().any(char::is_control) {
        return Err(bad(flag, "must be non-empty text"));
    }
    Ok(value.to_string())
}

fn number<T: FromStr>(raw: &Raw, flag: &str, default: T) -> Result<T, UsageError> {
    match raw.get(flag) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| bad(flag, &format!("'{v}' is not a valid number"))),
    }
}

fn positive<T: FromStr + PartialOrd + Default>(
    raw: &Raw,
    flag: &str,
    default: T,
) -> Result<T, UsageError> {
    let n = number(raw, flag, default)?;
    if n <= T::default() {
        return Err(bad(flag, "must be greater than zero"));
    }
    Ok(n)
}

fn listen(raw: &Raw) -> Result<SocketAddr, UsageError> {
    let value = raw.get("--listen").unwrap_or("127.0.0.1:8080");
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| bad("--listen", &format!("'{value}' is not a HOST:PORT address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(values: &[(&'static str, &str)]) -> Raw {
        Raw {
            values: values.iter().map(|(f, v)| (*f, v.to_string())).collect(),
            ..Raw::default()
        }
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_raw(&Raw::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.db, PathBuf::from("./latchkey.db"));
        assert_eq!(
            (c.issuer.as_str(), c.audience.as_str()),
            ("latchkey", "latchkey")
        );
        assert_eq!(
            (c.access_ttl, c.leeway, c.refresh_ttl),
            (3600, 30, 2_592_000)
        );
        assert_eq!(c.expired_token_status, 401);
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.max_connections, 1024);
        assert!(!c.rotate_refresh_tokens);
        assert_eq!((c.verify_ttl, c.reset_ttl), (259_200, 1800));
        assert!(!c.require_verified_email && c.public_url.is_none());
        assert!(matches!(
            c.mail.delivery,
            mail::settings::Delivery::Dir(ref d) if d == std::path::Path::new("./latchkey-mail")
        ));
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let c = Config::from_raw(&raw(&[("--public-url", "https://auth.example/id/")])).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://auth.example/id"));
    }

    #[test]
    fn audience_defaults_to_the_issuer() {
        let c = Config::from_raw(&raw(&[("--issuer", "https://auth.example")])).unwrap();
        assert_eq!(c.audience, "https://auth.example");
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (flag, value) in [
            ("--leeway", "61"),
            ("--access-ttl", "0"),
            ("--access-ttl", "soon"),
            ("--expired-token-status", "418"),
            ("--listen", "nowhere"),
            ("--threads", "-1"),
            ("--issuer", " "),
            ("--public-url", "ftp://x"),
            ("--public-url", "https://auth.example/?a=b"),
            ("--smtp-url", "smtp://mail.example?tls=none"),
            ("--mail-from", "nobody"),
            ("--reset-ttl", "0"),
        ] {
            let e = Config::from_raw(&raw(&[(flag, value)])).unwrap_err();
            assert!(e.0.starts_with(flag), "{flag}={value}: {e}");
        }
    }

    #[test]
    fn leeway_zero_is_allowed() {
        assert_eq!(
            Config::from_raw(&raw(&[("--leeway", "0")])).unwrap().leeway,
            0
        );
    }
}
