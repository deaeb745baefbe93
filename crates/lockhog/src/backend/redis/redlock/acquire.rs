//! One attempt: the acquire script on every node, the fencing raise round once a majority
//! granted, and the undo on every node when the attempt fails or is dropped (see "How it
//! works" in the [module docs](super)).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::quorum::{
    drift, no_majority, node_timeout, quorum, release_all, script_on_all, Node, QuorumLease,
};
use super::{RedlockBackend, RedlockHeld};
use crate::backend::lease::steal_after_of;
use crate::backend::lease::Renewal;
use crate::backend::owner::new_owner;
use crate::backend::redis::call::Call;
use crate::backend::redis::scripts::{self, Ask};
use crate::backend::redis::{fence_of, lock_key, release_channel, since_key, ttl_of};
use crate::backend::{AcquireContext, Acquired};
use crate::error::{Error, Result};
use crate::name::LockKey;

/// Undoes a dropped attempt on every node in the background.
struct Undo {
    nodes: Option<Arc<[Node]>>,
    key: Vec<u8>,
    since: Option<Vec<u8>>,
    owner: Vec<u8>,
    channel: Vec<u8>,
    limit: Duration,
}

impl Undo {
    fn disarm(mut self) {
        self.nodes = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        let Some(nodes) = self.nodes.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (key, since, owner, channel, limit) = (
            std::mem::take(&mut self.key),
            self.since.take(),
            std::mem::take(&mut self.owner),
            std::mem::take(&mut self.channel),
            self.limit,
        );
        rt.spawn(async move {
            release_all(&nodes, &key, since.as_deref(), &owner, &channel, limit).await;
        });
    }
}

pub(super) enum Attempt {
    Acquired(Acquired<RedlockHeld>),
    /// Not acquired; the shortest remaining ttl among the nodes held by others (ms, or -1),
    /// and whether the votes were split (some nodes granted, too few).
    Busy {
        pttl: i64,
        split: bool,
    },
}

impl RedlockBackend {
    pub(super) async fn attempt(&self, key: &LockKey, ctx: &AcquireContext) -> Result<Attempt> {
        let ttl = ttl_of(ctx);
        let steal_after = steal_after_of(&ctx.options, ttl, key.foreign_resource().is_some())?;
        let limit = node_timeout(ttl);
        let n = self.nodes.len();
        let lock = lock_key(key);
        let fence = fence_of(key).filter(|_| ctx.options.fencing);
        let channel = release_channel(key);
        let owner = new_owner();
        let since = since_key(key);
        let undo = Undo {
            nodes: Some(self.nodes.clone()),
            key: lock.clone(),
            since: since.clone(),
            owner: owner.clone(),
            channel: channel.clone(),
            limit,
        };
        let started = Instant::now();
        let votes: Vec<Result<(i64, i64)>> = script_on_all(
            &self.nodes,
            limit,
            &scripts::acquire(
                key,
                &Ask {
                    owner: &owner,
                    ttl,
                    steal_after,
                    waiter: &[],
                    fenced: fence.is_some(),
                },
            ),
        )
        .await;
        let granted: Vec<u64> = votes
            .iter()
            .filter_map(|v| match v {
                Ok((1, token)) => Some(*token as u64),
                _ => None,
            })
            .collect();
        let errors: Vec<&Error> = votes.iter().filter_map(|r| r.as_ref().err()).collect();
        let pttl = votes
            .iter()
            .filter_map(|v| match v {
                Ok((0, p)) if *p >= 0 => Some(*p),
                _ => None,
            })
            .min()
            .unwrap_or(-1);

        let mut won = None;
        if granted.len() >= quorum(n) {
            let confirmed = match &fence {
                // A foreign resource has no counter to raise: the majority's grants are the
                // lock.
                None => Some(None),
                Some(fence) => {
                    let token = *granted.iter().max().expect("a majority is not empty");
                    let raised: Vec<Result<i64>> = script_on_all(
                        &self.nodes,
                        limit,
                        Call::new(&scripts::QUORUM_RAISE, 2)
                            .key(&lock)
                            .key(fence)
                            .arg(&owner)
                            .arg(token),
                    )
                    .await;
                    let raised_on = raised.iter().filter(|r| matches!(r, Ok(1))).count();
                    (raised_on >= quorum(n)).then_some(Some(token))
                }
            };
            let valid_until = started + ttl.saturating_sub(drift(ttl));
            if let Some(token) = confirmed.filter(|_| Instant::now() < valid_until) {
                won = Some((token, valid_until));
            }
        }

        let Some((token, valid_until)) = won else {
            // Give back what we got, and wait for it, so our own leftovers do not block us.
            if !granted.is_empty() {
                let since = since.as_deref();
                release_all(&self.nodes, &lock, since, &owner, &channel, limit).await;
            }
            undo.disarm();
            if n - errors.len() < quorum(n) {
                return Err(no_majority("acquiring a lock", &errors, n));
            }
            return Ok(Attempt::Busy {
                pttl,
                split: !granted.is_empty(),
            });
        };
        undo.disarm();
        let renewal = Renewal::spawn(
            QuorumLease {
                nodes: self.nodes.clone(),
                key: lock.clone(),
                since: since.clone(),
                owner: owner.clone(),
                ttl,
            },
            ttl,
            valid_until,
            ctx.lost.clone(),
        );
        Ok(Attempt::Acquired(Acquired {
            held: RedlockHeld {
                nodes: self.nodes.clone(),
                key: lock,
                since,
                channel,
                owner,
                renewal,
                runtime: tokio::runtime::Handle::current(),
            },
            token,
        }))
    }
}
