//! Which process owns a running sync, and whether it is still there.
//!
//! Until runs are jobs with leases, this is how a command tells a live sync in another process
//! from one whose process died: the run row records the host, the pid and the process's start
//! (so that a pid the system gave again to a later process does not look alive).

/// The process that runs a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOwner {
    pub host: String,
    pub pid: i64,
    /// The process's start, as the system tells it; empty where it cannot.
    pub started: String,
}

/// What can be said of a run's owner from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    /// On another host: nothing can be told from here.
    Unknown,
}

impl RunOwner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            host: host_name(),
            pid: i64::from(pid),
            started: process_start(i64::from(pid)).unwrap_or_default(),
        }
    }

    /// Whether the owner still runs, as seen from this host. A process is the owner only if it
    /// started when the owner did: a pid given again (after a reboot, or PID 1 of a container
    /// started anew) is another process. A process that exists but cannot be inspected (another
    /// user's, under `hidepid`) is taken as alive: a live sync must never be closed.
    pub fn liveness(&self) -> Liveness {
        if self.host != host_name() {
            return Liveness::Unknown;
        }
        match process_start(self.pid) {
            Some(started) if self.started.is_empty() || started == self.started => Liveness::Alive,
            Some(_) => Liveness::Gone,
            None => signal_liveness(self.pid),
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The boot and the start time (in clock ticks since boot) of a process, from Linux's /proc;
/// `None` where the process does not exist or there is no /proc.
fn process_start(pid: i64) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; the start time is field 22.
    let start = after_name.split_whitespace().nth(19)?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    Some(format!("{}:{start}", boot.trim()))
}

/// Whether a pid exists, by `kill(pid, 0)`: it does when the signal could be sent, and also
/// when only the permission to send it is missing.
#[cfg(unix)]
fn signal_liveness(pid: i64) -> Liveness {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Liveness::Gone;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => Liveness::Alive,
        Err(rustix::io::Errno::PERM) => Liveness::Alive,
        Err(rustix::io::Errno::SRCH) => Liveness::Gone,
        Err(_) => Liveness::Unknown,
    }
}

#[cfg(not(unix))]
fn signal_liveness(_pid: i64) -> Liveness {
    Liveness::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        let me = RunOwner::current();
        assert_eq!(me.liveness(), Liveness::Alive);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        let started = process_start(pid);
        child.wait().unwrap();
        let finished = RunOwner {
            pid,
            started: started.unwrap_or_default(),
            ..me.clone()
        };
        assert_eq!(finished.liveness(), Liveness::Gone);
        let elsewhere = RunOwner {
            host: format!("{}-elsewhere", me.host),
            ..me.clone()
        };
        assert_eq!(elsewhere.liveness(), Liveness::Unknown);
    }

    #[test]
    fn a_pid_given_again_to_another_process_is_not_the_owner() {
        let me = RunOwner::current();
        let impostor = RunOwner {
            started: "another-boot:1".into(),
            ..me.clone()
        };
        // Our own pid with another start is an earlier process (PID 1 of a container started
        // anew): gone. So is a parent's pid with another start.
        if std::path::Path::new("/proc/self/stat").exists() {
            assert_eq!(impostor.liveness(), Liveness::Gone);
        }
        if std::path::Path::new("/proc/self/stat").exists() {
            let parent = std::fs::read_to_string("/proc/self/stat").unwrap();
            let after = &parent[parent.rfind(')').unwrap() + 1..];
            let ppid: i64 = after.split_whitespace().nth(1).unwrap().parse().unwrap();
            let reused = RunOwner {
                pid: ppid,
                started: "another-boot:1".into(),
                ..me
            };
            assert_eq!(reused.liveness(), Liveness::Gone);
        }
    }
}
