//! `kopplung clerk hash-password`: a clerk's password as an argon2id PHC string.

use anyhow::{Context, bail};
use clap::Subcommand;
use kopplung_web::shell::password::{MIN_PASSWORD_CHARS, hash_password};

#[derive(Subcommand)]
pub enum ClerkCommand {
    /// Read a password (one line) from standard input and print its argon2id PHC
    /// string, for `password_argon2` of a `[[clerk]]` in kopplung.toml.
    HashPassword,
}

pub fn run(command: ClerkCommand) -> anyhow::Result<()> {
    match command {
        ClerkCommand::HashPassword => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.chars().count() < MIN_PASSWORD_CHARS {
                bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
            }
            println!("{}", hash_password(password)?);
            Ok(())
        }
    }
}
