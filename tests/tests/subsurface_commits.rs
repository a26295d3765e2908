//! A parent's commit applies what its synchronized subsurfaces cached, and
//! only that. The compositor passes over children that sent nothing since
//! the parent's last commit (docs in `handlers::subsurface_commits`); these
//! cases are the ones that skipping could get wrong:
//!
//! * a grandchild's cached commit, and a grandchild's move, under a child
//!   that itself sent nothing, both apply with the root's commit;
//! * a child passed over stays synchronized: its next commit still waits
//!   for the parent's;
//! * a passed-over child's uncommitted state stays pending;
//! * a desynchronized grandchild created under a passed-over child still
//!   behaves as synchronized (smithay reads the child's mode for it);
//! * the parent's commit does not apply the passed-over children at all
//!   (the commit handler runs once per parent commit, not once per child);
//! * a child whose state alone the parent's commit applies, updated after
//!   the parent's commit handler, still changes with that commit.
//!
//! Whether a surface shows is read from `wl_surface.enter` / `leave`.

use std::ffi::OsString;

use anyhow::{ensure, Result};
use testkit::client::Client;
use testkit::harness::Compositor;
use testkit::{DmabufBuffer, Subsurface, Window};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::Proxy;

fn buffer(client: &Client, size: u32) -> Result<DmabufBuffer> {
    DmabufBuffer::solid(client, size, size, [40, 160, 90, 255])
}

/// A compositor with a 320×240 output and a window with a 128×128 buffer
/// shown on it.
fn shown_window() -> Result<(Compositor, Client, Window, DmabufBuffer)> {
    let args: Vec<OsString> = vec!["--size".into(), "320x240".into()];
    let comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let _output = client.bind_output()?;
    let window = Window::new(&mut client, "subsurface-commits")?;
    let main = buffer(&client, 128)?;
    window.attach(&main);
    ensure!(
        window.shows_after_frames(&mut client, &window.surface)?,
        "the window never entered the output"
    );
    Ok((comp, client, window, main))
}

/// A second window that paces frames without committing the first.
fn pacer(client: &mut Client) -> Result<(Window, DmabufBuffer)> {
    let pacer = Window::new(client, "pacer")?;
    let buffer = buffer(client, 16)?;
    pacer.attach(&buffer);
    pacer.wait_frame(client)?;
    Ok((pacer, buffer))
}

/// Frames paced by `pacer` alone do not show `surface`, whose commit is
/// cached; the window's next commits do.
fn shows_only_with_the_window(
    client: &mut Client,
    window: &Window,
    pacer: &Window,
    surface: &WlSurface,
    what: &str,
) -> Result<()> {
    pacer.wait_frame(client)?;
    pacer.wait_frame(client)?;
    client.roundtrip()?;
    ensure!(
        !client.state.entered.contains(&surface.id()),
        "{what}'s commit applied without the window's commit"
    );
    ensure!(
        window.shows_after_frames(client, surface)?,
        "{what}'s cached commit was not applied with the window's"
    );
    Ok(())
}

/// A 32×32 subsurface of `parent` at (8, 8), committed (cached until the
/// parent's next commit).
fn child_with_buffer(client: &Client, parent: &WlSurface, small: &DmabufBuffer) -> Subsurface {
    let child = Subsurface::new(client, parent);
    child.set_position(8, 8);
    child.attach_commit(small);
    child
}

/// A shown window with a 32×32 child shown at (8, 8), and a pacer.
struct ShownChild {
    comp: Compositor,
    client: Client,
    window: Window,
    pacer: Window,
    child: Subsurface,
    small: DmabufBuffer,
    _buffers: (DmabufBuffer, DmabufBuffer),
}

impl ShownChild {
    /// Destroys the client's objects, then checks the compositor exits
    /// cleanly.
    fn finish(self) -> Result<()> {
        let ShownChild {
            mut comp,
            window,
            pacer,
            child,
            ..
        } = self;
        drop((child, window, pacer));
        comp.terminate_successfully()
    }
}

