//! Security of passwords and lock names, through the CLI (SECURITY.md has the promises):
//!
//! - passwords in backend URLs never reach stdout or stderr: `hold`, `run`, `status` and
//!   `cleanup` with `RUST_LOG=trace`, against every server backend, with a wrong password and,
//!   where the test servers have password-protected users, a correct one (a user made here with
//!   a distinctive password: the scripts' `lockhog:lockhog` would match the program's own
//!   name); every byte of both streams is searched, raw and percent-encoded;
//! - lock names reach SQL, Lua, memcached's text protocol and the shell only as data: locks
//!   named like injections are taken on every server backend, and the server state is checked
//!   intact afterwards (the fencing sequence or table, keys set before, a lock held meanwhile by
//!   another process, no file created by a `$(touch …)` name).
//!
//! Servers come from `LOCKHOG_TEST_*_URL` (scripts/test): unset, a case is skipped with a
//! printed reason, or fails under `CI=true`. etcd's shared cluster has no auth, so the right
//! password is tried on an etcd of this test's own (TLS only, client certificates, auth on:
//! lockhog's tests/tls_support), which needs `etcd` and `openssl` the same way.

#[path = "secrets/common.rs"]
mod common;
#[path = "secrets/names.rs"]
mod names;
#[path = "secrets/passwords.rs"]
mod passwords;
// lockhog's own TLS test support (certificates by openssl, a TLS-only etcd), shared rather
// than copied so both crates test against the same server setup.
#[path = "../../lockhog/tests/tls_support/mod.rs"]
mod tls_support;
