//! The command line: subcommands, and the flags `config::FLAGS` declares.
//!
//! A flag's variable name derives from the flag's (`--access-ttl` →
//! `LATCHKEY_ACCESS_TTL`) in `env_name`, and `--help` is written from the same
//! table by `usage`, so the three cannot drift. The environment arrives as a
//! function, so tests never touch the process environment.

use crate::config::{self, FLAGS};
use std::ffi::OsString;
use std::fmt;

const COMMANDS: &str = "\
latchkey — a self-hosted authentication service in one binary and one SQLite file

USAGE:
    latchkey [serve] [FLAGS]          run the HTTP service
    latchkey migrate                  create or upgrade the schema, then exit
    latchkey keys list                show signing keys: state (next, signing,
                                      retired) and when it changes
    latchkey keys rotate [--now]      add a key that signs once published for
                                      --jwks-max-age (--now: at once)
    latchkey keys revoke KID          drop a key at once; its tokens are refused
    latchkey users list [--json]      list users
    latchkey users delete EMAIL       delete a user and everything they own
    latchkey users set-password EMAIL set a password read from standard input;
                                      ends the user's sessions
    latchkey users mfa-off EMAIL      turn off a user's lost second factor
    latchkey audit [--user EMAIL] [--since RFC3339] [--json]
                                      print audit events, oldest first (--json:
                                      one JSON object a line)
    latchkey cleanup [--audit-retention SECS]
                                      one cleanup pass, printing what it removed
                                      (audit events: kept as long as the service
                                      last started on the file keeps them)
    latchkey backup DEST              a consistent online copy of the database
    latchkey mail-test ADDR           send one mail through the configured
                                      delivery (--smtp-url, --mail-from,
                                      --mail-dir) and print the answer
    latchkey --help | --version
";

const LOGGING: &str = "
Logging: RUST_LOG=info (the default) writes one access line per request to
standard error; RUST_LOG=debug adds more.
";

/// How a flag is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `--flag VALUE`.
    Value,
    /// `--flag` alone; its variable holds true or false.
    Switch,
    /// `--flag VALUE`, repeatable; its variable holds a comma-separated list.
    List,
}

/// The values a number may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    Any,
    Range(i64, i64),
    OneOf(&'static [i64]),
}

/// Why a number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfBounds {
    Below(i64),
    Above(i64),
    NotOneOf(&'static [i64]),
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutOfBounds::Below(min) => write!(f, "must be at least {min}"),
            OutOfBounds::Above(max) => write!(f, "must be at most {max}"),
            OutOfBounds::NotOneOf(values) => {
                let names: Vec<String> = values.iter().map(i64::to_string).collect();
                write!(f, "must be {}", names.join(" or "))
            }
        }
    }
}

/// One setting, as declared in `config`'s table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// `--access-ttl`.
    pub name: &'static str,
    /// The placeholder in `--help` (`SECS`); empty for a switch.
    pub value: &'static str,
    pub shape: Shape,
    /// The value used when neither the flag nor its variable is given.
    pub default: Option<&'static str>,
    /// How `--help` shows the default when it is not a value.
    pub shown_default: Option<&'static str>,
    pub bounds: Bounds,
    pub help: &'static str,
    /// Taken by every subcommand (`--db`), not only `serve`.
    pub every_command: bool,
}

impl Flag {
    pub const fn value(name: &'static str, value: &'static str, help: &'static str) -> Flag {
        Flag {
            name,
            value,
            shape: Shape::Value,
            default: None,
            shown_default: None,
            bounds: Bounds::Any,
            help,
            every_command: false,
        }
    }

    pub const fn switch(name: &'static str, help: &'static str) -> Flag {
        Flag {
            shape: Shape::Switch,
            ..Flag::value(name, "", help)
        }
    }

    pub const fn list(name: &'static str, value: &'static str, help: &'static str) -> Flag {
        Flag {
            shape: Shape::List,
            ..Flag::value(name, value, help)
        }
    }

