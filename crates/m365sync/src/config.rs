//! Settings and where each comes from: the command line, `M365SYNC_*` environment variables, the
//! configuration file, and the built-in defaults, in that order of precedence.
//!
//! The file's values become the defaults of the command-line arguments they stand for, so that
//! clap's own order (flag, then environment, then default) gives the precedence, and a command
//! added later with an argument of the same name gets it without knowing this module. Settings
//! that are not arguments of every command (the key file, the schedules' time zone) are kept in
//! [`settings`] for the code that needs them. `m365sync config show` prints each effective value
//! and its source, secrets redacted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::parser::ValueSource;
use clap::{ArgMatches, Subcommand};
use serde::Deserialize;
use toml::Spanned;

use crate::UsageError;

/// The configuration file a user keeps in their own config folder; the machine's one otherwise.
pub const SYSTEM_FILE: &str = "/etc/m365sync/config.toml";
pub const CONFIG_ENV: &str = "M365SYNC_CONFIG";
pub const KEY_FILE_ENV: &str = "M365SYNC_KEY_FILE";
pub const TIME_ZONE_ENV: &str = "M365SYNC_TIME_ZONE";

/// How log lines are written on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line a message, for a person (coloured on a terminal unless NO_COLOR is set).
    Text,
    /// One JSON object a line, for a log collector.
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// What the configuration file may say. Every key stands for an option of the command line;
/// a key it does not know is an error, not ignored, so that a typo is found at once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    db: Option<Spanned<String>>,
    ca_cert: Option<Spanned<PathBuf>>,
    key_file: Option<Spanned<PathBuf>>,
    log_format: Option<Spanned<LogFormat>>,
    listen: Option<Spanned<SocketAddr>>,
    public_names: Option<Spanned<Vec<String>>>,
    time_zone: Option<Spanned<String>>,
}

/// A configuration file read and checked.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// `None` when there is no file (none was named and none is at the usual places).
    pub path: Option<PathBuf>,
    text: String,
    settings: FileSettings,
}

/// The settings that are not arguments of every command, resolved once at start.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub key_file: Option<PathBuf>,
    pub time_zone: Option<String>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The settings resolved at start (empty in a process that did not resolve them).
pub fn settings() -> &'static Settings {
    SETTINGS.get_or_init(Settings::default)
}

/// The key file for a store: `--key-file` (or its variable, or the file's `key_file`), else the
/// one that belongs beside the store.
pub fn key_file_for(location: &str) -> PathBuf {
    settings()
        .key_file
        .clone()
        .unwrap_or_else(|| store::default_key_file(location))
}

/// The time zone of cron schedules when `--time-zone` is not given.
pub fn default_time_zone() -> Option<String> {
    settings().time_zone.clone()
}

/// The file named by `--config FILE` (or `--config=FILE`) among the arguments, before clap has
/// parsed them: the file decides the defaults clap is given.
fn named_in_arguments(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// The user's own configuration file: `$XDG_CONFIG_HOME/m365sync/config.toml`, else
/// `~/.config/m365sync/config.toml`.
fn user_file() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|base| base.join("m365sync").join("config.toml"))
}

