//! `kubectl rehearse ...`: kubectl runs an executable named `kubectl-NAME` found on the PATH as
//! its plugin `NAME`. `cargo install` puts this one beside `rehearse`, which it runs with the
//! same arguments (replacing itself, so signals and the exit code are rehearse's own).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let rehearse = exe.with_file_name(format!("rehearse{}", std::env::consts::EXE_SUFFIX));
        rehearse.is_file().then_some(rehearse)
    });
    let Some(rehearse) = beside else {
        eprintln!(
            "kubectl-rehearse: `rehearse` is not installed beside this plugin: reinstall with `cargo install rehearse`"
        );
        return ExitCode::from(3);
    };
    let mut command = Command::new(&rehearse);
    command.args(std::env::args_os().skip(1));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        eprintln!("kubectl-rehearse: cannot run {}: {error}", rehearse.display());
        ExitCode::from(3)
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => ExitCode::from(status.code().map_or(3, |c| c as u8)),
        Err(error) => {
            eprintln!("kubectl-rehearse: cannot run {}: {error}", rehearse.display());
            ExitCode::from(3)
        }
    }
}
