//! The second factor: TOTP codes (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps,
//! one step of skew either side), recovery codes, checking either against a
//! user's factor inside the transaction that spends it, so a code is never
//! accepted twice (RFC 6238 §5.2), and the login's second step.

use crate::app::App;
use crate::clock;
use crate::db::{self, Connection, mfa_tokens, recovery_codes, settings, totp_factors, users};
use crate::domain::accounts::{self, Client, LoggedIn};
use crate::domain::audit::{self, Entry, Event};
use crate::domain::ids::{self, Secret};
use crate::domain::throttle::Account;
use crate::domain::validate;
use crate::error::ApiError;
use ring::hmac;
use std::fmt;
use totp_rs::{Algorithm, Builder, Totp};

/// Seconds per time step.
pub const STEP: i64 = 30;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;
/// The `methods` an `mfa_required` answer offers.
pub const METHODS: &[&str] = &["totp", "recovery_code"];
/// The setting holding the key of recovery-code hashes.
pub const RECOVERY_CODE_KEY: &str = "recovery_code_key";
/// RFC 8176: a password, then a one-time code (TOTP or a recovery code).
pub const AMR_PASSWORD_OTP: &str = "pwd otp";
/// How long the second step of a login may take.
const MFA_TOKEN_TTL: i64 = 300;

/// A TOTP secret: 160 random bits (RFC 4226 §4 recommends 160). `Debug`
/// never shows it.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn generate() -> TotpSecret {
        TotpSecret(ids::random_bytes::<20>().to_vec())
    }

    pub fn from_stored(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// The stored form (raw bytes).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 without padding, as authenticator apps take it typed in.
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    fn totp(&self, issuer: &str, account: &str) -> Option<Totp> {
        // The otpauth label is "issuer:account"; neither part may hold a colon.
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP as u64)
            .with_secret(self.0.clone())
            .with_issuer(Some(issuer.replace(':', "")))
            .with_account_name(account.replace(':', ""))
            .build()
            .ok()
    }

    /// The `otpauth://totp/...` URI that authenticator apps read from a QR code.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Option<String> {
        self.totp(issuer, account)?.to_url().ok()
    }

    /// The time step whose code `code` is, if it is one of the steps one
    /// either side of `now`'s (RFC 6238 §5.2's recommended network delay).
    pub fn matching_step(&self, code: &str, now: i64) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) || now < 0 {
            return None;
        }
        let totp = self.totp("latchkey", "user")?;
        totp.check(&code, now as u64).map(|step| step as i64)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A recovery code: 80 random bits as 16 base32 characters in four groups
