//! How mail leaves latchkey: `--smtp-url`, `--mail-from`, `--mail-dir`
//! turned into a checked `Settings`. The SMTP password lives only in
//! `Smtp::credentials`, whose `Debug` and `Display` never show it.

use lettre::message::Mailbox;
use percent_encoding::percent_decode_str;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where mails go.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// One `.eml` file per mail in this directory (no `--smtp-url`).
    Dir(PathBuf),
    Smtp(Smtp),
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte (RFC 8314).
    Implicit,
    /// `smtp://`: STARTTLS, required; a server that does not offer it is refused.
    StartTls,
    /// `smtp://…?tls=none`: plain text, only to a relay on loopback.
    None,
}

#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User and password from the URL, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl Smtp {
    /// The relay without its credentials, for logs and messages.
    pub fn describe(&self) -> String {
        let scheme = match self.security {
            Security::Implicit => "smtps",
            Security::StartTls | Security::None => "smtp",
        };
        let tls = if self.security == Security::None {
            "?tls=none"
        } else {
            ""
        };
        format!("{scheme}://{}:{}{tls}", self.host, self.port)
    }
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.credentials.as_ref().map(|_| "[redacted]");
        write!(f, "Smtp({}, credentials: {user:?})", self.describe())
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub delivery: Delivery,
    pub from: Mailbox,
}

/// The sender when `--mail-from` is not given.
pub const DEFAULT_FROM: &str = "latchkey <latchkey@localhost>";

/// The mail directory when `--mail-dir` is not given: beside the database.
pub fn default_dir(db: &Path) -> PathBuf {
    let parent = db.parent().filter(|p| !p.as_os_str().is_empty());
    parent.unwrap_or(Path::new(".")).join("latchkey-mail")
}

impl Settings {
    /// `--smtp-url` if given, else `.eml` files in `--mail-dir` (by default
    /// beside the database `db`).
    pub fn new(smtp: Option<Smtp>, from: Mailbox, dir: Option<PathBuf>, db: &Path) -> Settings {
        let delivery = match smtp {
            Some(smtp) => Delivery::Smtp(smtp),
            None => Delivery::Dir(dir.unwrap_or_else(|| default_dir(db))),
        };
        Settings { delivery, from }
    }
}

/// `smtp://[user:pass@]host[:587][?tls=none]` or `smtps://[user:pass@]host[:465]`.
/// The message never repeats the URL, which may hold a password.
pub fn parse_smtp_url(text: &str) -> Result<Smtp, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("names no host".into()),
    };
    if !(url.path().is_empty() || url.path() == "/") || url.fragment().is_some() {
        return Err("must be scheme://[user:password@]host[:port][?tls=none]".into());
    }
    let mut tls_none = false;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "none") => tls_none = true,
            ("tls", _) => return Err("the only tls option is tls=none".into()),
            (other, _) => return Err(format!("unknown option '{other}'")),
        }
    }
    let security = match (url.scheme(), tls_none) {
        ("smtps", false) => Security::Implicit,
        ("smtps", true) => return Err("tls=none contradicts smtps://".into()),
        ("smtp", false) => Security::StartTls,
        ("smtp", true) if is_loopback(&host) => Security::None,
        ("smtp", true) => {
            return Err(format!(
                "tls=none is allowed only for a relay on loopback, not '{host}'"
            ));
        }
        (other, _) => return Err(format!("scheme '{other}' is neither smtp nor smtps")),
    };
    let default_port = match security {
        Security::Implicit => 465,
        Security::StartTls => 587,
        Security::None => 25,
    };
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "the credentials are not UTF-8 once decoded".to_string())
    };
    let credentials = match (url.username(), url.password()) {
        ("", None) => None,
        (user, Some(password)) => Some((decode(user)?, decode(password)?)),
        (_, None) => return Err("a user needs a password (user:password@host)".into()),
    };
    Ok(Smtp {
        host,
        port: url.port().unwrap_or(default_port),
        security,
        credentials,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(url: &str) -> Result<Smtp, String> {
        parse_smtp_url(url)
    }

    fn from() -> Mailbox {
        DEFAULT_FROM.parse().unwrap()
    }

    #[test]
    fn without_a_url_mail_goes_beside_the_database() {
        let s = Settings::new(None, from(), None, Path::new("/var/lib/latchkey/l.db"));
        match s.delivery {
            Delivery::Dir(d) => assert_eq!(d, Path::new("/var/lib/latchkey/latchkey-mail")),
            other => panic!("{other:?}"),
        }
        match Settings::new(None, from(), None, Path::new("l.db")).delivery {
            Delivery::Dir(d) => assert_eq!(d, Path::new("./latchkey-mail")),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.from.email.to_string(), "latchkey@localhost");
    }

    #[test]
    fn smtp_urls_pick_security_and_port() {
        let s = smtp("smtp://ada:p%40ss%3Aw@mail.example:2525").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("mail.example", 2525, Security::StartTls)
        );
        assert_eq!(
            s.credentials,
            Some(("ada".to_string(), "p@ss:w".to_string()))
        );
        let s = smtp("smtps://mail.example").unwrap();
        assert_eq!((s.port, s.security), (465, Security::Implicit));
        let s = smtp("smtp://mail.example").unwrap();
        assert_eq!((s.port, s.credentials), (587, None));
        for loopback in ["127.0.0.1", "localhost", "[::1]", "127.3.0.1:2525"] {
            let s = smtp(&format!("smtp://{loopback}?tls=none")).unwrap();
            assert_eq!(s.security, Security::None, "{loopback}");
        }
    }

    #[test]
    fn unsafe_or_malformed_urls_are_refused_without_echoing_secrets() {
        for bad in [
            "smtp://mail.example?tls=none",
            "smtp://10.0.0.1:25?tls=none",
            "smtps://127.0.0.1?tls=none",
            "smtp://127.0.0.1?tls=maybe",
            "http://user:hunter22@mail.example",
            "smtp://user@mail.example",
            "smtp://user:hunter22@mail.example/path",
            "not a url",
        ] {
            let e = smtp(bad).unwrap_err();
            assert!(!e.contains("hunter22"), "{bad}: {e}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let s = smtp("smtp://ada:hunter22@mail.example").unwrap();
        let shown = format!("{s:?} {}", s.describe());
        assert!(
            !shown.contains("hunter22") && !shown.contains("ada"),
            "{shown}"
        );
    }
}
