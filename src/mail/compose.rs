//! What each mail says. Every mail has one shape (templates/mail/mail.txt
//! and mail.html): what happened, an optional link, when, from which address
//! and device, and what to do if it was not you. askama escapes everything
//! in the HTML part, so a name or user agent cannot inject markup.
//!
//! Only the three link mails carry a token (in `Action::url`); notices never do.

use askama::Template;

/// The product name in every subject and signature.
pub const PRODUCT: &str = "latchkey";

/// Where and when the change that causes a mail was made.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// RFC 3339, UTC.
    pub when: String,
    pub address: Option<String>,
    pub device: Option<String>,
}

impl Details {
    pub fn new(now: i64, address: Option<std::net::IpAddr>, device: Option<&str>) -> Details {
        Details {
            when: crate::clock::rfc3339(now),
            address: address.map(|a| a.to_string()),
            // A user agent is the client's text: one line, bounded.
            device: device.map(|d| {
                d.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .take(200)
                    .collect()
            }),
        }
    }
}

/// A link the reader is asked to open.
#[derive(Debug, Clone)]
pub struct Action {
    pub label: &'static str,
    pub url: String,
    pub valid_for: String,
}

/// A composed mail, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "mail/mail.txt")]
struct Text<'a> {
    product: &'a str,
    heading: &'a str,
    name: &'a str,
    lines: &'a [String],
    action: &'a Option<Action>,
    details: &'a Details,
    not_you: &'a str,
}

#[derive(Template)]
#[template(path = "mail/mail.html")]
struct Html<'a> {
    product: &'a str,
    heading: &'a str,
    name: &'a str,
    lines: &'a [String],
    action: &'a Option<Action>,
    details: &'a Details,
    not_you: &'a str,
}

struct Parts<'a> {
    heading: &'a str,
    name: &'a str,
    lines: Vec<String>,
    action: Option<Action>,
    details: &'a Details,
    not_you: &'a str,
}

fn compose(p: Parts<'_>) -> Composed {
    let text = Text {
        product: PRODUCT,
        heading: p.heading,
        name: p.name,
        lines: &p.lines,
        action: &p.action,
        details: p.details,
        not_you: p.not_you,
    };
    let html = Html {
        product: PRODUCT,
        heading: p.heading,
        name: p.name,
        lines: &p.lines,
        action: &p.action,
        details: p.details,
        not_you: p.not_you,
    };
    Composed {
        subject: format!("{PRODUCT}: {}", p.heading),
        // Rendering into a String fails only if a Display impl fails; ours don't.
        text: text.render().unwrap_or_default(),
        html: html.render().unwrap_or_default(),
    }
}

