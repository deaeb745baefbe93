//! The fenced resource: a register per lock that refuses a write carrying a token older than
//! the newest it has accepted (the storage service of Martin Kleppmann's article "How to do distributed locking").

use std::collections::HashMap;

/// One register per lock; each remembers the largest token it accepted.
#[derive(Debug, Default)]
pub struct Fence {
    newest: HashMap<u32, u64>,
}

impl Fence {
    /// Writes to `lock` with `token`: accepted when `token` is at least the newest accepted so
    /// far (the same holder writes more than once), refused when it is older.
    pub fn write(&mut self, lock: u32, token: u64) -> bool {
        let newest = self.newest.entry(lock).or_insert(0);
        if token < *newest {
            return false;
        }
        *newest = token;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Fence;

    #[test]
    fn refuses_older_tokens_per_lock() {
        let mut f = Fence::default();
        assert!(f.write(0, 5));
        assert!(f.write(0, 5), "the same holder writes again");
        assert!(f.write(1, 2), "another lock has its own register");
        assert!(!f.write(0, 4));
        assert!(f.write(0, 9));
        assert!(!f.write(0, 5));
    }
}
