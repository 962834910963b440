//! Handing one mail to its destination: an SMTP relay (lettre's blocking
//! client on rustls) or an `.eml` file in the mail directory. Only the
//! sender thread and `latchkey mail-test` call this; no request waits on it.

use super::settings::{Delivery, Security, Settings, Smtp};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One mail, as queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_at: i64,
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A 5xx answer or an address that can never work: retrying is pointless.
    pub permanent: bool,
    /// What went wrong, without credentials or the mail's content.
    pub reason: String,
}

/// How long one SMTP conversation may stall before it counts as a failure,
/// so a hung relay delays neither the queue nor a shutdown for long.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers `mail`; on success, the relay's answer or the file written.
pub fn deliver(settings: &Settings, mail: &Mail) -> Result<String, Failure> {
    let message = build(&settings.from, mail)?;
    match &settings.delivery {
        Delivery::Dir(dir) => write_eml(dir, mail, &message.formatted()),
        Delivery::Smtp(smtp) => send_smtp(smtp, &message),
    }
}

/// The RFC 5322 message: text and HTML alternatives, Message-ID from the
/// outbox id (so a retried mail keeps its id), Date from when it was queued.
fn build(from: &Mailbox, mail: &Mail) -> Result<Message, Failure> {
    let permanent = |reason: String| Failure {
        permanent: true,
        reason,
    };
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| permanent(format!("the recipient is not a mail address ({e})")))?;
    let date = UNIX_EPOCH + Duration::from_secs(mail.created_at.max(0) as u64);
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .date(date)
        .message_id(Some(format!("<{}@{}>", mail.id, from.email.domain())))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(body(&mail.text)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(body(&mail.html)),
                ),
        )
        .map_err(|e| permanent(format!("building the message: {e}")))
}

/// A part's body, as 7bit text when it is ASCII with lines of at most 998
/// octets (RFC 5322 §2.1.1), so a link stays one piece for someone reading
/// the raw `.eml`; otherwise lettre's choice (quoted-printable or base64).
/// (lettre itself turns every line of 76 or more into quoted-printable.)
fn body(content: &str) -> Body {
    let crlf = content.replace("\r\n", "\n").replace('\n', "\r\n");
    let seven_bit = crlf.is_ascii()
        && !crlf.contains('\0')
        && crlf
            .split("\r\n")
            .all(|line| line.len() <= 998 && !line.contains('\r'));
    if seven_bit {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(content.to_string())
    }
}

fn send_smtp(smtp: &Smtp, message: &Message) -> Result<String, Failure> {
    let transport = transport(smtp).map_err(|reason| Failure {
        permanent: false,
        reason,
    })?;
    match transport.send(message) {
        Ok(answer) => {
            let text: Vec<&str> = answer.message().collect();
            Ok(format!("{} {}", answer.code(), text.join(" ")))
        }
        Err(e) => Err(Failure {
            permanent: e.is_permanent(),
            reason: format!("{}: {e}", smtp.describe()),
        }),
    }
}

fn transport(smtp: &Smtp) -> Result<SmtpTransport, String> {
    let tls =
        || TlsParameters::new(smtp.host.clone()).map_err(|e| format!("TLS for {}: {e}", smtp.host));
    let tls = match smtp.security {
        Security::Implicit => Tls::Wrapper(tls()?),
        Security::StartTls => Tls::Required(tls()?),
        Security::None => Tls::None,
    };
    let mut builder = SmtpTransport::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some((user, password)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// Writes the message as `<UTC time of writing>-<id>.eml`, readable by the owner only
/// (a link in it is as good as a password reset). The file appears whole:
/// it is written under a temporary name and renamed.
fn write_eml(dir: &std::path::Path, mail: &Mail, bytes: &[u8]) -> Result<String, Failure> {
    let failed = |what: &str, e: std::io::Error| Failure {
        permanent: false,
        reason: format!("{what} {}: {e}", dir.display()),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failed("creating", e))?;
    let name = format!("{}-{}.eml", stamp(SystemTime::now()), mail.id);
    let path: PathBuf = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| failed("writing into", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| failed("writing into", e))?;
    fs::rename(&partial, &path).map_err(|e| failed("writing into", e))?;
    Ok(format!("written to {}", path.display()))
}

/// `20261202T181500.000123456Z`, the time of writing: names sort in the
/// order mails were delivered, so the newest mail is the last name.
fn stamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = crate::clock::rfc3339(since.as_secs() as i64).replace(['-', ':'], "");
    format!(
        "{}.{:09}Z",
        seconds.trim_end_matches('Z'),
        since.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::settings;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn from() -> Mailbox {
        settings::DEFAULT_FROM.parse().unwrap()
    }

    fn mail() -> Mail {
        Mail {
            id: "6f1c2b1e-0000-4000-8000-000000000001".into(),
            to: "Ada <ada@example.com>".into(),
            subject: "Confirm your address".into(),
            text: format!(
                "Hello Ada\n\nhttp://127.0.0.1:8080/account/reset-password?token={}\n",
                "A".repeat(43)
            ),
            html: "<p>Hello Ada</p>".into(),
            created_at: 1_796_236_500,
        }
    }

    #[test]
    fn without_smtp_a_mail_is_an_owner_only_eml_file() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("latchkey-mail");
        let s = settings::Settings::new(None, from(), Some(maildir.clone()), Path::new("x"));
        let answer = deliver(&s, &mail()).unwrap();
        let files: Vec<_> = fs::read_dir(&maildir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let path = files[0].path();
        assert!(answer.contains(path.to_str().unwrap()), "{answer}");
        assert!(path.to_str().unwrap().ends_with(".eml"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        for header in [
            "From: latchkey <latchkey@localhost>\r\n",
            "To: Ada <ada@example.com>\r\n",
            "Subject: Confirm your address\r\n",
            "Message-ID: <6f1c2b1e-0000-4000-8000-000000000001@localhost>\r\n",
            "Content-Type: multipart/alternative;",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
        ] {
            assert!(text.contains(header), "{header:?} in\n{text}");
        }
        // The long link line stays whole (no quoted-printable soft breaks).
        let link = format!("/account/reset-password?token={}\r\n", "A".repeat(43));
        assert!(text.contains(&link), "{text}");
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings::Settings::new(None, from(), Some(dir.path().into()), Path::new("x"));
        let mut m = mail();
        m.to = "nobody".into();
        assert!(deliver(&s, &m).unwrap_err().permanent);
    }
}
