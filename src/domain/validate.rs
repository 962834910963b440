//! Pure field rules for sign-up and profile updates: email, new password, names.
//!
//! Each rule returns the cleaned value or a short `&'static str` sentence for the
//! `fields` map of a 400 `validation_error`; a message never echoes the input.
//!
//! `common_passwords.txt` is Django's `common-passwords.txt.gz` (Django 5.2.19,
//! BSD-3-Clause; compiled by Royce Williams from public breach corpora), reduced
//! to its entries of 8+ characters, lowercased and deduplicated, most common
//! first: 8,354 entries (ASVS 6.2.4 asks for the top 3,000).

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::error::FieldErrors;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Collects the problems of a request's fields: the one way requests are
/// validated. Each rule runs on its field, so every failing field is named.
#[derive(Debug, Default)]
pub struct Fields {
    problems: FieldErrors,
}

impl Fields {
    /// `rule` on a field that must be present.
    pub fn required<T>(
        &mut self,
        field: &'static str,
        value: Option<&str>,
        rule: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Option<T> {
        if value.is_none() {
            self.problem(field, "is required");
        }
        self.optional(field, value, rule)
    }

    /// `rule` on a field that may be absent (`None` then, with no problem).
    pub fn optional<T>(
        &mut self,
        field: &'static str,
        value: Option<&str>,
        rule: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Option<T> {
        self.check(field, rule(value?))
    }

    /// The outcome of a rule already run on `field`.
    pub fn check<T>(&mut self, field: &'static str, outcome: Result<T, &'static str>) -> Option<T> {
        outcome.map_err(|p| self.problem(field, p)).ok()
    }

    /// Records a problem (the first one per field stands).
    pub fn problem(&mut self, field: &'static str, problem: &'static str) {
        self.problems.entry(field).or_insert(problem);
    }

    /// `value` when no field failed; otherwise every problem.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, FieldErrors> {
        match value {
            Some(value) if self.problems.is_empty() => Ok(value),
            // A missing value always comes with its problem recorded.
            _ => Err(self.problems),
        }
    }
}

/// Any string, as given (a field that only has to be present).
pub fn present(value: &str) -> Result<String, &'static str> {
    Ok(value.to_owned())
}

/// An email address that passed [`email`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Trimmed, otherwise as typed: what the user sees and mail is sent to.
    pub address: String,
    /// Uniqueness key: `A@X.io` and `a@x.io` are one account (see [`email`]).
    pub key: String,
}

/// RFC 5321 §4.5.3.1: a path holds at most 256 octets including the angle
/// brackets, so an address at most 254; the contract counts characters.
const EMAIL_MAX: usize = 254;
const LOCAL_PART_MAX: usize = 64;
const DOMAIN_LABEL_MAX: usize = 63;
const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_BYTES: usize = 1024;

const INVALID_EMAIL: &str = "must be a valid email address";

/// Checks an email address and derives its uniqueness key.
///
/// Accepted: one `@`; a dot-atom local part (RFC 5322 `atext` plus letters and
/// digits of any script, dots not leading, trailing or doubled), 1–64
/// characters; a domain of two or more dot-separated labels of letters, digits
/// (any script) and inner hyphens, with a top-level label that is not all
/// digits. Quoted local parts and IP literals are refused: nobody signs up with
/// them, and they admit spaces and `@` that other systems mishandle.
///
/// The key is [`email_key`]: case, compatibility and canonically equivalent
/// spellings name the same account.
pub fn email(raw: &str) -> Result<Email, &'static str> {
    let address = raw.trim();
    if address.chars().count() > EMAIL_MAX {
        return Err("must be at most 254 characters");
    }
    let (local, domain) = address.split_once('@').ok_or(INVALID_EMAIL)?;
    if !valid_local_part(local) || !valid_domain(domain) {
        return Err(INVALID_EMAIL);
    }
    Ok(Email {
        key: email_key(address),
        address: address.to_owned(),
    })
}

