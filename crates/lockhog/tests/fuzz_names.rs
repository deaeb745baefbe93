//! Property tests ("fuzzing" on stable: cargo-fuzz needs a nightly toolchain) of lock names and
//! their mapping to each backend's resource: validation, percent-encoding, the file backend's
//! file names and namespace directories, Postgres advisory keys, MySQL lock strings, memcached
//! keys, and the RESOURCE of every backend a locker can be made for here. Each target prints how many cases it ran.

mod fuzz_support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use fuzz_support::{fuzz, PURE};
use lockhog::url::{percent_decode, percent_encode};
use lockhog::{LockName, Locker, MAX_NAME_BYTES};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Valid names: short and long, ASCII and not, with the bytes that matter (`%`, `/`, `.`, NUL,
/// spaces, quotes), up to the 1,024-byte limit.
fn name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9._-]{1,8}",
        Just("%".to_string()),
        Just("/".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("\0".to_string()),
        Just(" ".to_string()),
        Just("~".to_string()),
        Just("'\"`$;".to_string()),
        "%[0-9A-F]{2}",
        any::<char>().prop_map(String::from),
        // Long runs, cheaply (a regex strategy draws every character on its own).
        (b'a'..=b'z', 200usize..400).prop_map(|(c, n)| char::from(c).to_string().repeat(n)),
    ];
    prop::collection::vec(piece, 1..8)
        .prop_map(|v| {
            let mut s = v.concat();
            while s.len() > MAX_NAME_BYTES {
                s.pop();
            }
            s
        })
        .prop_filter("non-empty", |s| !s.is_empty())
}

#[test]
fn lock_name_validation() {
    fuzz(
        "LockName::new on arbitrary text",
        PURE,
        prop_oneof![any::<String>(), "[a-z]{1000,1100}", "é{500,520}"],
        |s| {
            let ok = !s.is_empty() && s.len() <= MAX_NAME_BYTES;
            match LockName::new(s.clone()) {
                Ok(n) => {
                    prop_assert!(ok);
                    prop_assert_eq!(n.as_str(), s.as_str());
                }
                Err(e) => {
                    prop_assert!(!ok, "{s:?}: {e}");
                    let invalid_name = matches!(e, lockhog::Error::InvalidName { .. });
                    prop_assert!(invalid_name, "{e}");
                }
            }
            Ok(())
        },
    );
}

#[test]
fn percent_round_trip() {
    // `keep`: a set of ASCII bytes other than `%`, plus all bytes from 0x80 up or none.
    let strategy = (any::<String>(), any::<[u64; 2]>(), any::<bool>());
    fuzz(
        "percent_encode/percent_decode round trip",
        PURE,
        strategy,
        |(text, mask, high)| {
            let keep = |b: u8| {
                if b >= 0x80 {
                    high
                } else {
                    b != b'%' && mask[(b / 64) as usize] & (1 << (b % 64)) != 0
                }
            };
            let enc = percent_encode(&text, keep);
            for &b in enc.as_bytes() {
                prop_assert!(b == b'%' || b.is_ascii_hexdigit() || keep(b), "{enc:?}");
            }
            prop_assert_eq!(percent_decode(&enc), Some(text));
            Ok(())
        },
    );
    fuzz(
        "percent_decode on arbitrary text",
        PURE,
        prop_oneof![any::<String>(), "(%[0-9a-fA-Fg]{0,2}|[a-z])*"],
        |text| {
            if let Some(dec) = percent_decode(&text) {
                if !text.contains('%') {
                    prop_assert_eq!(dec, text);
                }
            }
            Ok(())
        },
    );
}

/// Distinct names seen so far by one mapping, to catch two names sharing a resource.
struct Distinct(Mutex<HashMap<String, String>>);