    pub const fn default(self, default: &'static str) -> Flag {
        Flag {
            default: Some(default),
            ..self
        }
    }

    pub const fn shown_default(self, shown: &'static str) -> Flag {
        Flag {
            shown_default: Some(shown),
            ..self
        }
    }

    pub const fn range(self, min: i64, max: i64) -> Flag {
        Flag {
            bounds: Bounds::Range(min, max),
            ..self
        }
    }

    pub const fn one_of(self, values: &'static [i64]) -> Flag {
        Flag {
            bounds: Bounds::OneOf(values),
            ..self
        }
    }

    pub const fn every_command(self) -> Flag {
        Flag {
            every_command: true,
            ..self
        }
    }

    /// Whether `n` is within this flag's bounds.
    pub fn check(&self, n: i64) -> Result<(), OutOfBounds> {
        match self.bounds {
            Bounds::Range(min, _) if n < min => Err(OutOfBounds::Below(min)),
            Bounds::Range(_, max) if n > max => Err(OutOfBounds::Above(max)),
            Bounds::OneOf(values) if !values.contains(&n) => Err(OutOfBounds::NotOneOf(values)),
            Bounds::Any | Bounds::Range(..) | Bounds::OneOf(_) => Ok(()),
        }
    }

    /// `--refresh-ttl SECS`.
    fn synopsis(&self) -> String {
        if self.value.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.value)
        }
    }
}

/// `--help`: the commands, then each flag of `config::FLAGS` with its default.
pub fn usage() -> String {
    let mut out = String::from(COMMANDS);
    out.push_str("\nEVERY COMMAND (each works while a service runs on the same file):\n");
    for flag in FLAGS.iter().filter(|f| f.every_command) {
        describe_flag(&mut out, flag);
    }
    out.push_str(
        "\nSERVE FLAGS (each also read from LATCHKEY_<FLAG>, e.g. LATCHKEY_ACCESS_TTL;\n\
         a flag beats its variable):\n",
    );
    for flag in FLAGS.iter().filter(|f| !f.every_command) {
        describe_flag(&mut out, flag);
    }
    out.push_str(LOGGING);
    out
}

/// One flag's lines: synopsis, help (continued lines indented), `[default]`.
fn describe_flag(out: &mut String, flag: &Flag) {
    const COLUMN: usize = 30;
    let synopsis = flag.synopsis();
    let mut help = flag.help.to_string();
    if let Some(default) = flag.shown_default.or(flag.default) {
        help.push_str(&format!(" [{default}]"));
    }
    let mut lines = help.lines();
    let first = lines.next().unwrap_or_default();
    if synopsis.len() < COLUMN {
        out.push_str(&format!("    {synopsis:<COLUMN$}{first}\n"));
    } else {
        out.push_str(&format!("    {synopsis}\n    {:COLUMN$}{first}\n", ""));
    }
    for line in lines {
        out.push_str(&format!("    {:COLUMN$}{line}\n", ""));
    }
}

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Version,
    Serve(Raw),
    Migrate(Raw),
    KeysList(Raw),
    KeysRotate {
        raw: Raw,
        now: bool,
    },
    KeysRevoke {
        raw: Raw,
        kid: String,
    },
    UsersList {
        raw: Raw,
        json: bool,
    },
    UsersDelete {
        raw: Raw,
        email: String,
    },
    UsersSetPassword {
        raw: Raw,
        email: String,
    },
    UsersMfaOff {
        raw: Raw,
        email: String,
    },
    Audit {
        raw: Raw,
        user: Option<String>,
        since: Option<String>,
        json: bool,
    },
    Cleanup(Raw),
    Backup {
        raw: Raw,
        dest: String,
    },
    MailTest {
        raw: Raw,
        to: String,
    },
}

/// Where a value came from, so an error can name what the user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    Variable,
}

