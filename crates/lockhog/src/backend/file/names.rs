//! Lock names and namespaces as file and directory names: each a single path component, one
//! per name, that cannot be mistaken for another kind of entry of the lock directory.
//!
//! - A lock file is `<encoded name>.lock`: bytes outside `[A-Za-z0-9._-]` percent-encoded. A
//!   name whose encoding would pass the 255-byte file-name limit is shortened to a readable
//!   prefix, `~` and the SHA-256 of the name (`~` never occurs in an encoded name).
//! - A namespace directory is the encoded namespace, with a leading `.` and the `.` of a
//!   trailing `.lock` encoded as well (`%2E`): so it is never `.` or `..`, never hidden (like
//!   the fencing floor `.lockhog-fencing`), never taken for a lock file, and decodes back to the
//!   namespace. Too long an encoding is shortened like a long lock name.

use sha2::{Digest, Sha256};

use crate::name::{hex, percent_decode, percent_encode};

pub(super) const SUFFIX: &str = ".lock";
/// Longest file name most file systems accept.
const NAME_MAX: usize = 255;
/// Bytes of the encoded name kept in front of the digest when a name is too long.
const LONG_NAME_PREFIX: usize = 120;

fn keep_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
}

/// `encoded`, or a prefix of it, `~` and the digest of `original` when `encoded` plus
/// `reserve` bytes would not fit in a file name.
fn fit(encoded: String, original: &str, reserve: usize) -> String {
    if encoded.len() + reserve <= NAME_MAX {
        return encoded;
    }
    // Cut on a byte that starts no escape, so the prefix stays readable and decodable.
    let mut cut = LONG_NAME_PREFIX;
    while cut > 0 && encoded[..cut].rfind('%').is_some_and(|p| p + 3 > cut) {
        cut -= 1;
    }
    let digest = hex(&Sha256::digest(original.as_bytes()));
    format!("{}~{digest}", &encoded[..cut])
}

/// The lock file's name for lock `name`.
pub(super) fn file_name(name: &str) -> String {
    let stem = fit(percent_encode(name, keep_byte), name, SUFFIX.len());
    format!("{stem}{SUFFIX}")
}

/// The lock name a lock file stands for, when it can be recovered (not for shortened names).
pub(super) fn name_of(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(SUFFIX)?;
    if stem.contains('~') {
        return None;
    }
    percent_decode(stem)
}

/// True when `file` is a name [`file_name`] makes: only such files are lockhog's to remove.
pub(super) fn is_lock_file_name(file: &str) -> bool {
    let Some(stem) = file.strip_suffix(SUFFIX) else {
        return false;
    };
    match stem.rsplit_once('~') {
        // A shortened name: an encoded prefix, `~`, 64 lower-case hex digits.
        Some((prefix, digest)) => {
            digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && is_canonical_encoding(prefix)
        }
        None => name_of(file).is_some_and(|name| file_name(&name) == file),
    }
}

/// True when `text` is what [`percent_encode`] with [`keep_byte`] makes of some bytes: kept
/// bytes as they are, every other byte as `%XX` in upper case.
fn is_canonical_encoding(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some(pair) = text.get(i + 1..i + 3) else {
                return false;
            };
            let upper = pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'));
            if !upper || u8::from_str_radix(pair, 16).is_ok_and(keep_byte) {
                return false;
            }
            i += 3;
        } else if keep_byte(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// The subdirectory of the lock directory for `namespace` (not the default one).
pub(super) fn dir_name(namespace: &str) -> String {
    let mut encoded = percent_encode(namespace, keep_byte);
    if encoded.starts_with('.') {
        encoded.replace_range(..1, "%2E");
    }
    if let Some(stem) = encoded.strip_suffix(SUFFIX) {
        encoded = format!("{stem}%2E{}", &SUFFIX[1..]);
    }
    fit(encoded, namespace, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_single_safe_components() {
        assert_eq!(file_name("nightly-report"), "nightly-report.lock");
        assert_eq!(file_name("a b/../c"), "a%20b%2F..%2Fc.lock");
        assert_eq!(file_name("50%"), "50%25.lock");
        assert_eq!(file_name("é"), "%C3%A9.lock");
        assert_eq!(name_of("a%20b%2F..%2Fc.lock").as_deref(), Some("a b/../c"));
        assert_ne!(file_name("a b"), file_name("a%20b"));
    }

    #[test]
    fn long_names_keep_a_prefix_and_a_digest() {
        for name in [
            "x".repeat(1024),
            "é".repeat(512),
            format!("{}{}", "y".repeat(119), "é".repeat(300)),
        ] {
            let f = file_name(&name);
            assert!(f.len() <= NAME_MAX, "{} bytes", f.len());
            assert!(f.contains('~'));
            assert_eq!(name_of(&f), None);
            assert!(is_lock_file_name(&f), "{f}");
            let stem = f.split('~').next().unwrap();
            assert!(
                percent_decode(stem).is_some(),
                "prefix {stem:?} cut inside an escape"
            );
        }
        assert_ne!(file_name(&"x".repeat(1024)), file_name(&"x".repeat(1023)));
    }

    #[test]
    fn only_our_encoding_is_a_lock_file_name() {
        for ours in ["a.lock", "a%20b.lock", ".x.lock", "%C3%A9.lock"] {
            assert!(is_lock_file_name(ours), "{ours}");
        }
        for foreign in [
            "a b.lock",
            "a%20b",
            "é.lock",
            "a%2e.lock",
            "x~y.lock",
            ".lockhog-fencing",
            "a.LOCK",
        ] {
            assert!(!is_lock_file_name(foreign), "{foreign}");
        }
    }

    #[test]
    fn namespaces_stay_inside_and_apart() {
        assert_eq!(dir_name("jobs"), "jobs");
        assert_eq!(dir_name("a b"), "a%20b");
        assert_eq!(dir_name(".."), "%2E.");
        assert_eq!(dir_name("."), "%2E");
        assert_eq!(dir_name(".lockhog-fencing"), "%2Elockhog-fencing");
        assert_eq!(dir_name("x.lock"), "x%2Elock");
        assert_eq!(dir_name(".lock"), "%2Elock");
        assert_eq!(dir_name("a/b"), "a%2Fb");
        for ns in ["..", ".", "x.lock", ".hidden", "a b"] {
            assert_eq!(percent_decode(&dir_name(ns)).as_deref(), Some(ns));
        }
        assert!(dir_name(&"é".repeat(64)).len() <= NAME_MAX);
    }
}
