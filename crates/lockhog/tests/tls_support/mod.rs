//! Test certificates made by `openssl` in a test's own directory: certificate authorities,
//! and server and client certificates signed by them. P-256 keys (fast to make), PKCS#8 PEM,
//! valid for one day. With the `etcd` feature, [`etcd`] runs a TLS-only etcd on them.

#![allow(dead_code)]

#[cfg(feature = "etcd")]
pub mod etcd;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A missing tool or server: a failure under `CI=true` (where everything must run), else a
/// line saying what was skipped. The caller returns after it.
pub fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {what}");
    }
    eprintln!("skipped: {what}");
}

/// 64 random bits in hex: names and passwords no other test (or earlier run) uses.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when an `openssl` command can be run at all (its absence is a skip, not a failure).
pub fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `openssl ARGS` in `dir`; a failure panics with openssl's own message.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PEM certificate and its private key.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate authority of the test's own, in `<dir>/<name>.pem` and `<dir>/<name>.key`.
#[derive(Debug, Clone)]
pub struct Ca {
    dir: PathBuf,
    name: String,
    pub pair: Pair,
}

impl Ca {
    /// A new self-signed CA named `name` (its files' stem, and part of its subject).
    pub fn new(dir: &Path, name: &str) -> Ca {
        let pair = Pair {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN=lockhog test {name}"),
                "-keyout",
                &pair.key.display().to_string(),
                "-out",
                &pair.cert.display().to_string(),
            ],
        );
        Ca {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            pair,
        }
    }

    /// The CA certificate (the file a client or server trusts).
    pub fn cert(&self) -> &Path {
        &self.pair.cert
    }

    /// A certificate for the subject `cn` signed by this CA, in `<dir>/<name>.pem` and
    /// `<dir>/<name>.key`, with the X.509v3 extension lines `extensions` (e.g.
    /// `subjectAltName=IP:127.0.0.1`).
    pub fn issue(&self, name: &str, cn: &str, extensions: &[&str]) -> Pair {
        let pair = Pair {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        };
        let csr = self.dir.join(format!("{name}.csr"));
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext, extensions.join("\n") + "\n").expect("write the extensions file");
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &pair.key.display().to_string(),
                "-out",
                &csr.display().to_string(),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr.display().to_string(),
                "-CA",
                &self.pair.cert.display().to_string(),
                "-CAkey",
                &self.pair.key.display().to_string(),
                // Each CA keeps its own serial file, so two CAs in one directory do not share.
                "-CAserial",
                &self
                    .dir
                    .join(format!("{}.srl", self.name))
                    .display()
                    .to_string(),
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext.display().to_string(),
                "-out",
                &pair.cert.display().to_string(),
            ],
        );
        pair
    }
}