/// Flag values as text, before validation (see `config`). Read them by
/// their `Flag` constant, never by a name.
#[derive(Debug, Default, PartialEq)]
pub struct Raw {
    values: Vec<(&'static str, String, Source)>,
    switches: Vec<&'static str>,
    /// Repeatable flags (`--trusted-proxy`), all their values.
    lists: Vec<(&'static str, Vec<String>)>,
}

impl Raw {
    pub fn get(&self, flag: &Flag) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _, _)| *f == flag.name)
            .map(|(_, v, _)| v.as_str())
    }

    pub fn has(&self, flag: &Flag) -> bool {
        self.switches.contains(&flag.name)
    }

    pub fn list(&self, flag: &Flag) -> &[String] {
        self.lists
            .iter()
            .find(|(f, _)| *f == flag.name)
            .map_or(&[], |(_, v)| v)
    }

    /// A value as if given on the command line (for tests).
    #[cfg(test)]
    pub fn set(&mut self, flag: &Flag, value: &str) {
        self.values
            .push((flag.name, value.to_string(), Source::Flag));
    }

    #[cfg(test)]
    pub fn push_list(&mut self, flag: &Flag, values: Vec<String>) {
        self.lists.push((flag.name, values));
    }

    /// An error about `flag`'s value, naming the flag, and the variable too
    /// when the value came from the environment.
    pub fn bad(&self, flag: &Flag, problem: &str) -> UsageError {
        let from_env = self
            .values
            .iter()
            .any(|(f, _, source)| *f == flag.name && *source == Source::Variable);
        if from_env {
            UsageError(format!(
                "{} ({}): {problem}",
                flag.name,
                env_name(flag.name)
            ))
        } else {
            UsageError(format!("{}: {problem}", flag.name))
        }
    }
}

/// A command-line mistake: printed as one line, exit status 2.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `--access-ttl` → `LATCHKEY_ACCESS_TTL`.
pub fn env_name(flag: &str) -> String {
    format!(
        "LATCHKEY_{}",
        flag.trim_start_matches('-')
            .replace('-', "_")
            .to_uppercase()
    )
}

