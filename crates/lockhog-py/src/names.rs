//! Lock names from Python values: a `str` is the name itself; `bytes`, `int` and (nested)
//! tuples of those are named by a stable digest, as py-dspinlock (a Redis spinlock library
//! for Python) names its locks by a hash of any key.

use std::hash::{Hash, Hasher};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

/// A key to hash. Each variant feeds a tag byte, then a length where the value has one, then
/// its bytes (integers little-endian, lengths as 8 bytes): the documented encoding, so the
/// digest never depends on Rust's own `Hash` impls and can be recomputed in any language.
#[derive(Debug)]
pub(crate) enum Key {
    Str(String),
    Bytes(Vec<u8>),
    Int(i128),
    Tuple(Vec<Key>),
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            Key::Str(s) => {
                h.write_u8(b's');
                h.write_u64(s.len() as u64);
                h.write(s.as_bytes());
            }
            Key::Bytes(b) => {
                h.write_u8(b'b');
                h.write_u64(b.len() as u64);
                h.write(b);
            }
            Key::Int(i) => {
                h.write_u8(b'i');
                h.write_i128(*i);
            }
            Key::Tuple(items) => {
                h.write_u8(b't');
                h.write_u64(items.len() as u64);
                items.iter().for_each(|k| k.hash(h));
            }
        }
    }
}

/// A lock name as given from Python.
#[derive(Debug)]
pub(crate) enum Name {
    /// A `str`: used as it is.
    Plain(String),
    /// Anything else: hashed.
    Hashed(Key),
}

impl Name {
    pub(crate) fn extract(value: &Bound<'_, PyAny>) -> PyResult<Name> {
        if let Ok(s) = value.cast::<PyString>() {
            return Ok(Name::Plain(s.to_cow()?.into_owned()));
        }
        key(value).map(Name::Hashed)
    }

    /// The lock's name: the `str` as given, `sha256:<digest>` for a hashed key.
    pub(crate) fn to_name(&self) -> String {
        match self {
            Name::Plain(s) => s.clone(),
            Name::Hashed(k) => lockhog::LockName::from_hash(k).as_str().to_owned(),
        }
    }

    /// The request for this name on `locker`.
    pub(crate) fn request(&self, locker: &lockhog::Locker) -> lockhog::LockRequest {
        match self {
            Name::Plain(s) => locker.lock(s),
            Name::Hashed(k) => locker.lock_hashed(k),
        }
    }
}

fn key(value: &Bound<'_, PyAny>) -> PyResult<Key> {
    if let Ok(s) = value.cast::<PyString>() {
        Ok(Key::Str(s.to_cow()?.into_owned()))
    } else if let Ok(b) = value.cast::<PyBytes>() {
        Ok(Key::Bytes(b.as_bytes().to_vec()))
    } else if let Ok(t) = value.cast::<PyTuple>() {
        t.iter()
            .map(|item| key(&item))
            .collect::<PyResult<_>>()
            .map(Key::Tuple)
    } else if let Ok(i) = value.extract::<i128>() {
        Ok(Key::Int(i))
    } else {
        Err(PyTypeError::new_err(format!(
            "a lock name is a str, or bytes, an int (128 bits) or a tuple of those, not {}",
            value.get_type().name()?
        )))
    }
}

/// The name a non-`str` key stands for: `sha256:<64 hex digits>` (a `str` is returned as it
/// is).
#[pyfunction]
pub(crate) fn hashed_name(key: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(Name::extract(key)?.to_name())
}
