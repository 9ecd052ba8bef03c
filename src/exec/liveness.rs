//! Whether the process that holds a lease still runs, for `rehearse clean` on the machine where
//! that run lived: a run killed there (SIGKILL, an OOM kill) is known to be gone at once, so its
//! namespaces need not wait out their lease.
//!
//! A process is named by what tells it apart from every other on the machine, then and later: the
//! kernel's boot id (a reboot ends every process), its PID namespace (two containers on one
//! kernel number their processes apart), its pid, and its start time in clock ticks since boot (a
//! pid is reused; a pid and a start time are not). Anywhere else (another machine, another
//! container, a system without `/proc`) nothing can be known, and the lease decides alone.

use std::path::Path;

/// The process identity of this run, as the lease records it: `BOOT/PIDNS/PID/START`. None where
/// `/proc` cannot tell (not Linux).
pub fn this_process() -> Option<String> {
    let machine = Machine::read(Path::new("/proc"))?;
    let pid = std::process::id();
    let started = start_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(format!("{}/{}/{pid}/{started}", machine.boot, machine.pid_namespace))
}

/// What is known of the process a lease names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// It runs on this machine, in this PID namespace.
    Running,
    /// It ran on this machine, in this PID namespace, and has ended (or is a zombie).
    Gone,
    /// It ran elsewhere, or the identity cannot be read: only the lease can tell.
    Unknown,
}

/// The liveness of the process `identity` (as [`this_process`] writes it) names, seen from here.
pub fn of(identity: &str) -> Liveness {
    match Machine::read(Path::new("/proc")) {
        Some(machine) => machine.liveness(identity, |pid| std::fs::read_to_string(format!("/proc/{pid}/stat"))),
        None => Liveness::Unknown,
    }
}

/// The boot and PID namespace this process runs in.
struct Machine {
    boot: String,
    pid_namespace: String,
    /// Whether `/proc` shows other users' processes: mounted with `hidepid=invisible`, it hides
    /// them (process 1 among them), and a pid missing there says nothing.
    sees_every_process: bool,
}

impl Machine {
    fn read(proc: &Path) -> Option<Machine> {
        let boot = std::fs::read_to_string(proc.join("sys/kernel/random/boot_id")).ok()?.trim().to_string();
        // `pid:[4026531836]`: the namespace's inode number.
        let link = std::fs::read_link(proc.join("self/ns/pid")).ok()?;
        let pid_namespace = link.to_str()?.strip_prefix("pid:[")?.strip_suffix(']')?.to_string();
        let sees_every_process = proc.join("1").exists();
        (!boot.is_empty() && !boot.contains('/')).then_some(Machine { boot, pid_namespace, sees_every_process })
    }

    fn liveness(&self, identity: &str, stat_of: impl Fn(u32) -> std::io::Result<String>) -> Liveness {
        let [boot, pid_namespace, pid, started] = identity.split('/').collect::<Vec<_>>()[..] else {
            return Liveness::Unknown;
        };
        let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else { return Liveness::Unknown };
        if boot != self.boot || pid_namespace != self.pid_namespace {
            return Liveness::Unknown;
        }
        match stat_of(pid) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && self.sees_every_process => Liveness::Gone,
            Err(_) => Liveness::Unknown,
            Ok(stat) => match (start_ticks(&stat), state(&stat)) {
                (Some(now_started), Some(state)) if now_started == started && !matches!(state, 'Z' | 'X') => {
                    Liveness::Running
                }
                (Some(_), Some(_)) => Liveness::Gone,
                _ => Liveness::Unknown,
            },
        }
    }
}

/// The fields of `/proc/PID/stat` after the command name, which is in parentheses and may hold
/// spaces and parentheses itself: the last `)` ends it.
fn fields_after_name(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// The process state (field 3): `R`, `S`, `Z` for a zombie...
fn state(stat: &str) -> Option<char> {
    fields_after_name(stat)?.first()?.chars().next()
}

/// When the process started, in clock ticks after boot (field 22).
fn start_ticks(stat: &str) -> Option<u64> {
    fields_after_name(stat)?.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine { boot: "b00t".into(), pid_namespace: "4026531836".into(), sees_every_process: true }
    }

    /// A `/proc/PID/stat` line of a process named `name`, in `state`, started at `started`.
    fn stat(name: &str, state: char, started: u64) -> String {
        format!("4242 ({name}) {state} 1 4242 4242 0 -1 4194560 100 0 0 0 5 1 0 0 20 0 3 0 {started} 100000 200 0")
    }

    #[test]
    fn the_start_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(start_ticks(&stat("rehearse", 'S', 98765)), Some(98765));
        assert_eq!(start_ticks(&stat("a (b) c", 'S', 12)), Some(12));
        assert_eq!(state(&stat("a (b) c", 'Z', 12)), Some('Z'));
        assert_eq!(start_ticks("4242 (cut"), None);
    }

    #[test]
    fn a_process_of_this_machine_runs_while_its_pid_has_its_start_time() {
        let running = |_| Ok(stat("rehearse", 'S', 500));
        assert_eq!(machine().liveness("b00t/4026531836/4242/500", running), Liveness::Running);
    }

    #[test]
    fn a_process_of_this_machine_is_gone_when_its_pid_is_free_reused_or_a_zombie() {
        let free = |_| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(machine().liveness("b00t/4026531836/4242/500", free), Liveness::Gone);
        let reused = |_| Ok(stat("bash", 'S', 900));
        assert_eq!(machine().liveness("b00t/4026531836/4242/500", reused), Liveness::Gone);
        let zombie = |_| Ok(stat("rehearse", 'Z', 500));
        assert_eq!(machine().liveness("b00t/4026531836/4242/500", zombie), Liveness::Gone);
    }

    #[test]
    fn elsewhere_or_unreadable_nothing_is_known() {
        let free = |_| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        // Another boot (machine or reboot), another PID namespace (container), a malformed value.
        for identity in ["other/4026531836/4242/500", "b00t/4026532000/4242/500", "b00t/4242", "", "b00t/x/4242/500"] {
            assert_eq!(machine().liveness(identity, free), Liveness::Unknown, "{identity}");
        }
        let denied = |_| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!(machine().liveness("b00t/4026531836/4242/500", denied), Liveness::Unknown);
        // Behind `hidepid=invisible`, another user's live process looks absent.
        let hiding = Machine { sees_every_process: false, ..machine() };
        assert_eq!(hiding.liveness("b00t/4026531836/4242/500", free), Liveness::Unknown);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_running_and_a_made_up_start_time_is_not_it() {
        let me = this_process().expect("Linux's /proc names this process");
        assert_eq!(of(&me), Liveness::Running, "{me}");
        let (rest, started) = me.rsplit_once('/').unwrap();
        let other: u64 = started.parse::<u64>().unwrap() + 1;
        assert_eq!(of(&format!("{rest}/{other}")), Liveness::Gone);
    }
}