pub fn parse(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, UsageError> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    if args.contains(["-V", "--version"]) {
        return Ok(Command::Version);
    }
    // `--db` may come before the subcommand too (`latchkey --db x.db users list`).
    let db: Option<String> = args
        .opt_value_from_str(config::DB.name)
        .map_err(|e| UsageError(format!("{}: {}", config::DB.name, describe(e))))?;
    let mut args = Given { args, db };
    let args = &mut args;
    let sub = args
        .args
        .subcommand()
        .map_err(|e| UsageError(e.to_string()))?;
    let every: Vec<&Flag> = FLAGS.iter().filter(|f| f.every_command).collect();
    let command = match sub.as_deref() {
        None | Some("serve") => Command::Serve(flags(args, env, FLAGS.iter())?),
        Some("migrate") => Command::Migrate(flags(args, env, every)?),
        Some("keys") => {
            let action = args
                .args
                .subcommand()
                .map_err(|e| UsageError(e.to_string()))?;
            let now = action.as_deref() == Some("rotate") && args.args.contains("--now");
            let raw = flags(args, env, every)?;
            match action.as_deref() {
                Some("list") => Command::KeysList(raw),
                Some("rotate") => Command::KeysRotate { raw, now },
                Some("revoke") => Command::KeysRevoke {
                    raw,
                    kid: free(args, "KID")?,
                },
                Some(other) => return Err(UsageError(format!("unknown keys command '{other}'"))),
                None => return Err(UsageError("keys needs 'list', 'rotate' or 'revoke'".into())),
            }
        }
        Some("users") => {
            let action = args
                .args
                .subcommand()
                .map_err(|e| UsageError(e.to_string()))?;
            let json = action.as_deref() == Some("list") && args.args.contains("--json");
            let raw = flags(args, env, every)?;
            match action.as_deref() {
                Some("list") => Command::UsersList { raw, json },
                Some("delete") => Command::UsersDelete {
                    raw,
                    email: free(args, "EMAIL")?,
                },
                Some("set-password") => Command::UsersSetPassword {
                    raw,
                    email: free(args, "EMAIL")?,
                },
                Some("mfa-off") => Command::UsersMfaOff {
                    raw,
                    email: free(args, "EMAIL")?,
                },
                Some(other) => return Err(UsageError(format!("unknown users command '{other}'"))),
                None => {
                    return Err(UsageError(
                        "users needs 'list', 'delete', 'set-password' or 'mfa-off'".into(),
                    ));
                }
            }
        }
        Some("audit") => {
            let json = args.args.contains("--json");
            let raw = flags(args, env, every)?;
            let mut value = |flag: &'static str| {
                args.args
                    .opt_value_from_str::<_, String>(flag)
                    .map_err(|e| UsageError(format!("{flag}: {}", describe(e))))
            };
            Command::Audit {
                user: value("--user")?,
                since: value("--since")?,
                raw,
                json,
            }
        }
        Some("cleanup") => {
            let accepted = every.into_iter().chain([&config::AUDIT_RETENTION]);
            Command::Cleanup(flags(args, env, accepted)?)
        }
        Some("backup") => {
            let raw = flags(args, env, every)?;
            Command::Backup {
                raw,
                dest: free(args, "DEST")?,
            }
        }
        Some("mail-test") => {
            let mail = [&config::SMTP_URL, &config::MAIL_FROM, &config::MAIL_DIR];
            let raw = flags(args, env, every.iter().copied().chain(mail))?;
            Command::MailTest {
                raw,
                to: free(args, "ADDR")?,
            }
        }
        Some(other) => return Err(UsageError(format!("unknown command '{other}'"))),
    };
    let rest =
        std::mem::replace(&mut args.args, pico_args::Arguments::from_vec(Vec::new())).finish();
    if let Some(first) = rest.first() {
        return Err(UsageError(format!(
            "unexpected argument '{}'",
            first.to_string_lossy()
        )));
    }
    Ok(command)
}

/// The arguments still to read, and a `--db` read before the subcommand.
struct Given {
    args: pico_args::Arguments,
    db: Option<String>,
}

