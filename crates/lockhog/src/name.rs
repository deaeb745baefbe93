//! Lock names, namespaces and the stable digests backends derive their resources from.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The longest lock name accepted, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 1024;

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "lockhog";

/// A validated lock name: non-empty UTF-8 of at most [`MAX_NAME_BYTES`] bytes.
///
/// Any character is allowed, including spaces, quotes, `/` and NUL: each backend maps the name to
/// its own resource (a file name, an advisory-lock key, a Redis key) without splicing it into
/// SQL, Lua or shell.
///
/// # Examples
///
/// ```
/// use lockhog::LockName;
///
/// let name = LockName::new("nightly-report").unwrap();
/// assert_eq!(name.as_str(), "nightly-report");
/// assert!(LockName::new("").is_err());
/// assert!(LockName::new("x".repeat(1025)).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockName(String);

impl LockName {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when the name is empty or longer than [`MAX_NAME_BYTES`].
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::InvalidName {
                reason: "a lock name cannot be empty".into(),
            });
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(Error::InvalidName {
                reason: format!(
                    "a lock name is at most {MAX_NAME_BYTES} bytes, this one has {}",
                    name.len()
                ),
            });
        }
        Ok(LockName(name))
    }

    /// A name derived from any [`Hash`] value through SHA-256, the same on every run, machine
    /// and Rust version that hashes the value the same way: `sha256:<64 hex digits>`.
    ///
    /// std's `DefaultHasher` is never used: its output may change between releases, and two
    /// builds of one program would then disagree on which lock a value means.
    ///
    /// # Examples
    ///
    /// ```
    /// use lockhog::LockName;
    ///
    /// let a = LockName::from_hash(&("invoice", 42u64));
    /// let b = LockName::from_hash(&("invoice", 42u64));
    /// assert_eq!(a, b);
    /// assert!(a.as_str().starts_with("sha256:"));
    /// assert_ne!(a, LockName::from_hash(&("invoice", 43u64)));
    /// ```
    pub fn from_hash<H: Hash + ?Sized>(value: &H) -> Self {
        let mut hasher = StableHasher::default();
        value.hash(&mut hasher);
        LockName(format!("sha256:{}", hex(&hasher.digest.finalize())))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LockName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Feeds everything a `Hash` impl writes into SHA-256, with integers in little-endian so the
/// digest does not depend on the machine's byte order or pointer width.
#[derive(Default)]
struct StableHasher {
    digest: Sha256,
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let out = self.digest.clone().finalize();
        u64::from_le_bytes(out[..8].try_into().expect("sha256 has 32 bytes"))
    }
    fn write(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }
    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        self.write(&(i as u64).to_le_bytes());
    }
    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_usize(i as usize);
    }
}

/// What a backend turns into a resource: a name within its namespace, or a resource that
/// another program already locks under the store's own convention (a path, `advisory:42`, a
/// `GET_LOCK` string), written as the backend's
/// [`Backend::parse_resource`](crate::backend::Backend::parse_resource) returned it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockKey {
    namespace: String,
    name: LockName,
    foreign: Option<String>,
}

impl LockKey {
    /// A key for `name` under `namespace`.
    pub fn new(namespace: impl Into<String>, name: LockName) -> Self {
        LockKey {
            namespace: namespace.into(),
            name,
            foreign: None,
        }
    }

    /// A key for the foreign resource `resource`, in the form the backend's `parse_resource`
    /// returned. Its name (for messages and the `held` line) is `resource` itself, so it is
    /// refused, as a name would be, when empty or over [`MAX_NAME_BYTES`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for an empty resource or one over [`MAX_NAME_BYTES`].
    pub fn for_resource(namespace: impl Into<String>, resource: impl Into<String>) -> Result<Self> {
        let resource = resource.into();
        let name = LockName::new(resource.clone()).map_err(|_| Error::InvalidOption {
            reason: format!(
                "a resource is 1 to {MAX_NAME_BYTES} bytes, this one has {}",
                resource.len()
            ),
        })?;
        Ok(LockKey {
            namespace: namespace.into(),
            name,
            foreign: Some(resource),
        })
    }

    /// The foreign resource this key stands for, or `None` for a lock named by lockhog.
    /// Foreign resources live outside namespaces: the namespace is kept only for listing.
    pub fn foreign_resource(&self) -> Option<&str> {
        self.foreign.as_deref()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// SHA-256 of the namespace and name, length-prefixed so that no two (namespace, name)
    /// pairs share a digest input. Backends derive numeric keys and short identifiers from it.
    pub fn digest(&self) -> [u8; 32] {
        let mut d = Sha256::new();
        d.update((self.namespace.len() as u64).to_le_bytes());
        d.update(self.namespace.as_bytes());
        d.update(self.name.as_str().as_bytes());
        d.finalize().into()
    }
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Percent-encodes every byte of `text` for which `keep` is false, as `%XX` in upper case.
///
/// `keep` sees single bytes; keep or escape all bytes from 0x80 up alike, so that multi-byte
/// characters are either kept whole or escaped whole.
///
/// # Examples
///
/// ```
/// let line = lockhog::url::percent_encode("50% off é", |b| b > b' ' && b != b'%' && b != 0x7f);
/// assert_eq!(line, "50%25%20off%20é");
/// ```
pub fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = Vec::with_capacity(text.len());
    for &b in text.as_bytes() {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Decodes `%XX` sequences; `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hexpair = text.get(i + 1..i + 3)?;
            // `from_str_radix` alone would also take a sign: `%+1`.
            if !hexpair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hexpair, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(LockName::new("a").is_ok());
        assert!(LockName::new("é".repeat(512)).is_ok());
        assert!(LockName::new("x".repeat(MAX_NAME_BYTES)).is_ok());
        let err = LockName::new("x".repeat(MAX_NAME_BYTES + 1)).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{err}");
        assert!(LockName::new("with\0nul").is_ok());
    }

    #[test]
    fn hashed_names_are_stable() {
        // Pinned so that a change in how values are fed to the digest cannot slip by: two
        // versions of lockhog must agree on which lock a value names.
        assert_eq!(
            LockName::from_hash(&42u64).as_str(),
            "sha256:ed049108bc18f2c64369e8d0ea42850bdd1a7d1dd340cfde716315579702a76c"
        );
    }

    #[test]
    fn percent_round_trip() {
        let text = "a b%c/é\0";
        let enc = percent_encode(text, |b| b.is_ascii_alphanumeric());
        assert_eq!(enc, "a%20b%25c%2F%C3%A9%00");
        assert_eq!(percent_decode(&enc).as_deref(), Some(text));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%2f"), Some("/".into()));
    }
}
