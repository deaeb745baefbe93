//! Owner values of the lease backends (Redis, Redlock, memcached): unique per acquisition,
//! and saying which host and process holds the lock, for `status`.

use std::sync::LazyLock;

use crate::name::hex;

/// A fresh owner value: 128 random bits, then pid and host for `status`.
pub(crate) fn new_owner() -> Vec<u8> {
    format!("{}/{}/{}", random_hex128(), std::process::id(), host()).into_bytes()
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

/// 128 bits from the OS's randomness (through std's SipHash keys), mixed with a counter and
/// the clock so that two calls never repeat.
fn random_hex128() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static SEED: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let a = SEED.hash_one((n, t, 0u8));
    let b = RandomState::new().hash_one((n, t, 1u8, std::process::id()));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    hex(&bytes)
}