/// Reads each of `accepted` (or its variable) once.
fn flags<'a>(
    given: &mut Given,
    env: &dyn Fn(&str) -> Option<String>,
    accepted: impl IntoIterator<Item = &'a Flag>,
) -> Result<Raw, UsageError> {
    let mut raw = Raw::default();
    for flag in accepted {
        let name = flag.name;
        let args = &mut given.args;
        match flag.shape {
            Shape::Value => {
                let mut value: Option<String> = args
                    .opt_value_from_str(name)
                    .map_err(|e| UsageError(format!("{name}: {}", describe(e))))?;
                if *flag == config::DB {
                    value = value.or(given.db.take());
                }
                if let Some(value) = value {
                    raw.values.push((name, value, Source::Flag));
                } else if let Some(value) = env(&env_name(name)) {
                    raw.values.push((name, value, Source::Variable));
                }
            }
            Shape::Switch => {
                let from_env = || match env(&env_name(name)).as_deref().map(str::trim) {
                    None | Some("" | "0" | "false" | "no") => Ok(false),
                    Some("1" | "true" | "yes") => Ok(true),
                    Some(_) => Err(UsageError(format!(
                        "{name} ({}): expected true or false",
                        env_name(name)
                    ))),
                };
                if args.contains(name) || from_env()? {
                    raw.switches.push(name);
                }
            }
            Shape::List => {
                let mut values: Vec<String> = args
                    .values_from_str(name)
                    .map_err(|e| UsageError(format!("{name}: {}", describe(e))))?;
                if values.is_empty() {
                    values = env(&env_name(name))
                        .map(|v| {
                            v.split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default();
                }
                raw.lists.push((name, values));
            }
        }
    }
    Ok(raw)
}

/// A required positional argument.
fn free(given: &mut Given, what: &str) -> Result<String, UsageError> {
    given
        .args
        .opt_free_from_str::<String>()
        .map_err(|e| UsageError(format!("{what}: {}", describe(e))))?
        .ok_or_else(|| UsageError(format!("missing {what}")))
}

fn describe(e: pico_args::Error) -> String {
    match e {
        pico_args::Error::OptionWithoutAValue(_) => "needs a value".into(),
        pico_args::Error::NonUtf8Argument => "is not valid UTF-8".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ACCESS_TTL, DB, LEEWAY, ROTATE_REFRESH_TOKENS, TRUSTED_PROXY};

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, UsageError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        parse(args.iter().map(OsString::from).collect(), &lookup)
    }

    fn serve_raw(cmd: Command) -> Raw {
        match cmd {
            Command::Serve(raw) => raw,
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn variable_names_derive_from_flags() {
        assert_eq!(env_name("--access-ttl"), "LATCHKEY_ACCESS_TTL");
        assert_eq!(env_name("--db"), "LATCHKEY_DB");
    }

    #[test]
    fn help_lists_every_flag_with_its_default() {
        let help = usage();
        for flag in FLAGS {
            let start = help
                .find(&format!("    {}", flag.synopsis()))
                .unwrap_or_else(|| panic!("--help lacks {}", flag.name));
            let entry = &help[start + 4..];
            let entry = &entry[..entry.find("\n    --").unwrap_or(entry.len())];
            if let Some(default) = flag.shown_default.or(flag.default) {
                assert!(entry.contains(&format!("[{default}]")), "{entry}");
            }
        }
        assert!(help.contains("    --access-ttl SECS             access token lifetime [3600]\n"));
    }

    #[test]
    fn bare_invocation_serves() {
        let raw = serve_raw(run(&[], &[]).unwrap());
        assert_eq!(raw.get(&ACCESS_TTL), None);
        assert!(!raw.has(&ROTATE_REFRESH_TOKENS));
        assert!(raw.list(&TRUSTED_PROXY).is_empty());
    }

    #[test]
    fn a_flag_beats_its_variable() {
        let raw = serve_raw(
            run(
                &["serve", "--access-ttl", "60"],
                &[("LATCHKEY_ACCESS_TTL", "90"), ("LATCHKEY_LEEWAY", "5")],
            )
            .unwrap(),
        );
        assert_eq!(raw.get(&ACCESS_TTL), Some("60"));
        assert_eq!(raw.get(&LEEWAY), Some("5"));
        // An error about a value from the environment names the variable too.
        assert_eq!(raw.bad(&LEEWAY, "x").0, "--leeway (LATCHKEY_LEEWAY): x");
        assert_eq!(raw.bad(&ACCESS_TTL, "x").0, "--access-ttl: x");
    }

    #[test]
    fn repeatable_flags_collect_every_value() {
        let raw = serve_raw(
            run(
                &["--trusted-proxy", "10.0.0.1", "--trusted-proxy", "::1"],
                &[],
            )
            .unwrap(),
        );
        assert_eq!(raw.list(&TRUSTED_PROXY), ["10.0.0.1", "::1"]);
        let raw = serve_raw(run(&[], &[("LATCHKEY_TRUSTED_PROXY", "10.0.0.1, 10.0.0.2")]).unwrap());
        assert_eq!(raw.list(&TRUSTED_PROXY), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn switches_come_from_flags_or_variables() {
        let raw = serve_raw(run(&["--rotate-refresh-tokens"], &[]).unwrap());
        assert!(raw.has(&ROTATE_REFRESH_TOKENS));
        let raw = serve_raw(run(&[], &[("LATCHKEY_ROTATE_REFRESH_TOKENS", "true")]).unwrap());
        assert!(raw.has(&ROTATE_REFRESH_TOKENS));
        assert!(run(&[], &[("LATCHKEY_ROTATE_REFRESH_TOKENS", "maybe")]).is_err());
    }

    #[test]
    fn unknown_flags_and_commands_are_named() {
        let e = run(&["--bogus"], &[]).unwrap_err();
        assert!(e.0.contains("--bogus"), "{e}");
        let e = run(&["frobnicate"], &[]).unwrap_err();
        assert!(e.0.contains("frobnicate"), "{e}");
        let e = run(&["--listen"], &[]).unwrap_err();
        assert!(e.0.contains("--listen"), "{e}");
        // Serve flags are not taken by other commands.
        let e = run(&["keys", "list", "--access-ttl", "5"], &[]).unwrap_err();
        assert!(e.0.contains("--access-ttl"), "{e}");
    }

    #[test]
    fn subcommands_parse() {
        assert!(matches!(
            run(&["migrate", "--db", "x.db"], &[]),
            Ok(Command::Migrate(_))
        ));
        assert!(matches!(
            run(&["keys", "list"], &[]),
            Ok(Command::KeysList(_))
        ));
        assert!(matches!(
            run(&["keys", "rotate"], &[]),
            Ok(Command::KeysRotate { now: false, .. })
        ));
        assert!(matches!(
            run(&["keys", "rotate", "--now"], &[]),
            Ok(Command::KeysRotate { now: true, .. })
        ));
        match run(&["keys", "revoke", "abc"], &[]) {
            Ok(Command::KeysRevoke { kid, .. }) => assert_eq!(kid, "abc"),
            other => panic!("{other:?}"),
        }
        assert!(run(&["keys", "revoke"], &[]).is_err());
        match run(&["audit", "--user", "a@x.io", "--json"], &[]) {
            Ok(Command::Audit {
                user, since, json, ..
            }) => {
                assert_eq!(user.as_deref(), Some("a@x.io"));
                assert_eq!((since, json), (None, true));
            }
            other => panic!("{other:?}"),
        }
        assert!(run(&["audit", "--since"], &[]).is_err());
        match run(&["cleanup", "--audit-retention", "60"], &[]) {
            Ok(Command::Cleanup(raw)) => {
                assert_eq!(raw.get(&crate::config::AUDIT_RETENTION), Some("60"))
            }
            other => panic!("{other:?}"),
        }
        assert!(run(&["keys"], &[]).is_err());
        assert!(matches!(
            run(&["users", "list", "--json"], &[]),
            Ok(Command::UsersList { json: true, .. })
        ));
        match run(&["users", "set-password", "a@x.io", "--db", "f.db"], &[]) {
            Ok(Command::UsersSetPassword { raw, email }) => {
                assert_eq!((email.as_str(), raw.get(&DB)), ("a@x.io", Some("f.db")));
            }
            other => panic!("{other:?}"),
        }
        assert!(run(&["users", "delete"], &[]).is_err());
        assert!(matches!(
            run(&["backup", "/tmp/x.db"], &[]),
            Ok(Command::Backup { .. })
        ));
        assert!(run(&["backup"], &[]).is_err());
        assert!(matches!(run(&["cleanup"], &[]), Ok(Command::Cleanup(_))));
        match run(
            &["mail-test", "ada@example.com"],
            &[("LATCHKEY_SMTP_URL", "smtp://127.0.0.1:2525?tls=none")],
        ) {
            Ok(Command::MailTest { raw, to }) => {
                assert_eq!(to, "ada@example.com");
                assert_eq!(
                    raw.get(&config::SMTP_URL),
                    Some("smtp://127.0.0.1:2525?tls=none")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(run(&["mail-test"], &[]).is_err());
        assert!(run(&["mail-test", "a@x.io", "--access-ttl", "5"], &[]).is_err());
        match run(&["--db", "first.db", "keys", "list"], &[]) {
            Ok(Command::KeysList(raw)) => assert_eq!(raw.get(&DB), Some("first.db")),
            other => panic!("{other:?}"),
        }
        assert_eq!(run(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(run(&["--version"], &[]), Ok(Command::Version));
    }
}
