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

    /// Whether the owner still runs, as seen from this host.
    pub fn liveness(&self) -> Liveness {
        if self.host != host_name() {
            return Liveness::Unknown;
        }
        if self.pid == i64::from(std::process::id()) {
            return Liveness::Alive;
        }
        match process_start(self.pid) {
            Some(started) if self.started.is_empty() || started == self.started => Liveness::Alive,
            Some(_) => Liveness::Gone,
            None if proc_is_readable() => Liveness::Gone,
            None => fallback_liveness(self.pid),
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

fn proc_is_readable() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

/// Without /proc: ask `kill -0`, which tells whether a pid exists (not whether it is the same
/// process).
fn fallback_liveness(pid: i64) -> Liveness {
    match std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Liveness::Alive,
        Ok(_) => Liveness::Gone,
        Err(_) => Liveness::Unknown,
    }
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
        // Our own pid is always alive; a parent's pid with another start is not its owner.
        assert_eq!(impostor.liveness(), Liveness::Alive);
        if proc_is_readable() {
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
