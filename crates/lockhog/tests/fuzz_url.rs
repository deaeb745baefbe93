//! Property tests ("fuzzing" on stable: cargo-fuzz needs a nightly toolchain) of backend URL
//! parsing and password redaction. Each target prints how many cases it ran.

mod fuzz_support;

use fuzz_support::{fuzz, PURE};
use lockhog::url::percent_encode;
use lockhog::url::{redact as redact_url, BackendUrl};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Any text, weighted towards URL syntax.
fn url_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("://".to_string()),
        Just("@".to_string()),
        Just(":".to_string()),
        Just("?".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        Just("%".to_string()),
        Just("/".to_string()),
        Just("#".to_string()),
        Just("password=".to_string()),
        "[a-z]{1,8}",
        "%[0-9A-Fa-fg]{0,2}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

#[test]
fn parse_and_redact_never_panic() {
    fuzz("parse/redact on arbitrary text", PURE, url_like(), |url| {
        let redacted = redact_url(&url);
        match BackendUrl::parse(&url) {
            Ok(mut parsed) => {
                prop_assert_eq!(parsed.redacted(), redacted.as_str());
                prop_assert!(!parsed.scheme().is_empty());
                prop_assert!(!parsed.scheme().contains(':'));
                let _ = parsed.take_option("namespace");
                let _ = parsed.finish();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        // Redacting twice changes nothing more.
        prop_assert_eq!(redact_url(&redacted), redacted.clone());
        Ok(())
    });
}

/// `scheme://user:PASSWORD@host:port/path?query`, the password marked so that it cannot occur
/// by chance in the other parts (lower-case letters and digits only).
fn url_with_password() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec![
            "postgres",
            "postgresql",
            "mysql",
            "redis",
            "rediss",
            "redlock",
            "memcached",
            "etcd",
            "file",
            "sqlite",
            "HTTP",
        ]),
        "[a-z0-9_.-]{0,10}",
        // userinfo characters, including the ones a careless parser trips on (`:` and `@`)
        "[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,16}",
        "[a-z0-9.-]{1,12}(:[0-9]{1,5})?(,[a-z0-9.]{1,8}:[0-9]{1,5}){0,2}",
        "(/[a-z0-9]{0,8})?",
        "(\\?[a-z]{1,6}=[a-z0-9%]{0,6}(&[a-z]{1,6}=[a-z0-9]{0,6}){0,2})?",
    )
        .prop_map(|(scheme, user, pw, host, path, query)| {
            let password = format!("PW{pw}XQ");
            (
                format!("{scheme}://{user}:{password}@{host}{path}{query}"),
                password,
            )
        })
}

#[test]
fn a_password_in_the_userinfo_never_survives_redaction() {
    fuzz(
        "userinfo passwords redacted",
        PURE,
        url_with_password(),
        |(url, pw)| {
            let redacted = redact_url(&url);
            prop_assert!(!redacted.contains(&pw), "{url} -> {redacted}");
            prop_assert!(redacted.contains(":***@"), "{url} -> {redacted}");
            if let Ok(parsed) = BackendUrl::parse(&url) {
                prop_assert!(!parsed.redacted().contains(&pw));
                let e = parsed.invalid("x").to_string();
                prop_assert!(!e.contains(&pw), "{e}");
                let mut parsed = parsed;
                parsed.take_option("namespace");
                if let Err(e) = parsed.finish() {
                    prop_assert!(!e.to_string().contains(&pw), "{e}");
                }
            }
            Ok(())
        },
    );
}

#[test]
fn a_password_query_option_never_survives_redaction() {
    let strategy = (
        "[a-z]{1,8}",
        "[A-Za-z0-9._~%-]{0,16}",
        prop::sample::select(vec!["password", "PASSWORD", "Password"]),
        "(&[a-z]{1,6}=[a-z0-9]{0,6}){0,3}",
    );
    fuzz(
        "?password= redacted",
        PURE,
        strategy,
        |(scheme, pw, key, more)| {
            let pw = format!("PW{pw}XQ");
            let url = format!("{scheme}://h/db?x=1&{key}={pw}{more}");
            let redacted = redact_url(&url);
            prop_assert!(!redacted.contains(&pw), "{url} -> {redacted}");
            if let Err(e) = BackendUrl::parse(&url).and_then(|u| u.finish()) {
                prop_assert!(!e.to_string().contains(&pw), "{e}");
            }
            Ok(())
        },
    );
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

#[test]
fn query_options_round_trip() {
    let options = prop::collection::btree_map(any::<String>(), any::<String>(), 0..6)
        .prop_filter("non-empty keys", |m| m.keys().all(|k| !k.is_empty()));
    fuzz(
        "query options round trip",
        PURE,
        ("[a-z][a-z0-9+.-]{0,8}", "[a-z0-9/]{0,12}", options),
        |(scheme, body, options)| {
            let query: Vec<String> = options
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        percent_encode(k, unreserved),
                        percent_encode(v, unreserved)
                    )
                })
                .collect();
            let url = if query.is_empty() {
                format!("{scheme}:{body}")
            } else {
                format!("{scheme}:{body}?{}", query.join("&"))
            };
            let mut parsed =
                BackendUrl::parse(&url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
            prop_assert_eq!(parsed.scheme(), scheme.to_ascii_lowercase());
            prop_assert_eq!(parsed.body(), body.as_str());
            for (k, v) in &options {
                let taken = parsed.take_option(k);
                prop_assert_eq!(taken.as_ref(), Some(v), "{}", url);
                prop_assert_eq!(parsed.take_option(k), None);
            }
            prop_assert!(parsed.finish().is_ok());
            Ok(())
        },
    );
}

