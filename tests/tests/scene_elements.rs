//! A frame reuses the render elements of the frame before for surfaces
//! that did not change, and builds new ones for surfaces that did (docs in
//! `backend::scene`): counted in the stats' `scene` section.
//!
//! * children that send nothing are reused while their parent commits;
//! * a child moved by its parent's commit is built again (its place
//!   changed, its own state did not);
//! * a child that commits a new buffer is built again.
//!
//! What the built elements show is the render tests' part (`replace`
//! checks a replaced buffer reaches the screen).

use std::ffi::OsString;

use anyhow::{ensure, Result};
use testkit::client::Client;
use testkit::harness::Compositor;
use testkit::{DmabufBuffer, Subsurface, Window};
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