impl ConfigFile {
    /// Finds and reads the configuration file: the one named by `--config` or `M365SYNC_CONFIG`
    /// (which must exist), else the user's, else the machine's, else none.
    pub fn load(args: &[std::ffi::OsString]) -> Result<Self, UsageError> {
        let named = named_in_arguments(args).or_else(|| {
            std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if let Some(path) = named {
            return Self::read(&path);
        }
        for candidate in user_file().into_iter().chain([PathBuf::from(SYSTEM_FILE)]) {
            if candidate.is_file() {
                return Self::read(&candidate);
            }
        }
        Ok(Self::default())
    }

    /// Reads and checks one file.
    pub fn read(path: &Path) -> Result<Self, UsageError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!(
                "cannot read the configuration file {}: {e}; give the path of a readable TOML file to --config (or {CONFIG_ENV})",
                path.display()
            ))
        })?;
        Self::parse(path, text)
    }

    fn parse(path: &Path, text: String) -> Result<Self, UsageError> {
        let settings: FileSettings = toml::from_str(&text).map_err(|e| {
            let place = e.span().map(|span| Place::of(&text, span.start));
            UsageError(match place {
                Some(place) => format!(
                    "{}:{}: {}{}; correct it or remove the line (`m365sync config show` lists the keys)",
                    path.display(),
                    place.line,
                    place
                        .key
                        .map(|k| format!("key `{k}`: "))
                        .unwrap_or_default(),
                    e.message().trim_end()
                ),
                None => format!(
                    "{}: {}; correct the file",
                    path.display(),
                    e.message().trim_end()
                ),
            })
        })?;
        let file = Self {
            path: Some(path.to_path_buf()),
            text,
            settings,
        };
        file.check()?;
        Ok(file)
    }

    /// The checks serde cannot make: values that parse but mean nothing.
    fn check(&self) -> Result<(), UsageError> {
        let s = &self.settings;
        if let Some(db) = &s.db
            && db.get_ref().trim().is_empty()
        {
            return Err(self.wrong(
                db.span(),
                "is empty; give a SQLite file path or a postgres:// URL",
            ));
        }
        if let Some(zone) = &s.time_zone {
            domain::Schedule::cron("0 0 * * *", Some(zone.get_ref()), store::now_millis())
                .map_err(|e| self.wrong(zone.span(), &e.to_string()))?;
        }
        if let Some(names) = &s.public_names {
            for name in names.get_ref() {
                name.parse::<web::PublicName>()
                    .map_err(|e| self.wrong(names.span(), &format!("'{name}': {e}")))?;
            }
        }
        for (path, span) in [
            s.ca_cert.as_ref().map(|p| (p.get_ref(), p.span())),
            s.key_file.as_ref().map(|p| (p.get_ref(), p.span())),
        ]
        .into_iter()
        .flatten()
        {
            if path.as_os_str().is_empty() {
                return Err(self.wrong(span, "is empty; give a file path"));
            }
        }
        Ok(())
    }

    fn wrong(&self, span: std::ops::Range<usize>, problem: &str) -> UsageError {
        let place = Place::of(&self.text, span.start);
        UsageError(format!(
            "{}:{}: key `{}` {problem}",
            self.path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            place.line,
            place.key.unwrap_or("?"),
        ))
    }

    /// Where a key was set, as `FILE:LINE`.
    fn at(&self, start: usize) -> String {
        format!(
            "{}:{}",
            self.path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            Place::of(&self.text, start).line
        )
    }

    /// Gives the file's values to the command line as defaults, and keeps the settings that
    /// are not arguments of every command.
    pub fn apply(&self, command: clap::Command) -> clap::Command {
        let s = &self.settings;
        let mut command = command;
        let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
        if let Some(db) = &s.db {
            let value = leak(db.get_ref().clone());
            command = command.mut_arg("db", |a| a.default_value(value));
        }
        if let Some(path) = &s.ca_cert {
            let value = leak(path.get_ref().display().to_string());
            command = command.mut_arg("ca_cert", |a| a.default_value(value));
        }
        if let Some(path) = &s.key_file {
            let value = leak(path.get_ref().display().to_string());
            command = command.mut_arg("key_file", |a| a.default_value(value));
        }
        if let Some(format) = &s.log_format {
            let value = format.get_ref().as_str();
            command = command.mut_arg("log_format", |a| a.default_value(value));
        }
        for served in ["serve", "demo"] {
            if command.find_subcommand(served).is_none() {
                continue;
            }
            if let Some(listen) = &s.listen
                && served == "serve"
            {
                let value = leak(listen.get_ref().to_string());
                command = command
                    .mut_subcommand(served, |c| c.mut_arg("listen", |a| a.default_value(value)));
            }
            if let Some(names) = &s.public_names {
                let values: Vec<&'static str> =
                    names.get_ref().iter().map(|n| leak(n.clone())).collect();
                command = command.mut_subcommand(served, |c| {
                    c.mut_arg("public_names", |a| a.default_values(values))
                });
            }
        }
        command
    }

    /// Keeps the settings read at start that no argument carries everywhere.
    pub fn remember(&self, key_file: Option<PathBuf>) {
        let time_zone = std::env::var(TIME_ZONE_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| {
                self.settings
                    .time_zone
                    .as_ref()
                    .map(|z| z.get_ref().clone())
            });
        let _ = SETTINGS.set(Settings {
            key_file,
            time_zone,
        });
    }
}