/// The uniqueness key of a (trimmed) address: NFKC, Unicode default case
/// folding, then NFKC again (the folding can undo a normalisation). So
/// `A@X.io` and `a@x.io`, a full-width `ａ` and `a`, `ß` and `ss`, a
/// precomposed `é` and `e` + U+0301 each name one account.
pub fn email_key(address: &str) -> String {
    let compatible: String = address.nfkc().collect();
    caseless::default_case_fold_str(&compatible)
        .nfkc()
        .collect()
}

fn valid_local_part(local: &str) -> bool {
    let len = local.chars().count();
    (1..=LOCAL_PART_MAX).contains(&len)
        && local.split('.').all(|atom| !atom.is_empty())
        && local.chars().all(|c| {
            c == '.'
                || c.is_ascii_alphanumeric()
                || "!#$%&'*+-/=?^_`{|}~".contains(c)
                || (!c.is_ascii() && is_letter_or_digit(c))
        })
}

fn valid_domain(domain: &str) -> bool {
    let top = domain.rsplit('.').next().unwrap_or_default();
    domain.contains('.')
        && domain.split('.').all(valid_label)
        && !top.chars().all(|c| c.is_ascii_digit())
}

fn valid_label(label: &str) -> bool {
    let len = label.chars().count();
    (1..=DOMAIN_LABEL_MAX).contains(&len)
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| {
            c == '-' || c.is_ascii_alphanumeric() || (!c.is_ascii() && is_letter_or_digit(c))
        })
}

/// Non-ASCII characters allowed in an address: letters and digits of any
/// script with their combining marks. Invisible format characters (bidi
/// overrides, zero-width spaces) are refused, so one address can't be made to
/// look like another in an admin listing.
fn is_letter_or_digit(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// Checks a new password. It is used exactly as received: never trimmed,
/// normalised or case folded (only the common-list lookup ignores case).
pub fn new_password(password: &str) -> Result<(), &'static str> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err("must be at most 1024 bytes");
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err("must be at least 8 characters");
    }
    if is_common(password) {
        return Err("is too common");
    }
    Ok(())
}

/// True if the password, lowercased, is on the built-in common list.
pub fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

/// Built on first use; about a millisecond (see the `timing` test), so it
/// costs neither start-up nor a noticeable first sign-up.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(common_passwords);

fn common_passwords() -> HashSet<&'static str> {
    include_str!("common_passwords.txt").lines().collect()
}

/// `first_name` and `last_name`: 2–50 characters after trimming.
pub fn name_part(raw: &str) -> Result<String, &'static str> {
    name(raw, 50, "must be 2 to 50 characters")
}

/// `name`: 2–100 characters after trimming.
pub fn full_name(raw: &str) -> Result<String, &'static str> {
    name(raw, 100, "must be 2 to 100 characters")
}

/// The `name` that first and last name make when `name` is not given.
pub fn full_name_of(first: &str, last: &str) -> Result<String, &'static str> {
    full_name(&format!("{first} {last}"))
}

