//! Per-client resource limits.
//!
//! DOC: what one client may hold
//!
//! Every client gets its own budget ([`ClientLimits`], set on the command
//! line) for what costs the compositor memory or file descriptors:
//!
//! * `params`: live `zwp_linux_buffer_params_v1` objects. A params object
//!   holds at most four plane fds (smithay refuses a fifth plane), so this
//!   also bounds the fds parked in params objects;
//! * `dmabufs`: live dma-buf `wl_buffer`s;
//! * `fds`: the plane fds those buffers hold;
//! * `held_commits`: commits held on a fence, an acquire point or a CPU copy,
//!   plus every later commit of the same surface queued behind one
//!   ([`crate::buffer_sync::hold`]);
//! * `timelines`: imported `wp_linux_drm_syncobj_timeline_v1` objects (a
//!   syncobj handle each; points are bounded by the held commits).
//!
//! A request that would pass a limit disconnects that client with the
//! `wl_display` error `no_memory`, as libwayland's `wl_client_post_no_memory`
//! does, and logs which limit it reached. Nothing else is touched: other
//! clients keep their objects and their frame rate.
//!
//! Counts live in [`ClientUsage`], one per client inside its `ClientState`;
//! each unit taken is a [`Charge`] that gives it back when dropped, so the
//! object that holds the resource (a params entry, a buffer entry, a commit
//! blocker, a timeline's user data) also holds its charge and nothing has to
//! remember to decrement. Atomics because wayland-server requires client
//! data to be `Send + Sync`.

use std::sync::{
    atomic::{AtomicU32, AtomicU64, Ordering},
    Arc,
};

use serde::{Deserialize, Serialize};

use smithay::reexports::wayland_server::{Client, DisplayHandle};
use tracing::warn;

use crate::state::ClientState;

/// The per-client budget (command-line flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ClientLimits {
    /// Per client: live zwp_linux_buffer_params_v1 objects.
    #[arg(long = "max-client-params", value_name = "N", default_value_t = 64)]
    pub params: u32,
    /// Per client: live dma-buf wl_buffers.
    #[arg(long = "max-client-dmabufs", value_name = "N", default_value_t = 1024)]
    pub dmabufs: u32,
    /// Per client: dma-buf plane fds held by its wl_buffers.
    #[arg(long = "max-client-fds", value_name = "N", default_value_t = 4096)]
    pub fds: u32,
    /// Per client: commits held on fences or copies, or queued behind one.
    #[arg(long = "max-client-held-commits", value_name = "N", default_value_t = 256)]
    pub held_commits: u32,
    /// Per client: imported wp_linux_drm_syncobj_timeline_v1 objects.
    #[arg(long = "max-client-timelines", value_name = "N", default_value_t = 1024)]
    pub timelines: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            params: 64,
            dmabufs: 1024,
            fds: 4096,
            held_commits: 256,
            timelines: 1024,
        }
    }
}

/// What a [`Charge`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Params,
    Dmabufs,
    Fds,
    HeldCommits,
    Timelines,
}

const RESOURCES: usize = 5;

impl Budget {
    fn index(self) -> usize {
        self as usize
    }

    /// The flag that sets this limit, for the log line.
    pub fn flag(self) -> &'static str {
        match self {
            Budget::Params => "--max-client-params",
            Budget::Dmabufs => "--max-client-dmabufs",
            Budget::Fds => "--max-client-fds",
            Budget::HeldCommits => "--max-client-held-commits",
            Budget::Timelines => "--max-client-timelines",
        }
    }

    fn limit(self, limits: &ClientLimits) -> u32 {
        match self {
            Budget::Params => limits.params,
            Budget::Dmabufs => limits.dmabufs,
            Budget::Fds => limits.fds,
            Budget::HeldCommits => limits.held_commits,
            Budget::Timelines => limits.timelines,
        }
    }
}

/// One client's counts and the limits they are checked against.
#[derive(Debug, Default)]
pub struct ClientUsage {
    limits: ClientLimits,
    used: [AtomicU32; RESOURCES],
}

/// A limit that a request would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{resource:?}: {used} in use, {asked} more asked, limit {limit} ({flag})", flag = resource.flag())]
pub struct LimitExceeded {
    pub resource: Budget,
    pub used: u32,
    pub asked: u32,
    pub limit: u32,
}

impl ClientUsage {
    pub fn new(limits: ClientLimits) -> Arc<ClientUsage> {
        Arc::new(ClientUsage {
            limits,
            used: Default::default(),
        })
    }

    /// Takes `n` units of `resource`, or none if that would pass its limit.
    pub fn take(self: &Arc<Self>, resource: Budget, n: u32) -> Result<Charge, LimitExceeded> {
        let limit = resource.limit(&self.limits);
        let counter = &self.used[resource.index()];
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= limit)
            })
            .map_err(|used| LimitExceeded {
                resource,
                used,
                asked: n,
                limit,
            })?;
        Ok(Charge {
            usage: Some(self.clone()),
            resource,
            n,
        })
    }

    /// Units of `resource` in use.
    pub fn used(&self, resource: Budget) -> u32 {
        self.used[resource.index()].load(Ordering::Acquire)
    }
}

