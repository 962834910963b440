//! The command line: subcommands, flags, and the `LATCHKEY_*` variables.
//!
//! Every flag is looked up in one place, `Args::value`, which derives the
//! variable's name from the flag's (`--access-ttl` → `LATCHKEY_ACCESS_TTL`),
//! so the two cannot drift. The environment arrives as a function, so tests
//! never touch the process environment.

use std::ffi::OsString;
use std::fmt;

pub const USAGE: &str = "\
latchkey — a self-hosted authentication service in one binary and one SQLite file

USAGE:
    latchkey [serve] [FLAGS]          run the HTTP service
    latchkey migrate                  create or upgrade the schema, then exit
    latchkey keys list                show signing keys
    latchkey keys rotate              make a new active signing key
    latchkey users list [--json]      list users
    latchkey users delete EMAIL       delete a user and everything they own
    latchkey users set-password EMAIL set a password read from standard input;
                                      ends the user's sessions
    latchkey users mfa-off EMAIL      turn off a user's lost second factor
    latchkey cleanup                  one cleanup pass, printing what it removed
    latchkey backup DEST              a consistent online copy of the database
    latchkey --help | --version

EVERY COMMAND (each works while a service runs on the same file):
    --db PATH                     SQLite database file [./latchkey.db]

SERVE FLAGS (each also read from LATCHKEY_<FLAG>, e.g. LATCHKEY_ACCESS_TTL;
a flag beats its variable):
    --listen ADDR                 address to listen on [127.0.0.1:8080]
    --issuer STR                  `iss` of issued tokens [latchkey]
    --audience STR                `aud` of issued tokens [the issuer]
    --access-ttl SECS             access token lifetime [3600]
    --leeway SECS                 clock leeway for exp/iat, at most 60 [30]
    --refresh-ttl SECS            refresh token lifetime [2592000]
    --max-private-token-ttl SECS  longest private token lifetime [31536000]
    --rotate-refresh-tokens       each refresh returns a new refresh token
    --refresh-reuse-interval SECS grace for retrying a rotated token [10]
    --key-rotation-interval SECS  rotate the signing key on this period [0: by hand]
    --expired-token-status N      401 or 419 for an expired token [401]
    --cleanup-interval SECS       period of the expired-token sweep [3600]
    --max-image-bytes N           largest profile picture [2097152]
    --max-image-pixels N          largest decoded picture [16777216]
    --login-max-failures N        failures per email within the window [5]
    --login-window SECS           throttling window [900]
    --threads N                   request worker threads [4 per core, at least 8]
    --idle-timeout SECS           close idle keep-alive connections [30]
    --request-timeout SECS        time allowed to send a request [10]
    --max-connections N           open connections at most [1024]
    --trusted-proxy ADDR          a reverse proxy whose X-Forwarded-For is
                                  believed for the client address (repeatable;
                                  LATCHKEY_TRUSTED_PROXY takes a comma list)

Logging: RUST_LOG=info (the default) writes one access line per request to
standard error; RUST_LOG=debug adds more.
";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Version,
    Serve(Raw),
    Migrate(Raw),
    KeysList(Raw),
    KeysRotate(Raw),
    UsersList { raw: Raw, json: bool },
    UsersDelete { raw: Raw, email: String },
    UsersSetPassword { raw: Raw, email: String },
    UsersMfaOff { raw: Raw, email: String },
    Cleanup(Raw),
    Backup { raw: Raw, dest: String },
}