/// Trims, converts to NFC (so a decomposed `é` is stored and counted as one
/// character), then checks the length and the alphabet: letters of any
/// script with their combining marks (Devanagari and Tamil viramas, for
/// instance, are marks, not letters), spaces, periods, hyphens and the ASCII
/// and typographic apostrophes. At least one letter is required.
fn name(raw: &str, max: usize, length_message: &'static str) -> Result<String, &'static str> {
    let name: String = raw.trim().nfc().collect();
    if !(2..=max).contains(&name.chars().count()) {
        return Err(length_message);
    }
    let mut previous_is_letter = false;
    for c in name.chars() {
        let allowed = c.is_alphabetic()
            || matches!(c, ' ' | '.' | '-' | '\'' | '\u{2019}')
            // A mark or a joiner (ZWNJ/ZWJ, needed in Persian and Indic
            // spellings) only makes sense attached to a letter.
            || (previous_is_letter && (is_combining_mark(c) || matches!(c, '\u{200C}' | '\u{200D}')));
        if !allowed {
            return Err("may contain only letters, spaces, periods, hyphens and apostrophes");
        }
        previous_is_letter = c.is_alphabetic() || is_combining_mark(c);
    }
    if !name.chars().any(char::is_alphabetic) {
        return Err("must contain a letter");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_accepts_ordinary_and_international_addresses() {
        for ok in [
            "a@x.io",
            "first.last+tag@example.co.uk",
            "o'brien@example.com",
            "user_name-1@sub-domain.example.org",
            "josé@correo.es",
            "用户@例子.广告",
            "a@b.c",
        ] {
            assert!(email(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn email_is_trimmed_and_keyed_without_case() {
        let e = email("  Ann.Lee@Example.IO \n").unwrap();
        assert_eq!(e.address, "Ann.Lee@Example.IO");
        assert_eq!(e.key, "ann.lee@example.io");
        assert_eq!(email("A@X.io").unwrap().key, email("a@x.io").unwrap().key);
        assert_eq!(
            email("JOSÉ@x.io").unwrap().key,
            email("jose\u{301}@x.io").unwrap().key
        );
    }

    #[test]
    fn look_alike_emails_share_a_key() {
        let full_width = email("ａｌｉｃｅ@example.com").unwrap();
        assert_eq!(full_width.address, "ａｌｉｃｅ@example.com");
        assert_eq!(full_width.key, "alice@example.com");
        assert_eq!(
            email("ＡＬＩＣＥ@ＥＸＡＭＰＬＥ.com").unwrap().key,
            "alice@example.com"
        );
        assert_eq!(
            email("Straße@x.io").unwrap().key,
            email("STRASSE@x.io").unwrap().key
        );
        assert_eq!(email("ﬁnn@x.io").unwrap().key, "finn@x.io");
        assert_ne!(
            email("bob@x.io").unwrap().key,
            email("b0b@x.io").unwrap().key
        );
    }

    #[test]
    fn email_refuses_bad_syntax() {
        for bad in [
            "",
            "   ",
            "plain",
            "a b@x.io",
            "ab@x .io",
            "a@b@x.io",
            "@x.io",
            "a@",
            "a@localhost",
            "a@x..io",
            "a@.x.io",
            "a@x.io.",
            "a@-x.io",
            "a@x-.io",
            "a@x_y.io",
            ".a@x.io",
            "a.@x.io",
            "a..b@x.io",
            "\"a b\"@x.io",
            "a@[127.0.0.1]",
            "a@127.0.0.1",
            "<script>@x.io",
            "a\u{0}b@x.io",
            "a\tb@x.io",
            "a\u{202E}b@x.io",
            "a\u{200B}b@x.io",
        ] {
            assert_eq!(
                email(bad),
                Err("must be a valid email address"),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn email_length_limits() {
        let local = "a".repeat(64);
        assert!(email(&format!("{local}@x.io")).is_ok());
        assert!(email(&format!("{local}a@x.io")).is_err());
        let domain = format!(
            "{}.{}.{}.io",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(58)
        );
        let at_limit = format!("{local}@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert!(email(&at_limit).is_ok());
        assert_eq!(
            email(&format!("{local}@e{domain}")),
            Err("must be at most 254 characters")
        );
        assert!(email(&format!("a@{}.io", "b".repeat(64))).is_err());
    }

    #[test]
    fn password_length_counts_characters_and_bytes() {
        assert_eq!(new_password("éééééééé"), Ok(()));
        assert_eq!(new_password("山田山田山田山田"), Ok(()));
        assert_eq!(
            new_password("ééééééé"),
            Err("must be at least 8 characters")
        );
        assert_eq!(new_password(""), Err("must be at least 8 characters"));
        let max = "x7".repeat(512);
        assert_eq!(new_password(&max), Ok(()));
        assert_eq!(
            new_password(&format!("{max}y")),
            Err("must be at most 1024 bytes")
        );
        // 342 three-byte characters: few characters, too many bytes.
        assert_eq!(
            new_password(&"山".repeat(342)),
            Err("must be at most 1024 bytes")
        );
    }

    #[test]
    fn password_refuses_common_ones_in_any_case() {
        for common in [
            "password123",
            "PASSWORD123",
            "Password123",
            "iloveyou",
            "1q2w3e4r5t",
        ] {
            assert_eq!(new_password(common), Err("is too common"), "{common}");
        }
        assert_eq!(new_password("correct horse battery staple"), Ok(()));
    }

    #[test]
    fn password_is_never_trimmed() {
        // " password " is 10 characters and not on the list as typed.
        assert_eq!(new_password(" password "), Ok(()));
        assert_eq!(new_password("  abc12  "), Ok(()));
        assert_eq!(new_password("   abc   "), Ok(()));
        assert_eq!(
            new_password(" abc12 "),
            Err("must be at least 8 characters")
        );
    }

    #[test]
    fn common_list_is_large_lowercase_and_long_enough() {
        let list = include_str!("common_passwords.txt");
        assert!(list.lines().count() >= 3000);
        assert_eq!(list.lines().count(), common_passwords().len(), "duplicates");
        for line in list.lines() {
            assert!(line.chars().count() >= 8, "{line} is short");
            assert_eq!(line, line.to_lowercase());
        }
    }

    #[test]
    fn names_of_any_script() {
        for ok in [
            "José",
            "Jose\u{301}",
            "Łukasz",
            "山田",
            "O'Brien",
            "O\u{2019}Brien",
            "Anne-Marie",
            "St. John",
            "Ng",
            "Siobhán",
            "Müller-Lüdenscheidt",
            "सिद्धार्थ",
            "தமிழ்",
            "محمد",
            "김민준",
            "Ἀθηνᾶ",
            "שָׁלוֹם",
            "می\u{200C}نا",
        ] {
            assert!(name_part(ok).is_ok(), "{ok} should be accepted");
            assert!(full_name(ok).is_ok(), "{ok} should be accepted");
        }
        assert_eq!(name_part("  José  ").unwrap(), "José");
        assert_eq!(name_part("Jose\u{301}").unwrap(), "José");
        assert_eq!(full_name("Mary Jane O'Neil").unwrap(), "Mary Jane O'Neil");
    }

    #[test]
    fn names_refuse_other_characters() {
        for bad in [
            "R2D2",
            "Bob1",
            "Ann 😀",
            "<script>",
            "a<b",
            "Ann_Lee",
            "Ann\tLee",
            "Ann\nLee",
            "Ann@Lee",
            "\u{301}Ann",
            "Ann \u{301}",
            "A\u{202E}nn",
            "①②",
        ] {
            assert_eq!(
                name_part(bad),
                Err("may contain only letters, spaces, periods, hyphens and apostrophes"),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(name_part("--"), Err("must contain a letter"));
        assert_eq!(name_part(". '"), Err("must contain a letter"));
    }

    #[test]
    fn name_lengths() {
        assert_eq!(name_part("A"), Err("must be 2 to 50 characters"));
        assert_eq!(name_part(" A "), Err("must be 2 to 50 characters"));
        assert_eq!(name_part(""), Err("must be 2 to 50 characters"));
        assert_eq!(name_part("   \t "), Err("must be 2 to 50 characters"));
        assert!(name_part(&"é".repeat(50)).is_ok());
        assert_eq!(
            name_part(&"é".repeat(51)),
            Err("must be 2 to 50 characters")
        );
        assert!(full_name(&"山".repeat(100)).is_ok());
        assert_eq!(
            full_name(&"山".repeat(101)),
            Err("must be 2 to 100 characters")
        );
        assert_eq!(full_name("A"), Err("must be 2 to 100 characters"));
        assert_eq!(full_name(" "), Err("must be 2 to 100 characters"));
    }

    #[test]
    fn messages_never_echo_input() {
        let secret = "Hunter2Hunter2<script>";
        let messages = [
            email(secret).unwrap_err(),
            name_part(secret).unwrap_err(),
            full_name(secret).unwrap_err(),
        ];
        for m in messages {
            assert!(!m.contains("Hunter2") && !m.contains("<script>"));
        }
    }

    /// `cargo test --release -- --ignored --nocapture timing`
    #[test]
    #[ignore = "timing; run in release"]
    fn timing_common_password_set() {
        let start = std::time::Instant::now();
        let set = common_passwords();
        let built = start.elapsed();
        let start = std::time::Instant::now();
        let hits = (0..10_000)
            .filter(|i| is_common(&format!("Candidate{i}")))
            .count();
        println!(
            "common set: {} entries built in {built:?}; lookup {:?} each ({hits} hits)",
            set.len(),
            start.elapsed() / 10_000
        );
    }
}