impl Distinct {
    fn new() -> Self {
        Distinct(Mutex::new(HashMap::new()))
    }
    fn check(&self, name: &str, resource: String) -> Result<(), TestCaseError> {
        let mut seen = self.0.lock().unwrap();
        if let Some(other) = seen.get(&resource) {
            prop_assert_eq!(other, name, "two names share {}", resource);
        }
        seen.insert(resource, name.to_string());
        Ok(())
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The file backend: a lock file's name is one safe path component of at most 255 bytes, in
/// the locker's directory, the same every time, and no two names share one. A sample of the
/// names is also locked for real, so the file system accepts the names too.
#[test]
fn file_names_are_single_safe_components() {
    let rt = rt();
    // 10,000 names in the default mode; the fcntl mode and a namespace subdirectory (whose
    // mapping adds one component) share the rest of the code, so fewer there.
    for (query, cases) in [
        ("", PURE),
        ("?mode=fcntl", 2_000),
        ("?namespace=other%2F..%00ns", 2_000),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}{query}", dir.path().display());
        let (a, b) = rt.block_on(async {
            (
                Locker::connect(&url).await.unwrap(),
                Locker::connect(&url).await.unwrap(),
            )
        });
        let seen = Distinct::new();
        let locked = AtomicU64::new(0);
        fuzz(
            &format!("file{query} resources"),
            cases,
            (name(), 0u32..100),
            |(name, dice)| {
                let res = a.resource(&name).unwrap();
                prop_assert_eq!(&res, &b.resource(&name).unwrap());
                let path = Path::new(&res);
                prop_assert!(path.is_absolute());
                prop_assert!(path.starts_with(dir.path()), "{res}");
                let file = path.file_name().expect("a file name").as_encoded_bytes();
                prop_assert!(file.len() <= 255, "{} bytes: {res}", file.len());
                prop_assert!(!file.contains(&b'/') && !file.contains(&0));
                prop_assert!(file != b"." && file != b"..");
                // Only the namespace may add a directory, never the name.
                let depth = path.strip_prefix(dir.path()).unwrap().components().count();
                prop_assert_eq!(
                    depth,
                    if query.contains("namespace") { 2 } else { 1 },
                    "{}",
                    res
                );
                seen.check(&name, res)?;
                if dice == 0 {
                    locked.fetch_add(1, Ordering::Relaxed);
                    rt.block_on(async {
                        let g = a.lock(&name).try_acquire().await.unwrap();
                        assert!(b
                            .lock(&name)
                            .try_acquire()
                            .await
                            .unwrap_err()
                            .is_not_acquired());
                        assert_eq!(g.resource(), a.resource(&name).unwrap());
                        g.release().await.unwrap();
                    });
                }
                Ok(())
            },
        );
        eprintln!(
            "fuzz file{query}: {} distinct names, {} locked for real",
            seen.len(),
            locked.load(Ordering::Relaxed)
        );
    }
}

/// Namespaces: any string of 1 to 128 bytes (but the default namespace's own name) maps to
/// one directory directly inside the lock directory, never `.`, `..`, hidden (the fencing
/// floor is `.lockhog-fencing`) or ending in `.lock` (a lock file's name), decodable back to
/// the namespace unless shortened, and no two namespaces share one. A sample is locked for
/// real, so the file system accepts the names too.
#[test]
fn file_namespaces_are_single_components_inside_the_lock_directory() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let root = rt.block_on(Locker::connect(&url)).unwrap();
    let seen = Distinct::new();
    let locked = AtomicU64::new(0);
    let namespace = prop_oneof![
        any::<String>(),
        "[.]{1,3}(lock|lockhog-fencing)?",
        "[a-z.]{0,6}[.]lock",
        (name(), "[.~/%]{0,2}").prop_map(|(n, s)| format!("{s}{n}")),
        "é{40,64}",
    ]
    .prop_map(|mut s| {
        while s.len() > 128 {
            s.pop();
        }
        s
    })
    .prop_filter("a namespace of its own", |s| {
        !s.is_empty() && s != "lockhog"
    });
    fuzz(
        "file namespace directories",
        PURE,
        (namespace, 0u32..100),
        |(ns, dice)| {
            let locker = root.with_namespace(&ns).unwrap();
            let res = locker.resource("x").unwrap();
            let rel = Path::new(&res).strip_prefix(dir.path()).unwrap();
            let parts: Vec<&[u8]> = rel.iter().map(|c| c.as_encoded_bytes()).collect();
            prop_assert_eq!(parts.len(), 2, "{}", res);
            let sub = std::str::from_utf8(parts[0]).expect("ASCII");
            prop_assert!(sub.len() <= 255, "{} bytes: {res}", sub.len());
            prop_assert!(!sub.contains(['/', '\0']), "{res}");
            prop_assert!(sub != "." && sub != "..", "{res}");
            prop_assert!(!sub.starts_with('.'), "{res}");
            prop_assert!(!sub.ends_with(".lock"), "{res}");
            if !sub.contains('~') {
                prop_assert_eq!(percent_decode(sub), Some(ns.clone()));
            }
            seen.check(&ns, sub.to_string())?;
            if dice == 0 {
                locked.fetch_add(1, Ordering::Relaxed);
                rt.block_on(async {
                    let g = locker.lock("x").try_acquire().await.unwrap();
                    let other = root.lock("x").try_acquire().await;
                    let other = other.unwrap_or_else(|e| panic!("{ns:?} aliases: {e}"));
                    other.release().await.unwrap();
                    g.release().await.unwrap();
                });
            }
            Ok(())
        },
    );
    eprintln!(
        "fuzz file namespaces: {} distinct, {} locked for real",
        seen.len(),
        locked.load(Ordering::Relaxed)
    );
}