/// Connecting with a password in the URL, to a backend that cannot be reached or a URL the
/// backend refuses: the error never carries the password. Only refused ports on 127.0.0.1 (a
/// few milliseconds each), so a few hundred cases.
#[test]
fn connect_errors_never_carry_the_password() {
    // Not file: or sqlite: here: a URL with a host part must not get the chance to create a
    // directory or database outside a temporary directory.
    let mut schemes = vec!["mem", "bogus"];
    if cfg!(feature = "postgres") {
        schemes.extend(["postgres", "postgresql"]);
    }
    if cfg!(feature = "mysql") {
        schemes.push("mysql");
    }
    if cfg!(feature = "redis") {
        schemes.extend(["redis", "redlock"]);
    }
    if cfg!(feature = "memcached") {
        schemes.push("memcached");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let strategy = (
        prop::sample::select(schemes),
        "[A-Za-z0-9._~!$&'()*+,;=:@-]{1,12}",
        "(/[a-z]{0,6})?",
        "(\\?[a-z]{1,8}=[a-z0-9]{0,4})?",
        any::<bool>(),
    );
    fuzz(
        "connect errors (refused ports)",
        300,
        strategy,
        |(scheme, pw, path, query, in_query)| {
            let pw = format!("PW{pw}XQ");
            let hosts = if scheme == "redlock" {
                "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"
            } else {
                "127.0.0.1:1"
            };
            let url = if in_query {
                format!(
                    "{scheme}://u@{hosts}{path}?password={}",
                    percent_encode(&pw, unreserved)
                )
            } else {
                format!("{scheme}://u:{pw}@{hosts}{path}{query}")
            };
            let outcome = rt.block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(60),
                    lockhog::Locker::connect(&url),
                )
                .await
            });
            let Ok(outcome) = outcome else {
                return Err(TestCaseError::fail(format!("{url}: connect hung")));
            };
            if let Err(e) = outcome {
                let mut text = format!("{e} {e:?}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(&format!(" {s} {s:?}"));
                    source = s.source();
                }
                prop_assert!(!text.contains(&pw), "{}", text);
                let encoded = percent_encode(&pw, unreserved);
                prop_assert!(!text.contains(&encoded), "{}", text);
            }
            Ok(())
        },
    );
}

/// Arbitrary passwords (any characters, weighted towards `#@/?% :`), percent-encoded into the
/// user info, or written raw: whatever lockhog parses as the password, in every form, is never
/// in the redacted URL nor in any error's text; an encoded one is always parsed whole.
#[test]
fn arbitrary_passwords_never_survive_redaction() {
    let password = prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec!["#", "@", "/", "?", "%", " ", ":", "&", "="])
                .prop_map(str::to_string),
            "%[0-9A-F]{2}",
            any::<char>().prop_map(String::from),
        ],
        1..12,
    )
    .prop_map(|v| format!("PW{}XQ", v.concat()));
    let strategy = (
        prop::sample::select(vec![
            "postgres", "mysql", "redis", "rediss", "redlock", "etcd", "etcds",
        ]),
        password,
        any::<bool>(),
        "(/[a-z]{1,6})?",
        "(\\?[a-z]{1,6}=[a-z0-9]{0,4})?",
    );
    fuzz(
        "arbitrary passwords, raw and encoded",
        PURE,
        strategy,
        |(scheme, pw, raw, path, query)| {
            let written = if raw {
                pw.clone()
            } else {
                percent_encode(&pw, unreserved)
            };
            let url = format!("{scheme}://app:{written}@h1:1,h2:2{path}{query}");
            let redacted = redact_url(&url);
            let parsed = BackendUrl::parse(&url);
            if !raw {
                let p = parsed
                    .as_ref()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(p.credentials(), Some(("app", Some(written.as_str()))));
                prop_assert_eq!(
                    redacted.clone(),
                    format!("{scheme}://app:***@h1:1,h2:2{path}{query}")
                );
            }
            // The password as lockhog reads it (for a raw one possibly a part of `pw`).
            let read = match &parsed {
                Ok(p) => p.credentials().and_then(|(_, p)| p).map(str::to_string),
                Err(_) => None,
            };
            let mut texts = vec![redacted];
            match parsed {
                Ok(mut p) => {
                    texts.push(format!("{p:?}"));
                    texts.push(p.invalid("x").to_string());
                    p.take_option("namespace");
                    if let Err(e) = p.finish() {
                        texts.push(format!("{e} {e:?}"));
                    }
                }
                Err(e) => texts.push(format!("{e} {e:?}")),
            }
            for read in read.iter().filter(|r| !r.is_empty()) {
                let decoded = lockhog::url::percent_decode(read).unwrap_or_else(|| read.clone());
                for form in [read.clone(), decoded, percent_encode(read, unreserved)] {
                    for text in &texts {
                        prop_assert!(!text.contains(&form), "{} in {}", form, text);
                    }
                }
            }
            if raw && read.as_deref() == Some(pw.as_str()) {
                for text in &texts {
                    prop_assert!(!text.contains(&pw), "{}", text);
                }
            }
            Ok(())
        },
    );
}
