//! The mails a server wrote into its default mail directory
//! (`latchkey-mail/` beside the database), read as a person would: the
//! newest `.eml` to an address, and the link token in it.

use super::server::{Server, poll_until};
use std::path::PathBuf;
use std::time::Duration;

/// How long the sender thread may take to deliver a queued mail.
const DELIVERY: Duration = Duration::from_secs(10);

/// A delivered mail, with quoted-printable soft breaks undone.
#[derive(Debug, Clone)]
pub struct Eml {
    pub text: String,
}

impl Eml {
    /// The token of the first link to `page` (`/account/reset-password`).
    pub fn token(&self, page: &str) -> Option<String> {
        let start = self.text.find(&format!("{page}?token="))? + page.len() + 7;
        let token: String = self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!token.is_empty()).then_some(token)
    }
}

impl Server {
    pub fn mail_dir(&self) -> PathBuf {
        self.db.parent().expect("db dir").join("latchkey-mail")
    }

    /// Every mail to `address` so far, oldest first.
    pub fn mails_to(&self, address: &str) -> Vec<Eml> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.mail_dir())
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| {
                let raw = std::fs::read_to_string(&path).ok()?;
                let text = raw.replace("=\r\n", "").replace("=3D", "=");
                text.contains(&format!("To: {address}\r\n"))
                    .then_some(Eml { text })
            })
            .collect()
    }

    /// Waits for the `n`-th mail (1-based) to `address` and returns it.
    pub fn wait_for_mail(&self, address: &str, n: usize) -> Eml {
        let arrived = poll_until(DELIVERY, || self.mails_to(address).len() >= n);
        assert!(
            arrived,
            "mail {n} to {address} never arrived\n{}",
            self.log()
        );
        self.mails_to(address).swap_remove(n - 1)
    }

    /// Waits for a mail to `address` with a link to `page`; its token.
    pub fn wait_for_link(&self, address: &str, page: &str) -> String {
        let mut token = None;
        let arrived = poll_until(DELIVERY, || {
            token = self
                .mails_to(address)
                .iter()
                .rev()
                .find_map(|m| m.token(page));
            token.is_some()
        });
        assert!(arrived, "no link to {page} for {address}\n{}", self.log());
        token.unwrap()
    }
}
