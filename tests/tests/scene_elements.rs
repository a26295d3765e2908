//! A frame reuses the render elements of the frame before for surfaces
//! that did not change, and builds new ones for surfaces that did (docs in
//! `backend::scene`): counted in the stats' `scene` section.
//!
//! * children that send nothing are reused while their parent commits;
//! * a child moved by its parent's commit is built again (its place
//!   changed, its own state did not);
//! * a child that commits a new buffer is built again;
//! * a buffer taken into smithay's renderer state by an ancestor's commit,
//!   after the child's own state was applied, replaces the kept element;
//! * frames where only the parent commits skip the walk, and a restacked
//!   child, whose state did not change, still makes the next frame walk.
//!
//! What the built elements show is the render tests' part (`replace`
//! checks a replaced buffer reaches the screen).

use std::ffi::OsString;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use testkit::client::Client;
use testkit::harness::{Compositor, CopyGate, StatsExt};
use testkit::image_compare::check_window_pixel;
use testkit::provider::provider_from_env;
use testkit::{DmabufBuffer, Format, RgbaImage, Subsurface, Window};
use wayland_client::Proxy;

const CHILDREN: u64 = 8;
const COMMITS: u64 = 6;

fn buffer(client: &Client, size: u32, rgba: [u8; 4]) -> Result<DmabufBuffer> {
    DmabufBuffer::solid(client, size, size, rgba)
}

/// Frames, elements built and elements reused between two snapshots.
#[derive(Debug)]
struct Delta {
    frames: u64,
    built: u64,
    reused: u64,
}

/// A 320×240 output with a window and `CHILDREN` 32×32 subsurfaces, all
/// shown.
struct Scene {
    comp: Compositor,
    client: Client,
    window: Window,
    children: Vec<Subsurface>,
    small: DmabufBuffer,
    _main: DmabufBuffer,
}

fn scene() -> Result<Scene> {
    let args: Vec<OsString> = vec!["--size".into(), "320x240".into()];
    let comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let _output = client.bind_output()?;
    let window = Window::new(&mut client, "scene-elements")?;
    let main = buffer(&client, 128, [30, 30, 160, 255])?;
    window.attach(&main);
    let small = buffer(&client, 32, [200, 120, 20, 255])?;
    let children: Vec<Subsurface> = (0..CHILDREN)
        .map(|i| {
            let child = Subsurface::new(&client, &window.surface);
            child.set_position(8 + 12 * i as i32, 8);
            child.attach_commit(&small);
            child
        })
        .collect();
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;
    client.roundtrip()?;
    ensure!(
        children.iter().all(|c| client.state.entered.contains(&c.surface.id())),
        "the children never all entered the output"
    );
    Ok(Scene {
        comp,
        client,
        window,
        children,
        small,
        _main: main,
    })
}

/// Frames and elements while the parent commits `COMMITS` times, each
/// after `change(i)`.
fn parent_commits(scene: &mut Scene, mut change: impl FnMut(&Scene, u64)) -> Result<Delta> {
    let before = scene.comp.snapshot()?;
    for i in 0..COMMITS {
        change(scene, i);
        scene.window.wait_frame(&mut scene.client)?;
    }
    let after = scene.comp.snapshot()?;
    Ok(Delta {
        frames: after.frames - before.frames,
        built: after.scene.elements_built - before.scene.elements_built,
        reused: after.scene.elements_reused - before.scene.elements_reused,
    })
}

impl Scene {
    fn finish(self) -> Result<()> {
        let Scene {
            mut comp,
            window,
            children,
            ..
        } = self;
        drop((children, window));
        comp.terminate_successfully()
    }
}

#[test]
fn unchanged_children_are_reused_while_their_parent_commits() -> Result<()> {
    let mut scene = scene()?;
    let d = parent_commits(&mut scene, |_, _| {})?;
    ensure!(d.frames >= COMMITS, "fewer frames than commits: {d:?}");
    // Only the parent's element is ever rebuilt, once per commit.
    ensure!(d.built <= COMMITS, "unchanged children were built again: {d:?}");
    ensure!(
        d.reused >= CHILDREN * d.frames,
        "the children's elements were not reused every frame: {d:?}"
    );
    scene.finish()
}

#[test]
fn a_child_moved_by_its_parents_commit_is_built_again() -> Result<()> {
    let mut scene = scene()?;
    let d = parent_commits(&mut scene, |scene, i| {
        scene.children[0].set_position(8, 8 + 4 * (i as i32 % 2 + 1));
    })?;
    ensure!(
        d.built >= 2 * COMMITS,
        "each commit should build the parent's and the moved child's element: {d:?}"
    );
    scene.finish()
}