/// (`abcd-efgh-ijkl-mnop`). Typed back, case, spaces and hyphens are ignored.
#[derive(Clone)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    pub fn generate() -> RecoveryCode {
        let plain = base32(&ids::random_bytes::<10>()).to_lowercase();
        let groups: Vec<&str> = (0..4).map(|i| &plain[i * 4..i * 4 + 4]).collect();
        RecoveryCode(groups.join("-"))
    }

    pub fn from_presented(s: &str) -> RecoveryCode {
        RecoveryCode(s.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// HMAC-SHA256 of the normalised code under the database's key: 80
    /// random bits need no slow hash, and without the key a stolen table
    /// cannot even be checked against guesses.
    pub fn hash(&self, key: &[u8]) -> [u8; 32] {
        let normal: String = self
            .0
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), normal.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// RFC 4648 base32, upper case, without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// What a user offers as their second factor.
#[derive(Debug)]
pub enum Proof {
    Code(String),
    RecoveryCode(RecoveryCode),
}

/// Which proof was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
}

/// Checks `proof` against the user's factor and spends it: the code's step
/// is recorded as the last accepted, or the recovery code is deleted. Call
/// inside the write transaction of whatever the proof unlocks. `None`: wrong,
/// replayed, spent, or the factor is off.
pub fn spend(
    tx: &Connection,
    user_id: &str,
    proof: &Proof,
    now: i64,
) -> Result<Option<Method>, db::Error> {
    let Some(secret) = totp_factors::find(tx, user_id)?.and_then(|f| f.secret) else {
        return Ok(None);
    };
    match proof {
        Proof::Code(code) => {
            let step = TotpSecret::from_stored(secret).matching_step(code, now);
            match step {
                Some(step) if totp_factors::accept_step(tx, user_id, step)? => {
                    Ok(Some(Method::Totp))
                }
                _ => Ok(None),
            }
        }
        Proof::RecoveryCode(code) => {
            let key = settings::secret(tx, RECOVERY_CODE_KEY)?;
            Ok(
                recovery_codes::take(tx, user_id, &code.hash(&key))?
                    .then_some(Method::RecoveryCode),
            )
        }
    }
}

/// A new set of recovery codes for the user, replacing any old set; the
/// plain codes are returned to be shown once.
pub fn new_recovery_codes(
    tx: &Connection,
    user_id: &str,
    now: i64,
) -> Result<Vec<RecoveryCode>, db::Error> {
    let key = settings::secret(tx, RECOVERY_CODE_KEY)?;
    let codes: Vec<RecoveryCode> = (0..RECOVERY_CODES)
        .map(|_| RecoveryCode::generate())
        .collect();
    let hashes: Vec<[u8; 32]> = codes.iter().map(|c| c.hash(&key)).collect();
    recovery_codes::replace(tx, user_id, &hashes, now)?;
    Ok(codes)
}

/// Turns the user's second factor off: the secret, the recovery codes and
/// any login waiting for its second step go. `false` if it was not on.
pub fn turn_off(tx: &Connection, user_id: &str) -> Result<bool, db::Error> {
    let was_on = totp_factors::is_on(tx, user_id)?;
    totp_factors::delete(tx, user_id)?;
    recovery_codes::delete_all_of_user(tx, user_id)?;
    mfa_tokens::delete_all_of_user(tx, user_id)?;
    Ok(was_on)
}

/// After the right password for an account with the factor on: a new
/// `mfa_token` bound to the user, the client address and the device token
/// the login counted against (if any), for the 401 `mfa_required` answer.
/// A password rehash waiting for the login is stored now.
pub fn start_second_step(
    app: &App,
    client: &Client,
    user: &users::User,
    device: Option<&[u8; 32]>,
    rehash: Option<&str>,
) -> Result<Secret, ApiError> {
    let token = Secret::generate();
    let address = client.address.map(|a| a.to_string());
    let now = clock::now();
    let new = mfa_tokens::NewMfaToken {
        hash: &token.hash(),
        user_id: &user.id,
        address: address.as_deref(),
        device_token_hash: device,
        now,
        expires_at: now + MFA_TOKEN_TTL,
    };
    db::write(&mut *app.conn()?, |tx| {
        mfa_tokens::insert(tx, &new)?;
        if let Some(hash) = rehash {
            users::update_password_hash(tx, &user.id, hash)?;
        }
        app.record(
            tx,
            &Entry::new(Event::SecondFactorRequired, now, client).user(&user.id),
        )?;
        Ok::<_, ApiError>(())
    })?;
    Ok(token)
}

/// The login's second step: the `mfa_token` with a proof → a session whose
/// tokens say `amr: ["pwd", "otp"]`. The attempt counts in the login
/// throttle before the proof is checked, as a password attempt does (against
/// the device token the first step counted against, else the email); a
/// wrong proof also counts against the token, which `MAX_FAILURES` spend.
/// An unknown, expired or spent token, or one from another client address,
/// is 401 `invalid_credentials` like a wrong proof.
pub fn complete_login(
    app: &App,
    client: &Client,
    token: &Secret,
    proof: &Proof,
) -> Result<LoggedIn, ApiError> {
    let hash = token.hash();
    let now = clock::now();
    let bound = client.address.map(|a| a.to_string());
    let pending = mfa_tokens::find(&*app.conn()?, &hash, now)?.filter(|t| t.address == bound);
    let found = match pending {
        Some(p) => users::find(&*app.conn()?, &p.user_id)?.map(|u| (u, p.device_token_hash)),
        None => None,
    };
    let Some((user, device)) = found else {
        app.metrics.login(false);
        return Err(ApiError::InvalidCredentials);
    };
    let key = validate::email_key(&user.email);
    let device: Option<[u8; 32]> = device.and_then(|d| d.try_into().ok());
    let account = match &device {
        Some(hash) => Account::Device { hash, email: &key },
        None => Account::Email(&key),
    };
    let attempt = app
        .throttle
        .attempt(account, client.address, now)
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let method = db::write(&mut *app.conn()?, |tx| {
        // Under the write lock: the token is still unspent.
        if mfa_tokens::find(tx, &hash, now)?.is_none() {
            return Ok::<_, ApiError>(None);
        }
        let method = spend(tx, &user.id, proof, now)?;
        match method {
            Some(_) => drop(mfa_tokens::delete(tx, &hash)?),
            None => mfa_tokens::fail(tx, &hash)?,
        }
        if method == Some(Method::RecoveryCode) {
            app.record(
                tx,
                &Entry::new(Event::RecoveryCodeUsed, now, client).user(&user.id),
            )?;
        }
        Ok(method)
    })?;
    app.metrics.login(method.is_some());
    if method.is_none() {
        attempt.failed();
        audit::refused_login(app, Event::LoginFailed, client, Some(&user.id), &key)?;
        return Err(ApiError::InvalidCredentials);
    }
    attempt.succeeded();
    accounts::open_session(app, client, user, None, None, now, AMR_PASSWORD_OTP)
}

/// Runs `f` if `proof` is right, spending the proof in the same
/// transaction; `None` when it is wrong. For the authenticated routes
/// behind the password: the attempt counts in the login throttle (a stolen
/// session plus the password still cannot guess codes quickly).
pub fn with_proof<T>(
    app: &App,
    client: &Client,
    user: &users::User,
    proof: &Proof,
    f: impl FnOnce(&Connection) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    let now = clock::now();
    let key = validate::email_key(&user.email);
    let attempt = app
        .throttle
        .attempt(Account::Email(&key), client.address, now)
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let outcome = db::write(&mut *app.conn()?, |tx| {
        match spend(tx, &user.id, proof, now)? {
            Some(method) => {
                if method == Method::RecoveryCode {
                    let entry = Entry::new(Event::RecoveryCodeUsed, now, client).user(&user.id);
                    app.record(tx, &entry)?;
                }
                f(tx).map(Some)
            }
            None => Ok(None),
        }
    })?;
    match outcome {
        Some(_) => attempt.succeeded(),
        None => attempt.failed(),
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    /// RFC 6238 Appendix B, the SHA-1 rows (8 digits there; the last 6 here).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = TotpSecret::from_stored(b"12345678901234567890".to_vec());
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(
                secret.matching_step(code, time),
                Some(time / STEP),
                "{time}"
            );
        }
        // One step either side, not two.
        assert_eq!(
            secret.matching_step("081804", 1111111109 + 30),
            Some(37037036)
        );
        assert_eq!(
            secret.matching_step("081804", 1111111109 - 30),
            Some(37037036)
        );
        assert_eq!(secret.matching_step("081804", 1111111109 + 60), None);
        assert_eq!(secret.matching_step("08180", 1111111109), None);
        assert_eq!(secret.matching_step("o81804", 1111111109), None);
        assert_eq!(secret.matching_step("081 804", 1111111109), Some(37037036));
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_and_the_account() {
        let secret = TotpSecret::from_stored(b"12345678901234567890".to_vec());
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = secret.otpauth_uri("latchkey", "ada@example.com").unwrap();
        assert_eq!(
            uri,
            "otpauth://totp/latchkey:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=latchkey"
        );
        assert!(
            secret
                .otpauth_uri("https://auth.example", "a@x.io")
                .is_some()
        );
        assert_eq!(TotpSecret::generate().bytes().len(), 20);
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn recovery_codes_have_80_bits_and_forgive_their_typing() {
        let code = RecoveryCode::generate();
        assert_eq!(code.expose().len(), 19, "{}", code.expose());
        assert_eq!(code.expose().matches('-').count(), 3);
        let typed = RecoveryCode::from_presented(&code.expose().to_uppercase().replace('-', " "));
        assert_eq!(typed.hash(b"k"), code.hash(b"k"));
        assert_ne!(code.hash(b"k"), code.hash(b"other key"));
        assert_eq!(format!("{code:?}"), "[redacted]");
        assert_eq!(base32(&[0xff; 10]).len(), 16);
    }

    #[test]
    fn a_proof_is_spent_once() {
        let conn = test_connection();
        conn.execute_batch(
            "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
             VALUES ('u1', 'a@x.io', 'a@x.io', 'h', 'Ada', 0, 0);",
        )
        .unwrap();
        totp_factors::set_pending(&conn, "u1", b"12345678901234567890", 0).unwrap();
        let code = Proof::Code("081804".into());
        assert_eq!(spend(&conn, "u1", &code, 1111111109).unwrap(), None, "off");
        totp_factors::confirm(&conn, "u1", 0, 0).unwrap();
        assert_eq!(
            spend(&conn, "u1", &code, 1111111109).unwrap(),
            Some(Method::Totp)
        );
        assert_eq!(spend(&conn, "u1", &code, 1111111109).unwrap(), None);
        let codes = new_recovery_codes(&conn, "u1", 0).unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let first = Proof::RecoveryCode(codes[0].clone());
        assert_eq!(
            spend(&conn, "u1", &first, 0).unwrap(),
            Some(Method::RecoveryCode)
        );
        assert_eq!(spend(&conn, "u1", &first, 0).unwrap(), None);
    }
}