fn shown_child() -> Result<ShownChild> {
    let (comp, mut client, window, main) = shown_window()?;
    let (pacer, pacer_buffer) = pacer(&mut client)?;
    let small = buffer(&client, 32)?;
    let child = child_with_buffer(&client, &window.surface, &small);
    ensure!(
        window.shows_after_frames(&mut client, &child.surface)?,
        "the child never entered the output"
    );
    Ok(ShownChild {
        comp,
        client,
        window,
        pacer,
        child,
        small,
        _buffers: (main, pacer_buffer),
    })
}

#[test]
fn a_grandchilds_commit_applies_with_the_roots_under_a_child_that_sent_nothing() -> Result<()> {
    let (mut comp, mut client, window, _main) = shown_window()?;
    let small = buffer(&client, 32)?;
    let child = child_with_buffer(&client, &window.surface, &small);
    let grandchild = Subsurface::new(&client, &child.surface);
    grandchild.set_position(4, 4);
    ensure!(
        window.shows_after_frames(&mut client, &child.surface)?,
        "the child never entered the output"
    );
    ensure!(
        !client.state.entered.contains(&grandchild.surface.id()),
        "the grandchild entered the output before it had a buffer"
    );

    // Only the grandchild commits; the child sends nothing.
    grandchild.attach_commit(&small);
    ensure!(
        window.shows_after_frames(&mut client, &grandchild.surface)?,
        "the grandchild's cached commit was not applied with the root's commit"
    );

    drop((grandchild, child, window));
    comp.terminate_successfully()
}

#[test]
fn a_grandchilds_move_applies_with_the_roots_commit() -> Result<()> {
    let (mut comp, mut client, window, _main) = shown_window()?;
    let small = buffer(&client, 32)?;
    let child = child_with_buffer(&client, &window.surface, &small);
    let grandchild = child_with_buffer(&client, &child.surface, &small);
    ensure!(
        window.shows_after_frames(&mut client, &grandchild.surface)?,
        "the grandchild never entered the output"
    );

    // Only the grandchild's position changes; neither it nor the child
    // commits. Far past the output's right and bottom edges.
    grandchild.set_position(4000, 4000);
    ensure!(
        !window.shows_after_frames(&mut client, &grandchild.surface)?,
        "the grandchild's move was not applied with the root's commit"
    );
    ensure!(
        client.state.entered.contains(&child.surface.id()),
        "the child left the output with its grandchild"
    );

    drop((grandchild, child, window));
    comp.terminate_successfully()
}

#[test]
fn a_child_passed_over_stays_synchronized() -> Result<()> {
    let (mut comp, mut client, window, _main) = shown_window()?;
    let (other, _other_buffer) = pacer(&mut client)?;

    let child = Subsurface::new(&client, &window.surface);
    child.set_position(8, 8);
    // Two parent commits with nothing from the child: the second passes
    // over it.
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;

    let small = buffer(&client, 32)?;
    child.attach_commit(&small);
    shows_only_with_the_window(&mut client, &window, &other, &child.surface, "the synchronized child")?;

    drop((child, window, other));
    comp.terminate_successfully()
}

#[test]
fn a_desynchronized_grandchild_under_a_passed_over_child_waits_for_the_root() -> Result<()> {
    let mut s = shown_child()?;
    // Parent commits with nothing from the child: it is passed over.
    s.window.wait_frame(&mut s.client)?;
    s.window.wait_frame(&mut s.client)?;

    let grandchild = Subsurface::new(&s.client, &s.child.surface);
    grandchild.set_desync();
    grandchild.set_position(4, 4);
    grandchild.attach_commit(&s.small);
    shows_only_with_the_window(
        &mut s.client,
        &s.window,
        &s.pacer,
        &grandchild.surface,
        "a desynchronized grandchild of a synchronized child",
    )?;

    drop(grandchild);
    s.finish()
}

/// A commit that applies only synchronized children's states updates them
/// after the parent's commit handler (`handlers::renderer_state`): a
/// removed buffer, which changes the child's view, still applies exactly
/// with the parent's commit.
#[test]
fn a_childs_removed_buffer_applies_with_the_parents_commit() -> Result<()> {
    let mut s = shown_child()?;
    s.window.wait_frame(&mut s.client)?;

    s.child.surface.attach(None, 0, 0);
    s.child.surface.commit();
    s.pacer.wait_frame(&mut s.client)?;
    s.pacer.wait_frame(&mut s.client)?;
    s.client.roundtrip()?;
    ensure!(
        s.client.state.entered.contains(&s.child.surface.id()),
        "the child's removed buffer applied without the window's commit"
    );
    ensure!(
        !s.window.shows_after_frames(&mut s.client, &s.child.surface)?,
        "the child's removed buffer was not applied with the window's commit"
    );
    s.finish()
}