/// "30 minutes", "3 days".
pub fn duration(seconds: i64) -> String {
    let (n, unit) = match seconds {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

const REPORT: &str = "change your password at once, and end the sessions you do not recognise.";

pub fn verify(name: &str, url: String, valid_for: i64, details: &Details) -> Composed {
    compose(Parts {
        heading: "confirm your email address",
        name,
        lines: vec![format!(
            "An account was created with this address. Confirm that the address is yours, so it can be used to recover the account."
        )],
        action: Some(Action {
            label: "Confirm this address",
            url,
            valid_for: duration(valid_for),
        }),
        details,
        not_you: "someone may have typed your address by mistake; ignore this mail and the address stays unconfirmed.",
    })
}

pub fn reset(name: &str, url: String, valid_for: i64, details: &Details) -> Composed {
    compose(Parts {
        heading: "reset your password",
        name,
        lines: vec![
            "Someone asked to reset the password of the account with this address.".into(),
            "Choosing a new password ends every session of the account.".into(),
        ],
        action: Some(Action {
            label: "Choose a new password",
            url,
            valid_for: duration(valid_for),
        }),
        details,
        not_you: "ignore this mail; your password stays as it is. A newer request replaces this link.",
    })
}

pub fn confirm_change(
    name: &str,
    new_address: &str,
    url: String,
    valid_for: i64,
    details: &Details,
) -> Composed {
    compose(Parts {
        heading: "confirm your new email address",
        name,
        lines: vec![format!(
            "You asked to change your account's address to {new_address}. The change happens when you confirm it; until then your old address stays in use."
        )],
        action: Some(Action {
            label: "Confirm the new address",
            url,
            valid_for: duration(valid_for),
        }),
        details,
        not_you: "ignore this mail; nothing changes.",
    })
}

pub fn password_changed(name: &str, reset: bool, details: &Details) -> Composed {
    let how = if reset {
        "Your password was reset with a link mailed to this address."
    } else {
        "Your password was changed."
    };
    compose(Parts {
        heading: "your password was changed",
        name,
        lines: vec![
            how.to_string(),
            "Every session of your account has ended.".into(),
        ],
        action: None,
        details,
        not_you: "reset your password with the \"forgot password\" link at once; someone else knows it.",
    })
}

pub fn email_changed(name: &str, old: &str, new: &str, details: &Details) -> Composed {
    compose(Parts {
        heading: "your email address was changed",
        name,
        lines: vec![format!(
            "Your account's address changed from {old} to {new}. Mail about the account now goes to the new address only."
        )],
        action: None,
        details,
        not_you: "someone who knows your password changed your address; contact the operator of this service at once.",
    })
}

pub fn token_created(name: &str, token_name: &str, expires: &str, details: &Details) -> Composed {
    compose(Parts {
        heading: "a private token was created",
        name,
        lines: vec![format!(
            "A private token named \"{token_name}\" was created for your account. It works until {expires} unless revoked."
        )],
        action: None,
        details,
        not_you: REPORT,
    })
}

pub fn second_factor_changed(name: &str, on: bool, details: &Details) -> Composed {
    let (heading, line) = if on {
        (
            "a second factor was turned on",
            "Logging in to your account now takes a code from your authenticator app (or a recovery code) after the password.",
        )
    } else {
        (
            "your second factor was turned off",
            "Logging in to your account now takes only the password; the recovery codes no longer work.",
        )
    };
    compose(Parts {
        heading,
        name,
        lines: vec![line.to_string()],
        action: None,
        details,
        not_you: REPORT,
    })
}

pub fn test(details: &Details) -> Composed {
    compose(Parts {
        heading: "test mail",
        name: "operator",
        lines: vec!["This is a test mail sent by `latchkey mail-test`. Delivery works.".into()],
        action: None,
        details,
        not_you: "nothing to do; an operator of this service sent it.",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> Details {
        Details::new(
            1_796_236_500,
            Some("203.0.113.9".parse().unwrap()),
            Some("curl/8.0\r\nX-Evil: 1"),
        )
    }

    #[test]
    fn a_link_mail_has_the_link_the_facts_and_advice() {
        let m = reset(
            "Ada",
            "http://127.0.0.1:8080/account/reset-password?token=abc".into(),
            1800,
            &details(),
        );
        assert_eq!(m.subject, "latchkey: reset your password");
        for part in [&m.text, &m.html] {
            for needle in [
                "Hello Ada",
                "/account/reset-password?token=abc",
                "30 minutes",
                "2026-12-02T",
                "203.0.113.9",
                "curl/8.0  X-Evil: 1",
                "If this wasn",
                "latchkey",
            ] {
                assert!(part.contains(needle), "{needle:?} in\n{part}");
            }
        }
    }

    #[test]
    fn the_html_part_escapes_what_the_client_sent() {
        let d = Details::new(0, None, Some("<script>alert(1)</script>"));
        let m = token_created("<b>Ada</b>", "ci & <deploy>", "2027-01-01T00:00:00Z", &d);
        assert!(
            !m.html.contains("<script>") && !m.html.contains("<b>Ada"),
            "{}",
            m.html
        );
        assert!(m.html.contains("&#60;script&#62;"), "{}", m.html);
        assert!(m.text.contains("ci & <deploy>"), "{}", m.text);
    }

    #[test]
    fn notices_carry_no_link() {
        let d = details();
        for m in [
            password_changed("Ada", true, &d),
            email_changed("Ada", "a@x.io", "b@x.io", &d),
            token_created("Ada", "ci", "2027-01-01T00:00:00Z", &d),
        ] {
            assert!(
                !m.text.contains("token=") && !m.html.contains("href"),
                "{m:?}"
            );
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(1800), "30 minutes");
        assert_eq!(duration(259_200), "3 days");
        assert_eq!(duration(3600), "1 hour");
        assert_eq!(duration(90), "90 seconds");
    }
}