/// Units of one resource taken from a client's budget; given back on drop.
#[derive(Debug)]
pub struct Charge {
    usage: Option<Arc<ClientUsage>>,
    resource: Budget,
    n: u32,
}

impl Charge {
    /// A charge that counts nothing: for a client without `ClientState`
    /// (none is inserted that way; kept so the callers need no second path).
    fn none(resource: Budget) -> Charge {
        Charge {
            usage: None,
            resource,
            n: 0,
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(usage) = &self.usage {
            usage.used[self.resource.index()].fetch_sub(self.n, Ordering::AcqRel);
        }
    }
}

/// Clients disconnected for passing a limit, in this process.
static DISCONNECTS: AtomicU64 = AtomicU64::new(0);

/// `"limits"` in `--stats`.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct LimitStats {
    /// Clients disconnected with `no_memory` for passing a limit.
    pub disconnects: u64,
    /// Commits held past `--stall-timeout` (each logged once).
    pub stalls_warned: u64,
    /// Held commits being watched at exit.
    pub held_commits_at_exit: u64,
}

impl LimitStats {
    /// The disconnects so far, with the stall watch's counts.
    pub fn now(stalls_warned: u64, held_commits: u64) -> LimitStats {
        LimitStats {
            disconnects: DISCONNECTS.load(Ordering::Relaxed),
            stalls_warned,
            held_commits_at_exit: held_commits,
        }
    }
}

/// Takes `n` units of `resource` from `client`'s budget. Past the limit the
/// client is disconnected with `no_memory` (logged) and `None` is returned;
/// the caller then drops the request.
pub fn charge(dh: &DisplayHandle, client: &Client, resource: Budget, n: u32) -> Option<Charge> {
    let Some(data) = client.get_data::<ClientState>() else {
        return Some(Charge::none(resource));
    };
    match data.usage.take(resource, n) {
        Ok(charge) => Some(charge),
        Err(exceeded) => {
            DISCONNECTS.fetch_add(1, Ordering::Relaxed);
            warn!(client = ?client.id(), pid = ?data.pid(), "client passed a resource limit and is disconnected: {exceeded}");
            crate::display_error::post(
                dh,
                client.id(),
                crate::display_error::NO_MEMORY,
                &format!("resource limit reached: {exceeded}"),
            );
            None
        }
    }
}

/// The soft `RLIMIT_NOFILE` before [`raise_fd_limit`] raised it.
static ORIGINAL_FD_LIMIT: std::sync::OnceLock<libc::rlim_t> = std::sync::OnceLock::new();

/// Gives a child the soft `RLIMIT_NOFILE` the compositor started with:
/// programs that use `select()` break with descriptors past 1024, so the
/// raise is for the compositor only.
pub fn restore_fd_limit_in_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let Some(&soft) = ORIGINAL_FD_LIMIT.get() else { return };
    // SAFETY: the closure only calls getrlimit/setrlimit, which are
    // async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur = soft.min(limit.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
            Ok(())
        });
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: every dma-buf plane,
/// syncobj and client socket costs an fd, and the usual soft limit (1024)
/// would be reached by a handful of clients. Returns the new soft limit.
/// Children get the old one back ([`restore_fd_limit_in_child`]).
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _ = ORIGINAL_FD_LIMIT.set(limit.rlim_cur);
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(held_commits: u32) -> Arc<ClientUsage> {
        ClientUsage::new(ClientLimits {
            held_commits,
            ..Default::default()
        })
    }

    #[test]
    fn charges_stop_at_the_limit_and_come_back_on_drop() {
        let usage = usage(2);
        let a = usage.take(Budget::HeldCommits, 1).unwrap();
        let b = usage.take(Budget::HeldCommits, 1).unwrap();
        let refused = usage.take(Budget::HeldCommits, 1).unwrap_err();
        assert_eq!(
            refused,
            LimitExceeded {
                resource: Budget::HeldCommits,
                used: 2,
                asked: 1,
                limit: 2
            }
        );
        drop(a);
        assert_eq!(usage.used(Budget::HeldCommits), 1);
        let c = usage.take(Budget::HeldCommits, 1).unwrap();
        drop((b, c));
        assert_eq!(usage.used(Budget::HeldCommits), 0);
    }

    #[test]
    fn a_refused_charge_takes_nothing() {
        let usage = ClientUsage::new(ClientLimits {
            fds: 4,
            ..Default::default()
        });
        let _three = usage.take(Budget::Fds, 3).unwrap();
        assert!(usage.take(Budget::Fds, 2).is_err());
        assert_eq!(usage.used(Budget::Fds), 3);
        assert!(usage.take(Budget::Fds, u32::MAX).is_err(), "no overflow");
        assert_eq!(usage.used(Budget::Fds), 3);
    }

    #[test]
    fn resources_are_counted_apart() {
        let usage = ClientUsage::new(ClientLimits {
            params: 1,
            timelines: 1,
            ..Default::default()
        });
        let _p = usage.take(Budget::Params, 1).unwrap();
        let _t = usage.take(Budget::Timelines, 1).unwrap();
        assert!(usage.take(Budget::Params, 1).is_err());
        assert!(usage.take(Budget::Timelines, 1).is_err());
    }

    #[test]
    fn the_fd_limit_is_raised_to_the_hard_limit() {
        let soft = raise_fd_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(soft, limit.rlim_max);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