#[test]
fn a_child_with_a_new_buffer_is_built_again() -> Result<()> {
    let mut scene = scene()?;
    let other = buffer(&scene.client, 32, [20, 200, 120, 255])?;
    let d = parent_commits(&mut scene, |scene, i| {
        scene.children[0].attach_commit(if i % 2 == 0 { &other } else { &scene.small });
    })?;
    ensure!(
        d.built >= 2 * COMMITS,
        "each commit should build the parent's and the changed child's element: {d:?}"
    );
    scene.finish()
}

/// A synchronized subsurface's renderer state can take in its new buffer
/// later than its own state is applied: with the next commit of an
/// unsynchronized ancestor. Here the child's commit is held on a CPU copy
/// while the child is desynchronized, applies after the child was made
/// synchronized (so its own commit does not update that state), and the
/// parent's commit takes the buffer in once the child is desynchronized
/// again. The new buffer must reach the screen and the old one be let go.
#[test]
fn a_buffer_taken_in_by_the_parents_commit_replaces_the_kept_element() -> Result<()> {
    const GREEN: [u8; 4] = [20, 200, 40, 255];
    const RED: [u8; 4] = [220, 30, 30, 255];
    const BLUE: [u8; 4] = [20, 40, 230, 255];
    const LARGE: u32 = 4096;
    let gate = CopyGate::new()?;
    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("out.png");
    let mut comp = gate.spawn_with_screenshot(&shot)?;
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "taken-in")?;
    let main = buffer(&client, 128, GREEN)?;
    window.attach(&main);
    window.wait_frame(&mut client)?;
    let child = Subsurface::new(&client, &window.surface);
    child.set_desync();
    let old = buffer(&client, 64, RED)?;
    child.attach_commit(&old);
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;

    // Its copy runs on the worker, which waits for the gate.
    let provider = provider_from_env()?;
    let large = DmabufBuffer::new(
        &client,
        &*provider,
        LARGE,
        LARGE,
        Format::Xrgb8888,
        LARGE * 4,
        &|_, _| Format::Xrgb8888.encode(BLUE),
    )?;
    let applied = Arc::new(AtomicBool::new(false));
    child.surface.frame(&client.qh, applied.clone());
    child.attach_commit(&large);
    child.set_sync();
    client.roundtrip()?;
    gate.open()?;
    client.wait_flag(
        "frame callback of the held commit, applied while synchronized",
        &applied,
    )?;

    child.set_desync();
    for _ in 0..10 {
        window.wait_frame(&mut client)?;
        client.roundtrip()?;
        if old.is_released() {
            break;
        }
    }
    ensure!(
        old.is_released(),
        "the replaced buffer was never released: a kept element still holds it"
    );
    comp.terminate()?;
    let image = RgbaImage::load_png(&shot)?;
    check_window_pixel(&image, 0, 10, BLUE).context("the child's new buffer")?;
    comp.stats()?.require_test_hooks("COMPOSITOR_COPY_GATE")?;
    drop((child, window, large, old, main));
    Ok(())
}

/// Restacking changes no surface's state (smithay applies it at once), so
/// the frames that reuse the last frame's elements without a walk must see
/// it some other way: the child raised is drawn on top.
#[test]
fn a_restacked_child_is_drawn_in_its_new_place() -> Result<()> {
    const GREEN: [u8; 4] = [20, 200, 40, 255];
    const RED: [u8; 4] = [220, 30, 30, 255];
    const BLUE: [u8; 4] = [20, 40, 230, 255];
    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("out.png");
    let args: Vec<OsString> = vec![
        "--size".into(),
        "320x240".into(),
        "--screenshot".into(),
        shot.clone().into(),
    ];
    let mut comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "restacked")?;
    let main = buffer(&client, 128, GREEN)?;
    window.attach(&main);
    let red = buffer(&client, 64, RED)?;
    let blue = buffer(&client, 64, BLUE)?;
    let below = Subsurface::new(&client, &window.surface);
    below.attach_commit(&red);
    let above = Subsurface::new(&client, &window.surface);
    above.attach_commit(&blue);
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;

    let before = comp.snapshot()?.scene.walks_skipped;
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;
    ensure!(
        comp.snapshot()?.scene.walks_skipped > before,
        "no frame where only the parent committed skipped the walk"
    );

    below.subsurface.place_above(&above.surface);
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;
    comp.terminate()?;
    let image = RgbaImage::load_png(&shot)?;
    check_window_pixel(&image, 0, 10, RED).context("the child placed above its sibling")?;
    drop((below, above, window, red, blue, main));
    Ok(())
}
