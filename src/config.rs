//! Every setting, declared once: the `settings!` table below is the only
//! place a flag's name, value, default, bounds and help text are written.
//! From it come `--help` (`cli::usage`), the `LATCHKEY_*` variable names
//! (`cli::env_name`), the flags `cli::parse` accepts, and the typed,
//! bounded `Config` the service runs with.
//!
//! A value is read by its `Flag` constant, never by a string, so a typo is a
//! compile error rather than a silent fall back to the default. Durations are
//! `Duration` (periods of threads) or checked `i64` seconds (added to Unix
//! times); each has an upper bound, so no lifetime can overflow a timestamp.

use crate::cli::{Flag, Raw, UsageError};
use crate::domain::ip_net::IpNet;
use crate::domain::tokens::MAX_LEEWAY;
use crate::mail;
use crate::mail::settings::Smtp;
use lettre::message::Mailbox;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Upper bound of token lifetimes: ten years, far from overflowing a Unix time.
const TEN_YEARS: i64 = 10 * 365 * 24 * 3600;
/// Upper bound of periods and timeouts.
const ONE_YEAR: i64 = 365 * 24 * 3600;
/// Upper bound of counts (threads, connections, bytes, pixels).
const MANY: i64 = 1 << 40;

/// Declares the settings: one constant per flag, the `FLAGS` table in help
/// order, and `Config` with one typed field per flag, read by `FromFlag`.
macro_rules! settings {
    ($($(#[$doc:meta])* $konst:ident $field:ident: $ty:ty = $flag:expr;)*) => {
        $(pub const $konst: Flag = $flag;)*

        /// Every flag, in the order `--help` lists them.
        pub const FLAGS: &[Flag] = &[$($konst),*];

        /// The validated settings of a service.
        #[derive(Debug, Clone)]
        pub struct Config {
            $($(#[$doc])* pub $field: $ty,)*
        }

        impl Config {
            pub fn from_raw(raw: &Raw) -> Result<Config, UsageError> {
                Ok(Config {
                    $($field: <$ty as FromFlag>::from_flag(&$konst, raw)?,)*
                })
            }
        }
    };
}

// THE TABLE. To add a setting, add one line here:
//     CONST field: Type = Flag::value("--flag", "VALUE", "help").default("…").range(min, max);
// (`Flag::switch` for an on/off flag, `Flag::list` for a repeatable one).
// The field then exists on `Config`, typed; `--help` and `LATCHKEY_FLAG`
// follow by themselves. `Type` is any `FromFlag` type: `i64` seconds for
// lifetimes, `Duration` for periods, `u32`/`u64`/`usize` counts, `String`,
// `Option<…>` when there is no default, `bool` for a switch. Numbers need a
// `.range` (a unit test checks), and the README's Configuration table a row.
#[rustfmt::skip]
settings! {
    LISTEN listen: SocketAddr = Flag::value("--listen", "ADDR", "address to listen on").default("127.0.0.1:8080");
    DB db: PathBuf = Flag::value("--db", "PATH", "SQLite database file").default("./latchkey.db").every_command();
    ISSUER issuer: String = Flag::value("--issuer", "STR", "`iss` of issued tokens").default("latchkey");
    /// `None`: the issuer (see `Config::audience`).
    AUDIENCE audience_flag: Option<String> = Flag::value("--audience", "STR", "`aud` of issued tokens").shown_default("the issuer");
    ACCESS_TTL access_ttl: i64 = Flag::value("--access-ttl", "SECS", "access token lifetime").default("3600").range(1, TEN_YEARS);
    LEEWAY leeway: u64 = Flag::value("--leeway", "SECS", "clock leeway for exp/iat, at most 60").default("30").range(0, MAX_LEEWAY as i64);
    REFRESH_TTL refresh_ttl: i64 = Flag::value("--refresh-ttl", "SECS", "refresh token lifetime").default("2592000").range(1, TEN_YEARS);
    MAX_PRIVATE_TOKEN_TTL max_private_token_ttl: i64 = Flag::value("--max-private-token-ttl", "SECS", "longest private token lifetime").default("31536000").range(1, TEN_YEARS);
    ROTATE_REFRESH_TOKENS rotate_refresh_tokens: bool = Flag::switch("--rotate-refresh-tokens", "each refresh returns a new refresh token");
    REFRESH_REUSE_INTERVAL refresh_reuse_interval: i64 = Flag::value("--refresh-reuse-interval", "SECS", "grace for retrying a rotated token").default("10").range(0, ONE_YEAR);
    KEY_ROTATION_INTERVAL key_rotation_interval: i64 = Flag::value("--key-rotation-interval", "SECS", "pre-publish a new signing key on this period").default("0").shown_default("0: by hand").range(0, TEN_YEARS);
    JWKS_MAX_AGE jwks_max_age: i64 = Flag::value("--jwks-max-age", "SECS", "how long verifiers may cache the JWKS; a new key\nsigns only once published this long").default("300").range(0, 7 * 24 * 3600);
    EXPIRED_TOKEN_STATUS expired_token_status: u16 = Flag::value("--expired-token-status", "N", "401 or 419 for an expired token").default("401").one_of(&[401, 419]);
    CLEANUP_INTERVAL cleanup_interval: Duration = Flag::value("--cleanup-interval", "SECS", "period of the expired-token sweep").default("3600").range(1, ONE_YEAR);
    MAX_IMAGE_BYTES max_image_bytes: usize = Flag::value("--max-image-bytes", "N", "largest profile picture").default("2097152").range(1, 1 << 30);
    MAX_IMAGE_PIXELS max_image_pixels: u64 = Flag::value("--max-image-pixels", "N", "largest decoded picture").default("16777216").range(1, MANY);
    LOGIN_MAX_FAILURES login_max_failures: u32 = Flag::value("--login-max-failures", "N", "failures per email within the window").default("5").range(1, 1 << 20);
    LOGIN_WINDOW login_window: i64 = Flag::value("--login-window", "SECS", "throttling window").default("900").range(1, ONE_YEAR);
    /// `None`: `default_threads()` (see `Config::threads`).
    THREADS threads_flag: Option<usize> = Flag::value("--threads", "N", "request worker threads").shown_default("4 per core, at least 8").range(1, 4096);
    IDLE_TIMEOUT idle_timeout: Duration = Flag::value("--idle-timeout", "SECS", "close idle keep-alive connections").default("30").range(1, ONE_YEAR);
    REQUEST_TIMEOUT request_timeout: Duration = Flag::value("--request-timeout", "SECS", "time allowed to send a request").default("10").range(1, ONE_YEAR);
    MAX_CONNECTIONS max_connections: usize = Flag::value("--max-connections", "N", "open connections at most").default("1024").range(1, 1 << 20);
    TRUSTED_PROXY trusted_proxies: Vec<IpNet> = Flag::list("--trusted-proxy", "ADDR[/PREFIX]", "a reverse proxy, or a network of them, whose\nX-Forwarded-For is believed for the client\naddress (repeatable; LATCHKEY_TRUSTED_PROXY\ntakes a comma list)");
    AUDIT_RETENTION audit_retention: i64 = Flag::value("--audit-retention", "SECS", "keep audit events this long (also taken by\n`cleanup`)").default("7776000").range(1, TEN_YEARS);
    /// `None`: `http://` + the bound address (see `App::links`).
    PUBLIC_URL public_url: Option<PublicUrl> = Flag::value("--public-url", "URL", "base of the links in mails").shown_default("http://LISTEN");
    /// `None`: mails are `.eml` files in `--mail-dir` (see `Config::mail`).
    SMTP_URL smtp_url: Option<Smtp> = Flag::value("--smtp-url", "URL", "relay: smtp://user:pass@host:587 (STARTTLS),\nsmtps://… (TLS), smtp://127.0.0.1:25?tls=none\n(loopback only)").shown_default("none: write .eml files");
    MAIL_FROM mail_from: Mailbox = Flag::value("--mail-from", "ADDR", "sender of mails").default(mail::settings::DEFAULT_FROM);
    /// `None`: `latchkey-mail/` beside the database.
    MAIL_DIR mail_dir: Option<PathBuf> = Flag::value("--mail-dir", "DIR", "where mails go without --smtp-url").shown_default("latchkey-mail/ beside the database");
    VERIFY_TTL verify_ttl: i64 = Flag::value("--verify-ttl", "SECS", "verification and email-change links").default("259200").range(1, TEN_YEARS);
    RESET_TTL reset_ttl: i64 = Flag::value("--reset-ttl", "SECS", "password reset links").default("1800").range(1, TEN_YEARS);
    REQUIRE_VERIFIED_EMAIL require_verified_email: bool = Flag::switch("--require-verified-email", "refuse login (403) until the address is verified");
}

impl Config {
    /// `aud` of issued tokens: `--audience`, else the issuer.
    pub fn audience(&self) -> &str {
        self.audience_flag.as_deref().unwrap_or(&self.issuer)
    }

    /// Request worker threads: `--threads`, else `default_threads()`.
    pub fn threads(&self) -> usize {
        self.threads_flag.unwrap_or_else(default_threads)
    }
}

impl Config {
    /// Where mails go: the relay, or `.eml` files.
    pub fn mail(&self) -> mail::settings::Settings {
        mail::settings::Settings::new(
            self.smtp_url.clone(),
            self.mail_from.clone(),
            self.mail_dir.clone(),
            &self.db,
        )
    }
}

/// The mail flags alone, for `latchkey mail-test`.
pub fn mail_settings(raw: &Raw) -> Result<mail::settings::Settings, UsageError> {
    Ok(mail::settings::Settings::new(
        Option::<Smtp>::from_flag(&SMTP_URL, raw)?,
        Mailbox::from_flag(&MAIL_FROM, raw)?,
        Option::<PathBuf>::from_flag(&MAIL_DIR, raw)?,
        &db_path(raw)?,
    ))
}

/// `--public-url`: an http(s) URL without query or fragment, kept without
/// its trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(pub String);

impl FromFlag for Option<PublicUrl> {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Option<PublicUrl>, UsageError> {
        let Some(value) = text_of(flag, raw) else {
            return Ok(None);
        };
        let problem = "must be an http:// or https:// URL without query or fragment";
        let url = url::Url::parse(value).map_err(|_| raw.bad(flag, problem))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(raw.bad(flag, problem));
        }
        Ok(Some(PublicUrl(
            url.as_str().trim_end_matches('/').to_string(),
        )))
    }
}

impl FromFlag for Option<Smtp> {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Option<Smtp>, UsageError> {
        match text_of(flag, raw) {
            None => Ok(None),
            Some(url) => mail::settings::parse_smtp_url(url)
                .map(Some)
                .map_err(|problem| raw.bad(flag, &problem)),
        }
    }
}

impl FromFlag for Mailbox {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Mailbox, UsageError> {
        let value = required(flag, raw)?;
        value
            .parse()
            .map_err(|_| raw.bad(flag, &format!("'{value}' is not a mail address")))
    }
}

impl FromFlag for Option<PathBuf> {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Option<PathBuf>, UsageError> {
        match text_of(flag, raw) {
            None => Ok(None),
            Some(_) => PathBuf::from_flag(flag, raw).map(Some),
        }
    }
}

/// The database path alone, for subcommands other than `serve`.
pub fn db_path(raw: &Raw) -> Result<PathBuf, UsageError> {
    PathBuf::from_flag(&DB, raw)
}

/// `--audit-retention` as given to `latchkey cleanup` (or its variable), if it is.
pub fn audit_retention(raw: &Raw) -> Result<Option<i64>, UsageError> {
    match raw.get(&AUDIT_RETENTION) {
        None => Ok(None),
        Some(_) => i64::from_flag(&AUDIT_RETENTION, raw).map(Some),
    }
}

/// The default `--audit-retention` (90 days), for `latchkey cleanup` on a
/// database no service has recorded its retention in.
pub fn default_audit_retention() -> i64 {
    AUDIT_RETENTION
        .default
        .and_then(|d| d.parse().ok())
        .unwrap_or(7_776_000)
}

/// `latchkey audit --since`: an RFC 3339 time, as Unix seconds.
pub fn since(value: Option<&str>) -> Result<Option<i64>, UsageError> {
    value
        .map(|v| {
            crate::clock::parse_rfc3339(v)
                .ok_or_else(|| UsageError(format!("--since: '{v}' is not an RFC 3339 time")))
        })
        .transpose()
}

/// Worker threads when `--threads` is not given: handlers spend much of their
/// time waiting on SQLite's fsync, so a few per core keep the cores busy.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).max(8)
}

/// A type a flag's text becomes, checked against the flag's bounds.
pub trait FromFlag: Sized {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Self, UsageError>;
}

/// The given text, else the flag's default; `None` when neither exists.
fn text_of<'a>(flag: &Flag, raw: &'a Raw) -> Option<&'a str> {
    raw.get(flag).or(flag.default)
}

