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
//! *quiet*, and smithay is told it is desynchronized (the `set_desync`
//! request forwarded to its own handler), so the parent's commit passes
//! over it:
//!
//! * A quiet child without children of its own stays so (*forced*) until
//!   the client touches its mode or it could matter: its own commit (set
//!   back to synchronized before smithay sees the commit, so the state is
//!   cached as the client asked), a `set_sync`/`set_desync` from the client,
//!   or a subsurface created on it (smithay reads an ancestor's mode for
//!   its descendants' commits). A window whose children are mostly still
//!   then costs no mode changes at all per commit.
//! * A quiet child with children is set back to synchronized before the
//!   parent's commit request returns.
//!
//! Outside a parent's commit request, smithay's flag matches what the
//! client asked for, except on forced children, where no request reads it.
//!
//! What a surface records ([`SubsurfaceCommits`], in its surface data):
//! * `dirty`: it, or a descendant, committed, or a child of it was moved
//!   or added, since a parent's commit last took its state. New subsurfaces
//!   start dirty. A commit marks the surface and each ancestor that is
//!   itself a subsurface; a move or a new child marks the parent and its
//!   ancestors. A parent's commit clears the flag on each synchronized
//!   child it takes, with all of that child's subtree (smithay takes the
//!   subtree whole).
//! * `desync`: the mode the client asked for (`set_sync` / `set_desync`).
//! * `forced`: smithay is told it is desynchronized while the client asked
//!   for synchronized (a quiet child without children, above).
//! * `handle`: the child's `wl_subsurface`, needed to forward the mode to
//!   smithay. smithay does not hand it out at creation, so it is the one the
//!   client last sent a request on; a child that never sent one is never
//!   quiet, and smithay takes it on every parent commit as before. The
//!   handle and smithay's subsurface data (which holds the surface) form a
//!   cycle through the surface's data; destroying the `wl_subsurface`
//!   always drops the handle, which breaks it.
//! * `look` (as a parent) and `queued`: the children a parent's next
//!   commit looks at, each once: those that committed, were moved, were
//!   added, got a mode request, or were taken or set back to synchronized
//!   by the parent's last commit. A forced or desynchronized child with
//!   nothing new is not on it, so a commit costs nothing per still child.
//!   The list holds weak handles; a child since moved to another parent is
//!   passed over.
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
        Resource, Weak,
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
    forced: bool,
    /// In its parent's `look` list.
    queued: bool,
    /// As a parent: the children to look at on its next commit.
    look: Vec<Weak<WlSurface>>,
}

impl Entry {
    /// Starts the surface over as a new subsurface ([`Entry::default`]),
    /// keeping what it holds as a parent: its children's `look` list, whose
    /// entries are marked `queued` and would otherwise never be looked at.
    fn restart_as_child(&mut self) {
        *self = Entry {
            look: std::mem::take(&mut self.look),
            ..Entry::default()
        };
    }
}

/// What a parent's commit does with a child on its `look` list.
enum Look {
    /// Seen already this commit, or passed over by smithay (desynchronized
    /// or forced).
    Skip,
    /// Quiet: told desynchronized through this handle.
    Quiet(WlSubsurface),
    /// Taken by smithay with the parent's state, with its handle if known.
    Taken(Option<WlSubsurface>),
}

/// A new subsurface: synchronized, dirty, no handle yet.
impl Default for Entry {
    fn default() -> Self {
        Entry {
            handle: None,
            desync: false,
            dirty: true,
            forced: false,
            queued: false,
            look: Vec::new(),
        }
    }
}

/// The modes to tell smithay's `wl_subsurface` handler around one request
/// (module docs).
#[derive(Debug, Default)]
pub struct ModeChanges {
    /// Before the request: each subsurface with `true` for synchronized.
    pub before: Vec<(WlSubsurface, bool)>,
    /// After the request: back to synchronized.
    pub after: Vec<WlSubsurface>,
    /// The committed surface is not synchronized: smithay applies its
    /// state within the request, with its synchronized children's.
    pub unsynchronized: bool,
    /// Of those children, the ones without children of their own whose
    /// `wl_subsurface` is known (see `renderer_state`).
    pub taken_leaves: Vec<(WlSurface, WlSubsurface)>,
}

