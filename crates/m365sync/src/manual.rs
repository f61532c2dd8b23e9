//! The command tree as clap builds it, with the configuration file's defaults and the global
//! options hidden where they mean nothing; and what is made from it for packaging: shell
//! completions and the manual pages.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};

use crate::config::ConfigFile;

/// Commands that open no store and talk to no tenant: `--db`, `--key-file` and `--ca-cert`
/// would mean nothing there, so their help does not offer them.
const STORELESS: &[&str] = &["simulate", "completions", "manual"];

/// The command line, defaults from the configuration file given.
pub fn command(file: &ConfigFile) -> clap::Command {
    let mut command = file.apply(crate::Cli::command());
    // A subcommand that has an argument of a global's id keeps its own: give these commands
    // hidden copies, so that the globals' help is not shown there (and they still parse).
    let hidden: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|a| ["db", "key_file", "ca_cert"].contains(&a.get_id().as_str()))
        .map(|a| a.clone().hide(true))
        .collect();
    for name in STORELESS {
        if command.find_subcommand(name).is_some() {
            command = command.mut_subcommand(name, |sub| sub.args(hidden.clone()));
        }
    }
    command
}

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn completions(args: CompletionsArgs, file: &ConfigFile) -> anyhow::Result<ExitCode> {
    let mut command = command(file);
    let mut out = crate::output::stdout();
    clap_complete::generate(args.shell, &mut command, "m365sync", &mut out);
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ManualArgs {
    /// The folder to write `m365sync.1` and one page per command into (as git does:
    /// `m365sync-connection-add.1`); without it, the main page goes to standard output.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn manual(args: ManualArgs, file: &ConfigFile) -> anyhow::Result<ExitCode> {
    let command = command(file);
    match args.out {
        None => {
            let mut out = crate::output::stdout();
            clap_mangen::Man::new(command).render(&mut out)?;
            std::io::Write::flush(&mut out)?;
        }
        Some(dir) => write_pages(&command, "m365sync", &dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_pages(command: &clap::Command, name: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    // Built, a command hands the global options down to its subcommands: each page lists them.
    let mut command = command.clone();
    command.build();
    // A page is named after its command path; clap keeps names as `&'static str`, and this
    // runs once per page in a short-lived process.
    let page_name: &'static str = Box::leak(name.to_string().into_boxed_str());
    let page = command
        .clone()
        .name(page_name)
        .bin_name(name.replace('-', " "));
    let mut text = Vec::new();
    clap_mangen::Man::new(page).render(&mut text)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    // clap's own `help` command is `--help` again; it needs no page.
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command says what it does and every argument what it takes: `--help` is the first
    /// manual a person reads, and the manual pages and completions are made from it.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{sub_path} (the command)"));
                }
                walk(sub, &sub_path, missing);
            }
        }
        let command = command(&ConfigFile::default());
        let mut missing = Vec::new();
        walk(&command, "m365sync", &mut missing);
        assert!(missing.is_empty(), "no help for:\n{}", missing.join("\n"));
    }
}