fn required<'a>(flag: &Flag, raw: &'a Raw) -> Result<&'a str, UsageError> {
    text_of(flag, raw).ok_or_else(|| raw.bad(flag, "is required"))
}

fn whole_number(flag: &Flag, raw: &Raw, text: &str) -> Result<i64, UsageError> {
    let n: i64 = text
        .trim()
        .parse()
        .map_err(|_| raw.bad(flag, &format!("'{text}' is not a whole number")))?;
    flag.check(n)
        .map_err(|problem| raw.bad(flag, &problem.to_string()))?;
    Ok(n)
}

impl FromFlag for i64 {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<i64, UsageError> {
        whole_number(flag, raw, required(flag, raw)?)
    }
}

/// Counts: read as a checked `i64`, then narrowed (the bounds make it fit).
macro_rules! count {
    ($($ty:ty),*) => {$(
        impl FromFlag for $ty {
            fn from_flag(flag: &Flag, raw: &Raw) -> Result<$ty, UsageError> {
                let n = i64::from_flag(flag, raw)?;
                <$ty>::try_from(n).map_err(|_| raw.bad(flag, "is out of range"))
            }
        }
    )*};
}
count!(u16, u32, u64, usize);

impl FromFlag for Option<usize> {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Option<usize>, UsageError> {
        match text_of(flag, raw) {
            None => Ok(None),
            Some(_) => usize::from_flag(flag, raw).map(Some),
        }
    }
}

