//! Whether a process the harness did not start (a command of `lockhog run`) can still run
//! code: read from `/proc`, with its start time so a reused pid is not mistaken for it.

/// A process as it was when first seen.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    start: u64,
}

/// The kernel's "this task is exiting" flag in `/proc/<pid>/stat` (PF_EXITING).
const PF_EXITING: u64 = 0x4;

/// (state, flags, start time) of `pid`.
fn stat(pid: u32) -> Option<(char, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields follow the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // Field 3 is fields[0]: state, 9: flags, 22: start time.
    let state = fields.first()?.chars().next()?;
    let flags = fields.get(6)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, flags, start))
}

/// Whether SIGKILL is pending for `pid`'s thread group: it runs no more of its own code.
fn kill_pending(pid: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("ShdPnd:")
                .or_else(|| l.strip_prefix("SigPnd:"))
        })
        .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .any(|mask| mask & (1 << (libc::SIGKILL - 1)) != 0)
}

impl Seen {
    /// `pid` now, if it runs.
    pub fn now(pid: u32) -> Option<Seen> {
        stat(pid).map(|(_, _, start)| Seen { pid, start })
    }

    /// False once the process has ended, is exiting, or has SIGKILL pending: it will run no
    /// more of its own instructions.
    pub fn may_run(&self) -> bool {
        match stat(self.pid) {
            Some((state, flags, start)) if start == self.start => {
                !matches!(state, 'Z' | 'X' | 'x')
                    && flags & PF_EXITING == 0
                    && !kill_pending(self.pid)
            }
            _ => false,
        }
    }
}