/// Ends `surface`'s forced desynchronization: the mode to tell smithay.
/// Takes `surface`'s state lock.
fn unforce(surface: &WlSurface, changes: &mut ModeChanges) -> bool {
    with_entry(surface, |e| {
        let forced = std::mem::take(&mut e.forced);
        if let Some(handle) = e.handle.as_ref().filter(|_| forced) {
            changes.before.push((handle.clone(), true));
        }
        forced
    })
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
        queue(&at, &parent);
        at = parent;
    }
}

/// Puts `child` on `parent`'s list of children to look at, once.
/// Takes the child's, then the parent's state lock.
fn queue(child: &WlSurface, parent: &WlSurface) {
    if with_entry(child, |e| !std::mem::replace(&mut e.queued, true)) {
        with_entry(parent, |e| e.look.push(child.downgrade()));
    }
}

/// A subsurface was created on `surface` (or re-created after its
/// `wl_subsurface` was destroyed): it starts synchronized and dirty, with no
/// handle yet.
pub fn note_new_subsurface(surface: &WlSurface, parent: &WlSurface) {
    with_entry(surface, Entry::restart_as_child);
    queue(surface, parent);
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
            wl_subsurface::Request::SetSync => {
                e.desync = false;
                e.forced = false;
            }
            wl_subsurface::Request::SetDesync => {
                e.desync = true;
                e.forced = false;
            }
            _ => {}
        }
    });
    if let Some(parent) = get_parent(surface) {
        queue(surface, &parent);
    }
}

/// A subsurface is about to be created on `parent`: a forced parent goes
/// back to synchronized first (its mode now decides its child's commits).
pub fn before_new_child(parent: &WlSurface) -> ModeChanges {
    let mut changes = ModeChanges::default();
    unforce(parent, &mut changes);
    changes
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
    with_entry(data.surface(), Entry::restart_as_child);
}

/// Before `surface`'s commit request goes to smithay: sets it back to
/// synchronized if it was forced, marks it dirty, and if smithay is about
/// to take its synchronized children, tells it the quiet ones are
/// desynchronized (lastingly for those without children) and clears the
/// dirty flags of the subtrees it will take.
pub fn before_commit(surface: &WlSurface) -> ModeChanges {
    let mut changes = ModeChanges::default();
    // Forced means the client asked for synchronized: smithay caches it.
    let was_forced = unforce(surface, &mut changes);
    mark_dirty_upward(surface);
    if was_forced || is_sync_subsurface(surface) {
        // smithay only moves the children's transactions into this one.
        return changes;
    }
    changes.unsynchronized = true;
    let queued = with_entry(surface, |e| std::mem::take(&mut e.look));
    let mut again = Vec::new();
    for child in queued.iter().filter_map(|weak| weak.upgrade().ok()) {
        if get_parent(&child).as_ref() != Some(surface) {
            // Queued before it was moved to another parent.
            continue;
        }
        let look = with_entry(&child, |e| {
            if !std::mem::take(&mut e.queued) || e.desync || e.forced {
                return Look::Skip;
            }
            match &e.handle {
                // A handle is dropped when its object is destroyed, so it is alive.
                Some(handle) if !e.dirty => Look::Quiet(handle.clone()),
                handle => Look::Taken(handle.clone()),
            }
        });
        match look {
            Look::Skip => {}
            Look::Quiet(handle) if get_children(&child).is_empty() => {
                with_entry(&child, |e| e.forced = true);
                changes.before.push((handle, false));
            }
            Look::Quiet(handle) => {
                changes.before.push((handle.clone(), false));
                changes.after.push(handle);
                again.push(child);
            }
            Look::Taken(handle) => {
                // Taken: quiet at the next commit unless it commits again.
                let leaf = clear_dirty_subtree(&child);
                if let Some(handle) = handle.filter(|_| leaf) {
                    changes.taken_leaves.push((child.clone(), handle));
                }
                again.push(child);
            }
        }
    }
    for child in &again {
        queue(child, surface);
    }
    changes
}

/// Walks up the subsurface tree to the surface that carries the role.
pub fn root_surface(surface: &WlSurface) -> WlSurface {
    let mut root = surface.clone();
    while let Some(parent) = get_parent(&root) {
        root = parent;
    }
    root
}

/// Clears the dirty flag of `surface` and every descendant; whether
/// `surface` has no children.
fn clear_dirty_subtree(surface: &WlSurface) -> bool {
    with_entry(surface, |e| e.dirty = false);
    let children = get_children(surface);
    for child in &children {
        clear_dirty_subtree(child);
    }
    children.is_empty()
}