impl FromFlag for Duration {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Duration, UsageError> {
        u64::from_flag(flag, raw).map(Duration::from_secs)
    }
}

impl FromFlag for String {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<String, UsageError> {
        let value = required(flag, raw)?;
        if value.trim().is_empty() || value.chars().any(char::is_control) {
            return Err(raw.bad(flag, "must be non-empty text"));
        }
        Ok(value.to_string())
    }
}

impl FromFlag for Option<String> {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Option<String>, UsageError> {
        match text_of(flag, raw) {
            None => Ok(None),
            Some(_) => String::from_flag(flag, raw).map(Some),
        }
    }
}

impl FromFlag for bool {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<bool, UsageError> {
        Ok(raw.has(flag))
    }
}

impl FromFlag for PathBuf {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<PathBuf, UsageError> {
        let value = required(flag, raw)?;
        if value.is_empty() {
            return Err(raw.bad(flag, "must name a file"));
        }
        Ok(PathBuf::from(value))
    }
}

impl FromFlag for SocketAddr {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<SocketAddr, UsageError> {
        let value = required(flag, raw)?;
        value
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| raw.bad(flag, &format!("'{value}' is not a HOST:PORT address")))
    }
}

impl FromFlag for Vec<IpNet> {
    fn from_flag(flag: &Flag, raw: &Raw) -> Result<Vec<IpNet>, UsageError> {
        raw.list(flag)
            .iter()
            .map(|v| {
                v.parse().map_err(|_| {
                    raw.bad(
                        flag,
                        &format!("'{v}' is not an IP address or ADDR/PREFIX network"),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Bounds, Shape};

    fn raw(values: &[(&Flag, &str)]) -> Raw {
        let mut raw = Raw::default();
        for (flag, value) in values {
            raw.set(flag, value);
        }
        raw
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_raw(&Raw::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.db, PathBuf::from("./latchkey.db"));
        assert_eq!((c.issuer.as_str(), c.audience()), ("latchkey", "latchkey"));
        assert_eq!(
            (c.access_ttl, c.leeway, c.refresh_ttl),
            (3600, 30, 2_592_000)
        );
        assert_eq!(c.max_private_token_ttl, 31_536_000);
        assert_eq!((c.refresh_reuse_interval, c.key_rotation_interval), (10, 0));
        assert_eq!(c.jwks_max_age, 300);
        assert_eq!(c.expired_token_status, 401);
        assert_eq!(c.cleanup_interval, Duration::from_secs(3600));
        assert_eq!(
            (c.max_image_bytes, c.max_image_pixels),
            (2_097_152, 16_777_216)
        );
        assert_eq!((c.login_max_failures, c.login_window), (5, 900));
        assert_eq!(c.threads(), default_threads());
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.max_connections, 1024);
        assert!(!c.rotate_refresh_tokens);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.audit_retention, 7_776_000);
        assert_eq!(default_audit_retention(), 7_776_000);
        assert_eq!((c.verify_ttl, c.reset_ttl), (259_200, 1800));
        assert!(!c.require_verified_email && c.public_url.is_none());
        assert!(matches!(
            c.mail().delivery,
            mail::settings::Delivery::Dir(ref d) if d == std::path::Path::new("./latchkey-mail")
        ));
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let c = Config::from_raw(&raw(&[(&PUBLIC_URL, "https://auth.example/id/")])).unwrap();
        assert_eq!(
            c.public_url,
            Some(PublicUrl("https://auth.example/id".into()))
        );
    }

    #[test]
    fn audience_defaults_to_the_issuer() {
        let c = Config::from_raw(&raw(&[(&ISSUER, "https://auth.example")])).unwrap();
        assert_eq!(c.audience(), "https://auth.example");
        let c = Config::from_raw(&raw(&[(&AUDIENCE, "api")])).unwrap();
        assert_eq!(c.audience(), "api");
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (flag, value) in [
            (&LEEWAY, "61"),
            (&ACCESS_TTL, "0"),
            (&ACCESS_TTL, "soon"),
            (&REFRESH_TTL, "9223372036854775807"),
            (&REFRESH_TTL, "99999999999999999999"),
            (&EXPIRED_TOKEN_STATUS, "418"),
            (&LISTEN, "nowhere"),
            (&THREADS, "-1"),
            (&ISSUER, " "),
            (&JWKS_MAX_AGE, "-1"),
            (&TRUSTED_PROXY, "proxy"),
            (&PUBLIC_URL, "ftp://x"),
            (&PUBLIC_URL, "https://auth.example/?a=b"),
            (&SMTP_URL, "smtp://mail.example?tls=none"),
            (&MAIL_FROM, "nobody"),
            (&RESET_TTL, "0"),
            (&TRUSTED_PROXY, "10.0.0.0/33"),
            (&TRUSTED_PROXY, "::/129"),
            (&AUDIT_RETENTION, "0"),
        ] {
            let mut r = raw(&[]);
            if flag.shape == Shape::List {
                r.push_list(flag, vec![value.to_string()]);
            } else {
                r.set(flag, value);
            }
            let e = Config::from_raw(&r).unwrap_err();
            assert!(e.0.starts_with(flag.name), "{}={value}: {e}", flag.name);
        }
    }

    #[test]
    fn leeway_zero_is_allowed() {
        let c = Config::from_raw(&raw(&[(&LEEWAY, "0")])).unwrap();
        assert_eq!(c.leeway, 0);
    }

    /// The table's own rules: one name per flag, every number bounded, every
    /// default valid under its own bounds.
    #[test]
    fn the_table_is_consistent() {
        let mut names: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FLAGS.len(), "a flag is declared twice");
        for flag in FLAGS {
            assert!(flag.name.starts_with("--"), "{}", flag.name);
            if matches!(flag.value, "SECS" | "N") {
                assert!(
                    !matches!(flag.bounds, Bounds::Any),
                    "{} needs bounds",
                    flag.name
                );
            }
        }
        Config::from_raw(&Raw::default()).expect("the defaults pass their own checks");
    }
}
