//! `make assets`: the man page and shell completions for packaging.
//!
//! Output: `floatip.8` and one `floatip-SUBCOMMAND.8` per subcommand (the main page
//! refers to them), `floatip.bash`, `_floatip` (zsh), `floatip.fish`.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use floatip::cli::Cli;

pub fn run(dir: &Path) -> ExitCode {
    match write_all(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("assets: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command();

    cmd.build();
    write_man_page(dir, cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // clap names are `&'static str` without its "string" feature; a one-shot tool may leak.
        let name: &'static str = format!("floatip-{}", sub.get_name()).leak();
        write_man_page(dir, sub.clone().name(name))?;
    }

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd, "floatip", dir)?;
        println!("{}", path.display());
    }
    Ok(())
}

fn write_man_page(dir: &Path, cmd: clap::Command) -> std::io::Result<()> {
    let path = dir.join(format!("{}.8", cmd.get_name()));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).section("8").render(&mut page)?;
    std::fs::write(&path, page)?;
    println!("{}", path.display());
    Ok(())
}
