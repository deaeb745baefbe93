//! Which files are locked, and by whom, read from Linux's `/proc/locks` — without taking any
//! lock, so `status` never makes a real acquirer fail.

use std::collections::HashMap;

use super::mode::LockMode;

/// (device major, device minor, inode)
type FileId = (u32, u32, u64);

/// The kind of a granted lock, as `/proc/locks` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `flock(2)`.
    Flock,
    /// A POSIX record lock (`fcntl`, `lockf`), owned by a process.
    Posix,
    /// Anything else: open file description locks, leases, delegations.
    Other,
}

/// One granted lock: its kind, holder pid (`None` where the kernel gives none) and whether it
/// is a shared (read) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Granted {
    kind: Kind,
    pid: Option<u32>,
    read: bool,
}

/// The files with a granted lock at the time of reading.
#[derive(Debug, Default)]
pub(super) struct HeldFiles {
    holders: HashMap<FileId, Vec<Granted>>,
    /// False when `/proc/locks` could not be read: absence then proves nothing.
    complete: bool,
}

impl HeldFiles {
    pub(super) fn read() -> Self {
        match read_snapshot() {
            Ok(text) => HeldFiles {
                holders: parse(&text),
                complete: true,
            },
            Err(e) => {
                tracing::debug!(error = %e, "cannot read /proc/locks; lock status unknown");
                HeldFiles::default()
            }
        }
    }

    pub(super) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Who holds the file (device, inode): `None` when nobody does (or we cannot tell), else
    /// its holders, `; `-separated: `pid 4242`, `pid 4242 shared` for a read lock, `shared`
    /// alone for a read lock the kernel gives no pid for (an open-file-description lock);
    /// `Some(None)` when none of them can be described.
    pub(super) fn holders(&self, file: (u64, u64)) -> Option<Option<String>> {
        let locks = self.locks_on(file);
        if locks.is_empty() {
            return None;
        }
        let described: Vec<String> = locks
            .iter()
            .filter_map(|g| match (g.pid, g.read) {
                (Some(pid), false) => Some(format!("pid {pid}")),
                (Some(pid), true) => Some(format!("pid {pid} shared")),
                (None, true) => Some("shared".to_string()),
                (None, false) => None,
            })
            .collect();
        Some((!described.is_empty()).then(|| described.join("; ")))
    }

    /// True when the file has a lock other than the one this process holds on it in `mode`
    /// (an exclusive lock: no other of its kind can be granted beside it), or when we cannot
    /// tell. What `cleanup` asks before removing a file, since a POSIX lock and a `flock` do
    /// not see each other.
    pub(super) fn locked_by_others(&self, file: (u64, u64), mode: LockMode) -> bool {
        let me = std::process::id();
        let ours = |g: &Granted| match mode {
            LockMode::Flock => g.kind == Kind::Flock,
            LockMode::Fcntl => g.kind == Kind::Posix && g.pid == Some(me),
        };
        !self.complete || !self.locks_on(file).iter().all(ours)
    }

    fn locks_on(&self, (dev, ino): (u64, u64)) -> &[Granted] {
        let id = (libc::major(dev), libc::minor(dev), ino);
        self.holders.get(&id).map_or(&[], Vec::as_slice)
    }
}

/// Reads `/proc/locks` with one large `read(2)`. The kernel walks its lock list once per read
/// call, so small reads (as `read_to_string` makes) can skip entries when locks come and go
/// between them; one read into a buffer that holds the whole table is one consistent walk.
fn read_snapshot() -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open("/proc/locks")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut len = file.read(&mut buf)?;
    // A table larger than the buffer is read on; the rest is a second walk and may be off.
    while len == buf.len() {
        buf.resize(buf.len() * 2, 0);
        let n = file.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Lines look like `1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF`; waiters carry `->` after
/// the number and are skipped; the device is `major:minor` in hex, the inode in decimal.
fn parse(text: &str) -> HashMap<FileId, Vec<Granted>> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[1] == "->" {
            continue;
        }
        let kind = match fields[1] {
            "FLOCK" => Kind::Flock,
            "POSIX" => Kind::Posix,
            _ => Kind::Other,
        };
        let read = fields[3] == "READ";
        let pid = fields[4]
            .parse::<i64>()
            .ok()
            .and_then(|p| u32::try_from(p).ok().filter(|&p| p > 0));
        let mut dev = fields[5].split(':');
        let (Some(major), Some(minor), Some(ino)) = (dev.next(), dev.next(), dev.next()) else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(ino)) = (
            u32::from_str_radix(major, 16),
            u32::from_str_radix(minor, 16),
            ino.parse::<u64>(),
        ) else {
            continue;
        };
        out.entry((major, minor, ino))
            .or_insert_with(Vec::new)
            .push(Granted { kind, pid, read });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_granted_locks_and_skips_waiters() {
        let text = "1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 4243 00:2d:1234 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 77 fd:01:99 0 EOF\n\
                    3: OFDLCK ADVISORY  WRITE -1 08:11:5 0 EOF\n\
                    4: FLOCK  ADVISORY  READ  51 00:2d:77 0 EOF\n\
                    4: FLOCK  ADVISORY  READ  52 00:2d:77 0 EOF\n\
                    5: OFDLCK ADVISORY  READ  -1 08:11:6 0 4611686018427387903\n\
                    garbage\n";
        let held = parse(text);
        let one = |kind, pid| {
            vec![Granted {
                kind,
                pid,
                read: false,
            }]
        };
        assert_eq!(
            held.get(&(0, 0x2d, 1234)),
            Some(&one(Kind::Flock, Some(4242)))
        );
        assert_eq!(held.get(&(0xfd, 1, 99)), Some(&one(Kind::Posix, Some(77))));
        assert_eq!(held.get(&(8, 0x11, 5)), Some(&one(Kind::Other, None)));
        assert_eq!(held.len(), 5);
    }

    #[test]
    fn describes_exclusive_and_shared_holders() {
        let text = "1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF\n\
                    2: FLOCK  ADVISORY  READ  51 00:2d:77 0 EOF\n\
                    2: FLOCK  ADVISORY  READ  52 00:2d:77 0 EOF\n\
                    3: OFDLCK ADVISORY  READ  -1 08:11:6 0 4611686018427387903\n\
                    4: OFDLCK ADVISORY  WRITE -1 08:11:5 0 EOF\n";
        let held = HeldFiles {
            holders: parse(text),
            complete: true,
        };
        let dev = |major, minor| libc::makedev(major, minor);
        let of = |major, minor, ino| held.holders((dev(major, minor), ino));
        assert_eq!(of(0, 0x2d, 1234), Some(Some("pid 4242".into())));
        assert_eq!(
            of(0, 0x2d, 77),
            Some(Some("pid 51 shared; pid 52 shared".into()))
        );
        assert_eq!(of(8, 0x11, 6), Some(Some("shared".into())));
        assert_eq!(of(8, 0x11, 5), Some(None));
        assert_eq!(of(8, 0x11, 7), None);
    }
}