/// A place in the file: its line (from 1) and the key set on it.
struct Place<'a> {
    line: usize,
    key: Option<&'a str>,
}

impl<'a> Place<'a> {
    fn of(text: &'a str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| i + offset);
        let line_text = &text[line_start..line_end];
        let key = line_text
            .split_once('=')
            .map(|(key, _)| key.trim().trim_matches('"'))
            .or_else(|| {
                let bare = line_text.trim();
                (!bare.is_empty() && !bare.starts_with('#') && !bare.starts_with('['))
                    .then_some(bare)
            })
            .filter(|k| !k.is_empty());
        Self {
            line: text[..offset].matches('\n').count() + 1,
            key,
        }
    }
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings, where each comes from (a flag, an environment variable,
    /// the configuration file or the default), secrets redacted.
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// One setting as it takes effect.
#[derive(serde::Serialize)]
struct Effective {
    key: &'static str,
    value: Option<String>,
    source: String,
}

/// Where a global argument's value came from.
fn source_of(
    matches: &ArgMatches,
    file: &ConfigFile,
    id: &str,
    flag: &str,
    env: &str,
    in_file: Option<usize>,
) -> String {
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => flag.to_string(),
        Some(ValueSource::EnvVariable) => format!("environment {env}"),
        _ => match in_file {
            Some(start) => format!("file {}", file.at(start)),
            None => "default".to_string(),
        },
    }
}

pub fn show(
    matches: &ArgMatches,
    file: &ConfigFile,
    cli: &crate::Cli,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let s = &file.settings;
    let span_of = |start: Option<usize>| start;
    let db_source = source_of(
        matches,
        file,
        "db",
        "--db",
        "M365SYNC_DB",
        span_of(s.db.as_ref().map(|v| v.span().start)),
    );
    let key_env = std::env::var(store::secrets::KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let key_file = key_file_for(&cli.db);
    let key = match &key_env {
        Some(value) => Effective {
            key: "secret_key",
            value: Some(
                match store::SecretKey::parse(value, store::secrets::KEY_ENV) {
                    Ok(key) => format!("(redacted; key id {})", key.id()),
                    Err(_) => "(redacted; not a valid key)".to_string(),
                },
            ),
            source: format!("environment {}", store::secrets::KEY_ENV),
        },
        None => Effective {
            key: "secret_key",
            value: Some(format!("read from the key file {}", key_file.display())),
            source: "key_file".to_string(),
        },
    };
    let time_zone = match std::env::var(TIME_ZONE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(zone) => Effective {
            key: "time_zone",
            value: Some(zone),
            source: format!("environment {TIME_ZONE_ENV}"),
        },
        None => match &s.time_zone {
            Some(zone) => Effective {
                key: "time_zone",
                value: Some(zone.get_ref().clone()),
                source: format!("file {}", file.at(zone.span().start)),
            },
            None => Effective {
                key: "time_zone",
                value: Some("UTC".into()),
                source: "default".into(),
            },
        },
    };
    let from_env_or_file =
        |key: &'static str, env: &str, in_file: Option<(String, usize)>, default: &str| {
            match std::env::var(env).ok().filter(|v| !v.trim().is_empty()) {
                Some(value) => Effective {
                    key,
                    value: Some(value),
                    source: format!("environment {env}"),
                },
                None => match in_file {
                    Some((value, start)) => Effective {
                        key,
                        value: Some(value),
                        source: format!("file {}", file.at(start)),
                    },
                    None => Effective {
                        key,
                        value: Some(default.to_string()),
                        source: "default".into(),
                    },
                },
            }
        };
    let rows = vec![
        Effective {
            key: "config",
            value: file.path.as_ref().map(|p| p.display().to_string()),
            source: match (named_in_arguments(&std::env::args_os().collect::<Vec<_>>()), &file.path) {
                (Some(_), _) => "--config".into(),
                (None, Some(_)) if std::env::var_os(CONFIG_ENV).is_some_and(|v| !v.is_empty()) => {
                    format!("environment {CONFIG_ENV}")
                }
                (None, Some(_)) => "found".into(),
                (None, None) => format!("none (looked for {} and {SYSTEM_FILE})", user_file().map(|p| p.display().to_string()).unwrap_or_default()),
            },
        },
        Effective {
            key: "db",
            value: Some(store::redact_url(&cli.db)),
            source: db_source,
        },
        Effective {
            key: "ca_cert",
            value: cli.ca_cert.as_ref().map(|p| p.display().to_string()),
            source: source_of(
                matches,
                file,
                "ca_cert",
                "--ca-cert",
                "M365SYNC_CA_CERT",
                s.ca_cert.as_ref().map(|v| v.span().start),
            ),
        },
        Effective {
            key: "key_file",
            value: Some(key_file.display().to_string()),
            source: match matches.value_source("key_file") {
                Some(ValueSource::CommandLine) => "--key-file".into(),
                Some(ValueSource::EnvVariable) => format!("environment {KEY_FILE_ENV}"),
                _ => match &s.key_file {
                    Some(v) => format!("file {}", file.at(v.span().start)),
                    None => "default (beside a SQLite store; ~/.config/m365sync/secret.key for PostgreSQL)".into(),
                },
            },
        },
        key,
        Effective {
            key: "log_format",
            value: Some(cli.log_format.as_str().to_string()),
            source: source_of(
                matches,
                file,
                "log_format",
                "--log-format",
                "M365SYNC_LOG_FORMAT",
                s.log_format.as_ref().map(|v| v.span().start),
            ),
        },
        from_env_or_file(
            "listen",
            "M365SYNC_LISTEN",
            s.listen
                .as_ref()
                .map(|v| (v.get_ref().to_string(), v.span().start)),
            crate::serve::DEFAULT_LISTEN,
        ),
        from_env_or_file(
            "public_names",
            "M365SYNC_PUBLIC_NAME",
            s.public_names
                .as_ref()
                .map(|v| (v.get_ref().join(","), v.span().start)),
            "(none)",
        ),
        time_zone,
    ];
    if json {
        out!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::output::Table::new(&["SETTING", "VALUE", "SOURCE"]);
    for row in rows {
        table.row(vec![
            row.key.to_string(),
            row.value.unwrap_or_else(|| "(none)".into()),
            row.source,
        ]);
    }
    table.print()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, String> {
        ConfigFile::parse(Path::new("/etc/m365sync/config.toml"), text.to_string()).map_err(|e| e.0)
    }

    #[test]
    fn a_wrong_value_names_the_file_the_line_and_the_key() {
        let err = parse("db = \"x.db\"\n\nlog_format = \"xml\"\n").unwrap_err();
        assert!(
            err.starts_with("/etc/m365sync/config.toml:3: key `log_format`: "),
            "{err}"
        );
        assert!(err.contains("xml"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let err = parse("# settings\ndatabase = \"x.db\"\n").unwrap_err();
        assert!(
            err.starts_with("/etc/m365sync/config.toml:2: key `database`: "),
            "{err}"
        );
    }

    #[test]
    fn values_that_parse_but_mean_nothing_are_refused() {
        let err = parse("time_zone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(
            err.starts_with("/etc/m365sync/config.toml:1: key `time_zone` "),
            "{err}"
        );
        let err = parse("listen = \"localhost\"\n").unwrap_err();
        assert!(err.contains(":1: key `listen`"), "{err}");
        let err = parse("db = \" \"\n").unwrap_err();
        assert!(err.contains(":1: key `db` is empty"), "{err}");
    }

    #[test]
    fn a_good_file_is_read() {
        let file = parse(
            "db = \"/var/lib/m365sync/m365sync.db\"\nlog_format = \"json\"\nlisten = \"127.0.0.1:9000\"\ntime_zone = \"Europe/Paris\"\npublic_names = [\"m365sync.example.com\"]\n",
        )
        .unwrap();
        assert_eq!(
            file.settings.db.unwrap().into_inner(),
            "/var/lib/m365sync/m365sync.db"
        );
        assert_eq!(
            file.settings.log_format.unwrap().into_inner(),
            LogFormat::Json
        );
    }

    #[test]
    fn the_config_flag_is_found_before_parsing() {
        let args = |list: &[&str]| {
            list.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            named_in_arguments(&args(&["m365sync", "--config", "a.toml", "runs"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            named_in_arguments(&args(&["m365sync", "runs", "--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
        assert_eq!(
            named_in_arguments(&args(&["m365sync", "contact", "set", "--", "--config"])),
            None
        );
    }
}
