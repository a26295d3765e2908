//! DOC: synchronized subsurfaces with nothing cached
//!
//! A synchronized subsurface caches what it commits; the cache is applied
//! right after its parent's state is applied. smithay 0.7 does this, on each
//! commit of a surface that is not itself synchronized, for *every*
//! synchronized child and the child's whole subtree: it commits the child's
//! pending state, merges it into the parent's transaction, applies it, and
//! runs the post-commit hooks and our commit handler for it, whether or not
//! the child sent anything. A window with 64 unchanged subsurfaces pays that
//! 64 times per frame.
//!
//! A child that has not committed since its parent's last commit, and none
//! of whose descendants has, holds nothing to apply: the protocol applies
//! only committed state, and a position change (`wl_subsurface.set_position`)
//! is the parent's to apply (see `apply_child_positions`). Such a child is
//! *quiet*. For the length of the parent's commit request, smithay is told a
//! quiet child is desynchronized (the `set_desync` request forwarded to its
//! own handler), so it passes over the child; the child is set back to
//! synchronized before the request returns. Outside a parent's commit
//! request, smithay's flag always matches what the client asked for.
//!
//! What a child records ([`SubsurfaceCommits`], in its surface data):
//! * `dirty`: it, or a descendant, committed, or a child of it was moved
//!   or added, since a parent's commit last took its state. New subsurfaces
//!   start dirty. A commit marks the surface and each ancestor that is
//!   itself a subsurface; a move or a new child marks the parent and its
//!   ancestors. A
//!   parent's commit clears the flag on each synchronized child it takes,
//!   with all of that child's subtree (smithay takes the subtree whole).
//! * `desync`: the mode the client asked for (`set_sync` / `set_desync`).
//! * `handle`: the child's `wl_subsurface`, needed to forward the mode to
//!   smithay. smithay does not hand it out at creation, so it is the one the
//!   client last sent a request on; a child that never sent one is never
//!   quiet, and smithay takes it on every parent commit as before. The
//!   handle and smithay's subsurface data (which holds the surface) form a
//!   cycle through the surface's data; destroying the `wl_subsurface`
//!   always drops the handle, which breaks it.
//!
//! Uncommitted pending state of a quiet child stays pending. (smithay would
//! commit a synchronized child's pending state on the parent's behalf; for a
//! child that committed, it still does.)
//!
//! Everything here runs on the event loop, inside request dispatch. Each
//! function takes one surface's state lock at a time, briefly, and never
//! while holding another.

use std::sync::{Mutex, MutexGuard};

use smithay::{
    reexports::wayland_server::{
        protocol::{
            wl_subsurface::{self, WlSubsurface},
            wl_surface::WlSurface,
        },
        Resource,
    },
    wayland::compositor::{get_children, get_parent, is_sync_subsurface, with_states, SubsurfaceUserData},
};

/// What a subsurface's commits have left to apply (module docs).
#[derive(Debug, Default)]
pub struct SubsurfaceCommits(Mutex<Entry>);

#[derive(Debug)]
struct Entry {
    handle: Option<WlSubsurface>,
    desync: bool,
    dirty: bool,
}

/// A new subsurface: synchronized, dirty, no handle yet.
impl Default for Entry {
    fn default() -> Self {
        Entry {
            handle: None,
            desync: false,
            dirty: true,
        }
    }
}

/// Runs `f` on `surface`'s entry, creating it if missing.
/// Takes `surface`'s state lock for the call.
fn with_entry<R>(surface: &WlSurface, f: impl FnOnce(&mut Entry) -> R) -> R {
    with_states(surface, |states| {
        let commits = states.data_map.get_or_insert_threadsafe(SubsurfaceCommits::default);
        f(&mut lock(&commits.0))
    })
}

fn lock(entry: &Mutex<Entry>) -> MutexGuard<'_, Entry> {
    entry.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks `surface` and each ancestor that is a subsurface dirty.
fn mark_dirty_upward(surface: &WlSurface) {
    let mut at = surface.clone();
    while let Some(parent) = get_parent(&at) {
        with_entry(&at, |e| e.dirty = true);
        at = parent;
    }
}

/// A subsurface was created on `surface` (or re-created after its
/// `wl_subsurface` was destroyed): it starts synchronized and dirty, with no
/// handle yet.
pub fn note_new_subsurface(surface: &WlSurface) {
    with_entry(surface, |e| *e = Entry::default());
}

/// A child of `parent` was moved (or added): the parent applies that, so
/// the grandparent's commit must take the parent.
pub fn note_child_moved(parent: &WlSurface) {
    mark_dirty_upward(parent);
}

/// A request arrived on `subsurface`: keeps its handle and the mode the
/// client asked for.
pub fn note_subsurface_request(subsurface: &WlSubsurface, data: &SubsurfaceUserData, request: &wl_subsurface::Request) {
    let surface = data.surface();
    if !surface.is_alive() {
        return;
    }
    with_entry(surface, |e| {
        e.handle = Some(subsurface.clone());
        match request {
            wl_subsurface::Request::SetSync => e.desync = false,
            wl_subsurface::Request::SetDesync => e.desync = true,
            _ => {}
        }
    });
}

/// `subsurface`'s `wl_subsurface` is gone: smithay sets the surface back to
/// synchronized; the entry forgets the handle.
///
/// Also when the `wl_surface` went first (a client may destroy it before
/// its `wl_subsurface`, and a disconnect destroys objects in any order):
/// smithay's `SubsurfaceUserData` holds the surface, and the entry in the
/// surface's data holds the `wl_subsurface`, so a handle left behind would
/// keep both alive for good.
pub fn note_subsurface_destroyed(data: &SubsurfaceUserData) {
    with_entry(data.surface(), |e| *e = Entry::default());
}

/// Before `surface`'s commit request goes to smithay: marks it dirty, and if
/// smithay is about to take its synchronized children, returns the quiet
/// ones (to be set desynchronized for the request) and clears the dirty
/// flags of the subtrees it will take.
pub fn before_commit(surface: &WlSurface) -> Vec<WlSubsurface> {
    mark_dirty_upward(surface);
    if is_sync_subsurface(surface) {
        // smithay only moves the children's transactions into this one.
        return Vec::new();
    }
    let mut quiet = Vec::new();
    for child in get_children(surface) {
        let taken = with_entry(&child, |e| {
            if e.desync {
                return false;
            }
            match &e.handle {
                // A handle is dropped when its object is destroyed, so it is alive.
                Some(handle) if !e.dirty => {
                    quiet.push(handle.clone());
                    false
                }
                _ => true,
            }
        });
        if taken {
            clear_dirty_subtree(&child);
        }
    }
    quiet
}

/// Clears the dirty flag of `surface` and every descendant.
fn clear_dirty_subtree(surface: &WlSurface) {
    with_entry(surface, |e| e.dirty = false);
    for child in get_children(surface) {
        clear_dirty_subtree(&child);
    }
}
