//! `scene-client --scene NAME`: shows one scene from `testkit::scenes` and exits.
//!
//! Windows are mapped strictly one after another (each waits for its first
//! frame callback) because the compositor places toplevels by map order. After
//! the last window, every window commits once more and waits for that frame,
//! so the compositor's final screenshot contains the complete scene. A
//! surface whose spec asks for a colour representation gets it through
//! `wp_color_representation_v1` before the commit that attaches its buffer.

use anyhow::{bail, Context, Result};
use testkit::buffer::DmabufBuffer;
use testkit::client::Client;
use testkit::color_representation::SurfaceRepresentation;
use testkit::provider::provider_from_env;
use testkit::scenes::{self, Scene, SurfaceSpec};
use testkit::window::{Subsurface, Window};
use wayland_client::protocol::wl_surface::WlSurface;

fn parse_args() -> Result<String> {
    let mut args = std::env::args().skip(1);
    let mut scene = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--scene" => scene = Some(args.next().context("--scene needs a value")?),
            "-h" | "--help" => {
                println!(
                    "usage: scene-client --scene NAME   (scenes: {})",
                    scenes::NAMES.join(", ")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    scene.context("missing --scene NAME")
}

/// A mapped window with every buffer it ever attached (kept alive so none is
/// destroyed while the compositor may still show it).
type ShownWindow = (Window, Vec<DmabufBuffer>, Vec<(Subsurface, DmabufBuffer)>);

/// Everything that must stay alive until the process exits.
struct Shown {
    _client: Client,
    _windows: Vec<ShownWindow>,
}

/// Before the commit that attaches a buffer made from `spec`: asks for the
/// spec's colour representation (binding `wp_color_representation_v1` only
/// if it has one; a later spec without one drops it again).
fn ask_representation(
    client: &mut Client,
    slot: &mut SurfaceRepresentation,
    surface: &WlSurface,
    spec: &SurfaceSpec,
) -> Result<()> {
    slot.set(client, surface, spec.representation)
        .with_context(|| format!("colour representation of a {}x{} surface", spec.width, spec.height))
}

fn show(scene: &Scene) -> Result<Shown> {
    let provider = provider_from_env()?;
    let mut client = Client::connect()?;
    let mut windows = Vec::new();
    for spec in &scene.windows {
        let mut window = Window::new(&mut client, spec.title)?;
        let mut subs = Vec::new();
        for sub in &spec.subsurfaces {
            let mut s = Subsurface::new(&client, &window.surface);
            s.set_position(sub.offset.0, sub.offset.1);
            let buf = DmabufBuffer::from_spec(&client, &*provider, &sub.surface)?;
            ask_representation(&mut client, &mut s.representation, &s.surface, &sub.surface)?;
            // Synchronized (default): applied with the parent's commit below.
            s.attach_commit(&buf);
            subs.push((s, buf));
        }
        let first = DmabufBuffer::from_spec(&client, &*provider, &spec.surface)?;
        // Pin the window geometry to the main surface so the placement rule
        // (n-th toplevel at 32 + 64n) positions the main surface itself, even
        // when a subsurface sticks out above or left of it.
        window.set_geometry(spec.surface.width, spec.surface.height);
        ask_representation(&mut client, &mut window.representation, &window.surface, &spec.surface)?;
        window.attach(&first);
        window
            .wait_frame(&mut client)
            .with_context(|| format!("first frame of {:?}", spec.title))?;
        let mut buffers = vec![first];
        if let Some(next) = &spec.replacement {
            let second = DmabufBuffer::from_spec(&client, &*provider, next)?;
            ask_representation(&mut client, &mut window.representation, &window.surface, next)?;
            window.attach(&second);
            window
                .wait_frame(&mut client)
                .with_context(|| format!("replacement frame of {:?}", spec.title))?;
            buffers.push(second);
        }
        windows.push((window, buffers, subs));
    }
    for (window, _, _) in &windows {
        window.damage_all();
        window.wait_frame(&mut client).context("final frame")?;
    }
    client.roundtrip().context("final roundtrip")?;
    Ok(Shown {
        _client: client,
        _windows: windows,
    })
}

fn main() -> Result<()> {
    let name = parse_args()?;
    let scene = scenes::by_name(&name)
        .with_context(|| format!("unknown scene {name:?} (known: {})", scenes::NAMES.join(", ")))?;
    let shown = show(&scene).with_context(|| format!("scene {name}"))?;
    // Exit without running destructors: destroying the windows before the
    // socket closes could let the compositor render one more frame without
    // them, and that frame would become the screenshot.
    std::mem::forget(shown);
    std::process::exit(0)
}
