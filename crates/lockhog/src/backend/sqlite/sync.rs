//! How hard a commit of the lock database waits for the disk: the `?synchronous=` option.

/// How hard a commit waits for the disk (`?synchronous=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sync {
    /// Every commit is on disk before it returns (SQLite's `FULL`): nothing is lost in a power
    /// cut or an OS crash. The default.
    Full,
    /// Commits reach the disk at WAL checkpoints (SQLite's `NORMAL` in WAL mode): an order of
    /// magnitude faster; as safe against a crashed process, but a power cut or an OS crash may
    /// lose the last commits, and so hand out fencing tokens again after the reboot.
    Normal,
}

impl Sync {
    pub(super) fn parse(text: &str) -> Option<Sync> {
        match text.to_ascii_lowercase().as_str() {
            "full" => Some(Sync::Full),
            "normal" => Some(Sync::Normal),
            _ => None,
        }
    }

    pub(super) fn pragma(self) -> &'static str {
        match self {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        }
    }
}
