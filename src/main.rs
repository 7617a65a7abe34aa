use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    mailconf::heap::tune_allocator();
    let cli = mailconf::cli::Cli::parse();
    match mailconf::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailconf: error: {e:#}");
            ExitCode::from(mailconf::exit::ERROR)
        }
    }
}