/// The resource of every backend a locker can be made for without a server (mem:, sqlite:) or
/// whose server scripts/test started (the URL in the environment): the same every time, and no
/// two names share one.
#[test]
fn resources_are_deterministic_and_distinct() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![("mem".to_string(), "mem:".to_string())];
    if cfg!(feature = "sqlite") {
        urls.push((
            "sqlite".into(),
            format!("sqlite://{}/locks.db", dir.path().display()),
        ));
    }
    for (label, var) in [
        ("redis", "LOCKHOG_TEST_REDIS_URL"),
        ("redlock", "LOCKHOG_TEST_REDLOCK_URL"),
        ("memcached", "LOCKHOG_TEST_MEMCACHED_URL"),
        ("etcd", "LOCKHOG_TEST_ETCD_URL"),
        ("postgres", "LOCKHOG_TEST_POSTGRES_URL"),
        ("mysql", "LOCKHOG_TEST_MYSQL_URL"),
    ] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => urls.push((label.into(), url)),
            // A resource is computed without I/O; the server only has to exist to connect.
            _ => eprintln!("fuzz resources: {label} not covered, {var} is not set"),
        }
    }
    for (label, url) in urls {
        let Ok((a, b)) = rt.block_on(async {
            Ok::<_, lockhog::Error>((Locker::connect(&url).await?, Locker::connect(&url).await?))
        }) else {
            // The backend is not in this build (its feature is off).
            eprintln!("fuzz resources: {label} not in this build");
            continue;
        };
        let seen = Distinct::new();
        // The mapping functions behind these have their own 10,000-case targets (below) or
        // are the same digest: 2,000 names per backend through the locker.
        fuzz(&format!("{label} resources"), 2_000, name(), |name| {
            let res = a.resource(&name).unwrap();
            prop_assert_eq!(&res, &b.resource(&name).unwrap());
            prop_assert!(!res.is_empty());
            seen.check(&name, res)
        });
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_advisory_keys() {
    use lockhog::backend::postgres::{advisory_key, resource};
    let seen = Distinct::new();
    fuzz(
        "postgres advisory_key",
        PURE,
        (name(), "[a-z]{1,8}"),
        |(name, ns)| {
            let key = advisory_key(&ns, &name).unwrap();
            prop_assert_eq!(key, advisory_key(&ns, &name).unwrap());
            prop_assert_eq!(resource(key), format!("advisory:{key}"));
            seen.check(&format!("{ns}\0{name}"), key.to_string())
        },
    );
    fuzz(
        "postgres advisory_key on arbitrary text",
        PURE,
        any::<String>(),
        |name| {
            prop_assert_eq!(
                advisory_key("lockhog", &name).is_ok(),
                !name.is_empty() && name.len() <= MAX_NAME_BYTES
            );
            Ok(())
        },
    );
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_lock_strings() {
    use lockhog::backend::mysql::lock_string;
    let seen = Distinct::new();
    fuzz(
        "mysql lock_string",
        PURE,
        (name(), "[a-z]{1,8}"),
        |(name, ns)| {
            let s = lock_string(&ns, &name).unwrap();
            prop_assert_eq!(&s, &lock_string(&ns, &name).unwrap());
            // GET_LOCK's limit, in characters.
            prop_assert!(s.chars().count() <= 64, "{s:?}");
            prop_assert!(!s.contains(['\'', '"', '\\', '\0', '`']), "{s:?}");
            seen.check(&format!("{ns}\0{name}"), s)
        },
    );
}

#[cfg(feature = "memcached")]
#[test]
fn memcached_keys() {
    use lockhog::backend::memcached::lock_key;
    use lockhog::backend::LockKey;
    let seen = Distinct::new();
    fuzz(
        "memcached lock_key",
        PURE,
        (
            name(),
            any::<String>().prop_filter("1..=128 bytes", |s| !s.is_empty() && s.len() <= 128),
        ),
        |(name, ns)| {
            let key = lock_key(&LockKey::new(
                ns.clone(),
                LockName::new(name.clone()).unwrap(),
            ));
            prop_assert_eq!(
                &key,
                &lock_key(&LockKey::new(
                    ns.clone(),
                    LockName::new(name.clone()).unwrap()
                ))
            );
            // The text protocol's key rules: at most 250 bytes, no spaces or control bytes.
            prop_assert!(key.len() <= 250, "{} bytes", key.len());
            prop_assert!(key.bytes().all(|b| b > b' ' && b != 0x7f), "{key:?}");
            seen.check(&format!("{ns}\0{name}"), key)
        },
    );
}