#[test]
fn uncommitted_state_of_a_passed_over_child_waits_for_its_commit() -> Result<()> {
    let (mut comp, mut client, window, _main) = shown_window()?;
    let child = Subsurface::new(&client, &window.surface);
    child.set_position(8, 8);
    window.wait_frame(&mut client)?;

    let small = buffer(&client, 32)?;
    child.surface.attach(Some(&small.buffer), 0, 0);
    child.surface.damage_buffer(0, 0, 32, 32);
    small.mark_attached();
    ensure!(
        !window.shows_after_frames(&mut client, &child.surface)?,
        "the child's attach was applied though the child never committed it"
    );

    child.surface.commit();
    ensure!(
        window.shows_after_frames(&mut client, &child.surface)?,
        "the child's committed attach was not applied with its parent's commit"
    );

    drop((child, window));
    comp.terminate_successfully()
}

#[test]
fn a_parents_commit_leaves_children_that_sent_nothing_alone() -> Result<()> {
    let (mut comp, mut client, window, _main) = shown_window()?;
    let small = buffer(&client, 32)?;
    let children: Vec<Subsurface> = (0..8)
        .map(|_| child_with_buffer(&client, &window.surface, &small))
        .collect();
    ensure!(
        window.shows_after_frames(&mut client, &children[7].surface)?,
        "the children never entered the output"
    );

    let before = comp.snapshot()?.shell;
    const PARENT_COMMITS: u64 = 5;
    for _ in 0..PARENT_COMMITS {
        window.wait_frame(&mut client)?;
    }
    let after = comp.snapshot()?.shell;
    let handled = after.commits - before.commits;
    ensure!(
        handled == PARENT_COMMITS,
        "{PARENT_COMMITS} commits of the parent alone ran the commit handler {handled} times \
         (8 unchanged synchronized children)"
    );
    // Nothing changed for the children, nor for the parent's own view: no
    // walk of the tree's renderer states.
    let narrow = after.narrow_updates - before.narrow_updates;
    ensure!(
        narrow == PARENT_COMMITS,
        "{narrow} of {PARENT_COMMITS} commits that changed nothing but the parent's frame \
         callback updated only what they applied"
    );

    // One child changes with each parent commit: only it is updated.
    for _ in 0..PARENT_COMMITS {
        children[3].attach_commit(&small);
        window.wait_frame(&mut client)?;
    }
    let narrow = comp.snapshot()?.shell.narrow_updates - after.narrow_updates;
    ensure!(
        narrow == PARENT_COMMITS,
        "{narrow} of {PARENT_COMMITS} commits applying one child's new buffer updated \
         only that child"
    );

    drop((children, window));
    comp.terminate_successfully()
}

/// A `wl_surface` destroyed before its `wl_subsurface`, after a request on
/// the `wl_subsurface` (so the compositor keeps its handle), is freed once
/// both are gone: the handle, kept in the surface's data, must not keep the
/// surface's data alive through smithay's subsurface data.
#[test]
fn a_surface_destroyed_before_its_subsurface_is_freed() -> Result<()> {
    let (mut comp, mut client, window, _main) = shown_window()?;
    window.wait_frame(&mut client)?;
    let before = comp.snapshot()?.shell.surfaces_held;
    for _ in 0..8 {
        let child = Subsurface::new(&client, &window.surface);
        child.set_position(4, 4);
        child.surface.destroy();
        child.subsurface.destroy();
    }
    client.roundtrip()?;
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;
    let after = comp.snapshot()?.shell.surfaces_held;
    ensure!(
        after == before,
        "surface data held: {before} before, {after} after 8 surfaces destroyed before their subsurfaces"
    );
    drop(window);
    comp.terminate_successfully()
}