/// Flag values as text, before validation (see `config`).
#[derive(Debug, Default, PartialEq)]
pub struct Raw {
    pub values: Vec<(&'static str, String)>,
    pub switches: Vec<&'static str>,
    /// Repeatable flags (`--trusted-proxy`), all their values.
    pub lists: Vec<(&'static str, Vec<String>)>,
}

impl Raw {
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, flag: &str) -> bool {
        self.switches.contains(&flag)
    }

    pub fn list(&self, flag: &str) -> &[String] {
        self.lists
            .iter()
            .find(|(f, _)| *f == flag)
            .map_or(&[], |(_, v)| v)
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

/// Flags that take a value, for `serve`.
pub const SERVE_FLAGS: &[&str] = &[
    "--listen",
    "--db",
    "--issuer",
    "--audience",
    "--access-ttl",
    "--leeway",
    "--refresh-ttl",
    "--max-private-token-ttl",
    "--refresh-reuse-interval",
    "--key-rotation-interval",
    "--expired-token-status",
    "--cleanup-interval",
    "--max-image-bytes",
    "--max-image-pixels",
    "--login-max-failures",
    "--login-window",
    "--threads",
    "--idle-timeout",
    "--request-timeout",
    "--max-connections",
];

/// Switches (no value), for `serve`.
pub const SERVE_SWITCHES: &[&str] = &["--rotate-refresh-tokens"];

/// Repeatable flags, for `serve`; their variable holds a comma-separated list.
pub const SERVE_LISTS: &[&str] = &["--trusted-proxy"];

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
        .opt_value_from_str("--db")
        .map_err(|e| UsageError(format!("--db: {}", describe(e))))?;
    let mut args = Given { args, db };
    let args = &mut args;
    let sub = args
        .args
        .subcommand()
        .map_err(|e| UsageError(e.to_string()))?;
    let command = match sub.as_deref() {
        None | Some("serve") => {
            let mut raw = flags(args, env, SERVE_FLAGS, SERVE_SWITCHES)?;
            for &flag in SERVE_LISTS {
                let mut values: Vec<String> = args
                    .args
                    .values_from_str(flag)
                    .map_err(|e| UsageError(format!("{flag}: {}", describe(e))))?;
                if values.is_empty() {
                    values = env(&env_name(flag))
                        .map(|v| {
                            v.split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default();
                }
                raw.lists.push((flag, values));
            }
            Command::Serve(raw)
        }
        Some("migrate") => Command::Migrate(flags(args, env, &["--db"], &[])?),
        Some("keys") => {
            let action = args
                .args
                .subcommand()
                .map_err(|e| UsageError(e.to_string()))?;
            let raw = flags(args, env, &["--db"], &[])?;
            match action.as_deref() {
                Some("list") => Command::KeysList(raw),
                Some("rotate") => Command::KeysRotate(raw),
                Some(other) => return Err(UsageError(format!("unknown keys command '{other}'"))),
                None => return Err(UsageError("keys needs 'list' or 'rotate'".into())),
            }
        }
        Some("users") => {
            let action = args
                .args
                .subcommand()
                .map_err(|e| UsageError(e.to_string()))?;
            let json = action.as_deref() == Some("list") && args.args.contains("--json");
            let raw = flags(args, env, &["--db"], &[])?;
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
        Some("cleanup") => Command::Cleanup(flags(args, env, &["--db"], &[])?),
        Some("backup") => {
            let raw = flags(args, env, &["--db"], &[])?;
            Command::Backup {
                raw,
                dest: free(args, "DEST")?,
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

/// Reads each flag (or its variable) once, in the order given.
fn flags(
    given: &mut Given,
    env: &dyn Fn(&str) -> Option<String>,
    valued: &[&'static str],
    switches: &[&'static str],
) -> Result<Raw, UsageError> {
    let mut raw = Raw::default();
    let args = &mut given.args;
    for &flag in valued {
        let mut value: Option<String> = args
            .opt_value_from_str(flag)
            .map_err(|e| UsageError(format!("{flag}: {}", describe(e))))?;
        if flag == "--db" {
            value = value.or(given.db.take());
        }
        if let Some(value) = value.or_else(|| env(&env_name(flag))) {
            raw.values.push((flag, value));
        }
    }
    for &flag in switches {
        let from_env = || match env(&env_name(flag)).as_deref().map(str::trim) {
            None | Some("" | "0" | "false" | "no") => Ok(false),
            Some("1" | "true" | "yes") => Ok(true),
            Some(_) => Err(UsageError(format!(
                "{}: expected true or false",
                env_name(flag)
            ))),
        };
        if args.contains(flag) || from_env()? {
            raw.switches.push(flag);
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
    fn bare_invocation_serves() {
        let raw = serve_raw(run(&[], &[]).unwrap());
        assert!(raw.values.is_empty() && raw.switches.is_empty());
        assert!(raw.list("--trusted-proxy").is_empty());
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
        assert_eq!(raw.get("--access-ttl"), Some("60"));
        assert_eq!(raw.get("--leeway"), Some("5"));
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
        assert_eq!(raw.list("--trusted-proxy"), ["10.0.0.1", "::1"]);
        let raw = serve_raw(run(&[], &[("LATCHKEY_TRUSTED_PROXY", "10.0.0.1, 10.0.0.2")]).unwrap());
        assert_eq!(raw.list("--trusted-proxy"), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn switches_come_from_flags_or_variables() {
        let raw = serve_raw(run(&["--rotate-refresh-tokens"], &[]).unwrap());
        assert!(raw.has("--rotate-refresh-tokens"));
        let raw = serve_raw(run(&[], &[("LATCHKEY_ROTATE_REFRESH_TOKENS", "true")]).unwrap());
        assert!(raw.has("--rotate-refresh-tokens"));
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
            Ok(Command::KeysRotate(_))
        ));
        assert!(run(&["keys"], &[]).is_err());
        assert!(matches!(
            run(&["users", "list", "--json"], &[]),
            Ok(Command::UsersList { json: true, .. })
        ));
        match run(&["users", "set-password", "a@x.io", "--db", "f.db"], &[]) {
            Ok(Command::UsersSetPassword { raw, email }) => {
                assert_eq!((email.as_str(), raw.get("--db")), ("a@x.io", Some("f.db")));
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
        match run(&["--db", "first.db", "keys", "list"], &[]) {
            Ok(Command::KeysList(raw)) => assert_eq!(raw.get("--db"), Some("first.db")),
            other => panic!("{other:?}"),
        }
        assert_eq!(run(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(run(&["--version"], &[]), Ok(Command::Version));
    }
}
