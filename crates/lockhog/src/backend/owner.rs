//! Owner values of the lease backends (Redis, Redlock, memcached): unique per acquisition,
//! and saying which host and process holds the lock, for `status`.

use std::io::Write;
use std::sync::LazyLock;

/// A fresh owner value: 128 random bits in hex, then pid and host for `status`. Written
/// straight into one buffer, with one look at the pid: the lease backends make one per
/// acquire.
pub(crate) fn new_owner() -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let pid = std::process::id();
    let host = host();
    let mut out = Vec::with_capacity(32 + 12 + host.len());
    for b in random128(pid) {
        out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    }
    // Writing into memory does not fail.
    let _ = write!(out, "/{pid}/{host}");
    out
}

/// `host <h> pid <p>` from an owner value, for `status`.
pub(crate) fn describe_owner(owner: &[u8]) -> String {
    let text = String::from_utf8_lossy(owner);
    let mut parts = text.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(pid), Some(host)) => format!("host {host} pid {pid}"),
        _ => format!("owner {text:?}"),
    }
}

fn host() -> &'static str {
    static HOST: LazyLock<String> = LazyLock::new(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        match (rc, std::str::from_utf8(&buf[..end])) {
            (0, Ok(h)) if !h.is_empty() => h.replace('/', "_"),
            _ => "unknown".into(),
        }
    });
    &HOST
}

/// 128 bits from the OS's randomness (through std's SipHash keys), mixed with a counter, the
/// clock and the process id `pid` so that two calls never repeat (a forked child starts with
/// its parent's counter).
fn random128(pid: u32) -> [u8; 16] {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static SEED: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let a = SEED.hash_one((n, t, 0u8));
    let b = RandomState::new().hash_one((n, t, 1u8, pid));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owner is 32 lower-case hex digits, the pid and the host, and no two are alike.
    #[test]
    fn an_owner_is_hex_pid_and_host() {
        let owners: Vec<String> = (0..64)
            .map(|_| String::from_utf8(new_owner()).unwrap())
            .collect();
        for o in &owners {
            let mut parts = o.splitn(3, '/');
            let random = parts.next().unwrap();
            assert_eq!(random.len(), 32, "{o}");
            assert!(
                random
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{o}"
            );
            assert_eq!(parts.next(), Some(std::process::id().to_string().as_str()));
            assert_eq!(parts.next(), Some(host()));
        }
        let distinct: std::collections::HashSet<&String> = owners.iter().collect();
        assert_eq!(distinct.len(), owners.len());
    }
}
