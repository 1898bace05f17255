use std::process::ExitCode;

use clap::Parser;
use floatip::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    floatip::logging::init(cli.verbose);
    match cli.execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::from(floatip::cli::exit_code(&e))
        }
    }
}
