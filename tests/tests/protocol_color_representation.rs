//! `wp_color_representation_v1`: what the manager announces on bind, the
//! requests a compositor must accept, and one test per protocol error.
//!
//! The compositor offers `wp_color_representation_manager_v1` version 1 and
//! announces the premultiplied-electrical alpha mode, identity with full
//! range, and BT.601, BT.709 and BT.2020 each with limited and full range.
//! Each error test starts its own compositor and a witness client that keeps
//! redrawing on frame callbacks, then sends each bad input from a fresh
//! connection ([`testkit::witness::expect_protocol_errors`]): the exact error
//! (code and interface), then at least 5 more witness frames, and a clean
//! exit on SIGTERM.
//!
//! Requires the compositor binary, as the test scripts build it:
//! `cargo build --workspace --bins --features compositor/test-hooks` (or set
//! `COMPOSITOR_BIN`).

use std::collections::BTreeSet;

use anyhow::{ensure, Context, Result};
use testkit::buffer::{DmabufBuffer, PlaneLayout};
use testkit::client::Client;
use testkit::color_representation::{
    wp_color_representation_manager_v1, wp_color_representation_surface_v1, AlphaMode, ChromaLocation,
    ColorRepresentationManager, ManagerEvent, WireCoefficients, WireRange, WpColorRepresentationSurfaceV1,
    MANAGER_INTERFACE, SURFACE_INTERFACE,
};
use testkit::harness::Compositor;
use testkit::pixel::Format;
use testkit::provider::provider_from_env;
use testkit::witness::{expect_protocol_errors, BadClient};
use testkit::Window;
use wayland_client::{Proxy, WEnum};

use wp_color_representation_manager_v1::Error as ManagerError;
use wp_color_representation_surface_v1::Error as SurfaceError;
use wp_color_representation_surface_v1::Request;

/// Size of the buffers the tests attach: the representation scenes'
/// windows, whose planes lie where lavapipe puts them in every format (so
/// each buffer imports).
const SIZE: (u32, u32) = testkit::scenes::REPRESENTATION_WINDOW;

/// The `(coefficients, range)` pairs the compositor supports.
fn supported_pairs() -> BTreeSet<(u32, u32)> {
    let mut pairs = BTreeSet::from([(WireCoefficients::Identity.into(), WireRange::Full.into())]);
    for c in [
        WireCoefficients::Bt601,
        WireCoefficients::Bt709,
        WireCoefficients::Bt2020,
    ] {
        for r in [WireRange::Limited, WireRange::Full] {
            pairs.insert((c.into(), r.into()));
        }
    }
    pairs
}

/// A `SIZE` buffer of `format` filled with one colour, its planes laid out
/// as the representation scenes lay them out (YUV420: one fd per plane;
/// the other Y'CbCr formats: page-aligned in one fd).
fn buffer(client: &Client, format: Format) -> Result<DmabufBuffer> {
    let provider = provider_from_env()?;
    let texel = format.encode([200, 80, 40, 255]);
    let layout = match format {
        Format::Yuv420 => PlaneLayout::FdPerPlane,
        f if f.is_yuv() => PlaneLayout::OneFdAligned,
        _ => PlaneLayout::default(),
    };
    DmabufBuffer::with_layout(
        client,
        &*provider,
        SIZE,
        format,
        layout,
        format.plane_row_bytes(0, SIZE.0),
        &move |_, _| texel,
    )
    .with_context(|| format!("a {format:?} buffer"))
}

/// A mapped-on-commit window and its surface's representation object.
fn window_with_object(client: &mut Client) -> Result<(Window, WpColorRepresentationSurfaceV1)> {
    let window = Window::new(client, "color-representation")?;
    let object = client.color_representation()?.get_surface(client, &window.surface);
    Ok((window, object))
}

/// Sends a request with any raw enum values (the typed methods only take
/// the protocol's own).
fn send(object: &WpColorRepresentationSurfaceV1, request: Request) -> Result<()> {
    object
        .send_request(request)
        .map_err(|e| anyhow::anyhow!("send a request on {}: {e:?}", object.id()))
}

/// Sets `(coefficients, range)`, attaches a new `format` buffer and commits.
fn commit_with(client: &mut Client, coefficients: WireCoefficients, range: WireRange, format: Format) -> Result<()> {
    let (window, object) = window_with_object(client)?;
    object.set_coefficients_and_range(coefficients, range);
    let buf = buffer(client, format)?;
    window.attach(&buf);
    window.surface.commit();
    Ok(())
}

/// Sets a chroma location, attaches a new `format` buffer and commits.
fn commit_chroma_location_with(client: &mut Client, location: ChromaLocation, format: Format) -> Result<()> {
    let (window, object) = window_with_object(client)?;
    object.set_chroma_location(location);
    let buf = buffer(client, format)?;
    window.attach(&buf);
    window.surface.commit();
    Ok(())
}

/// The manager announces exactly its one alpha mode and seven pairs, each
/// once, then `done`, and does so again for every bind.
#[test]
fn bind_announces_exactly_the_supported_set() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut client = comp.connect()?;
    let versions: Vec<u32> = client.registry.contents().with_list(|list| {
        list.iter()
            .filter(|g| g.interface == MANAGER_INTERFACE)
            .map(|g| g.version)
            .collect()
    });
    ensure!(
        versions == [1],
        "{MANAGER_INTERFACE} globals: versions {versions:?}, expected one of version 1"
    );
    for bind in 0..2 {
        let manager = ColorRepresentationManager::bind(&mut client)?;
        let events = manager.events();
        let alpha: Vec<u32> = events
            .iter()
            .filter_map(|e| match *e {
                ManagerEvent::SupportedAlphaMode(mode) => Some(mode),
                _ => None,
            })
            .collect();
        ensure!(
            alpha == [u32::from(AlphaMode::PremultipliedElectrical)],
            "bind {bind}: alpha modes {alpha:?}, expected premultiplied_electrical only; events {events:?}"
        );
        let pairs: Vec<(u32, u32)> = events
            .iter()
            .filter_map(|e| match *e {
                ManagerEvent::SupportedCoefficientsAndRange { coefficients, range } => Some((coefficients, range)),
                _ => None,
            })
            .collect();
        let distinct: BTreeSet<_> = pairs.iter().copied().collect();
        ensure!(
            distinct.len() == pairs.len(),
            "bind {bind}: a pair announced twice: {pairs:?}"
        );
        ensure!(
            distinct == supported_pairs(),
            "bind {bind}: pairs {distinct:?}, expected {:?}",
            supported_pairs()
        );
        ensure!(
            events.last() == Some(&ManagerEvent::Done)
                && events.iter().filter(|e| **e == ManagerEvent::Done).count() == 1,
            "bind {bind}: expected one done, after everything else: {events:?}"
        );
        ensure!(events.len() == 1 + 7 + 1, "bind {bind}: unexpected events {events:?}");
        manager.manager.destroy();
    }
    client.roundtrip()?;
    drop(client);
    comp.terminate_successfully()
}

/// Everything the protocol allows is accepted: the supported alpha mode,
/// every supported pair with a buffer it fits, every chroma location with a
/// 4:2:0 buffer, a surface object destroyed and got again, and one that
/// outlives its wl_surface and is then destroyed.
#[test]
fn supported_requests_are_accepted() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut client = comp.connect()?;
    let manager = client.color_representation()?;

    // Y'CbCr windows: every supported Y'CbCr pair with each 4:2:0 and 4:2:2 format.
    for format in [Format::Nv12, Format::Nv16, Format::Yuv420, Format::P010] {
        let (window, object) = window_with_object(&mut client)?;
        object.set_alpha_mode(AlphaMode::PremultipliedElectrical);
        let buf = buffer(&client, format)?;
        for c in [
            WireCoefficients::Bt601,
            WireCoefficients::Bt709,
            WireCoefficients::Bt2020,
        ] {
            for r in [WireRange::Limited, WireRange::Full] {
                object.set_coefficients_and_range(c, r);
                window.attach(&buf);
                window
                    .wait_frame(&mut client)
                    .with_context(|| format!("{format:?} with {c:?} {r:?}"))?;
            }
        }
        if format != Format::Nv16 {
            for location in [
                ChromaLocation::Type0,
                ChromaLocation::Type1,
                ChromaLocation::Type2,
                ChromaLocation::Type3,
                ChromaLocation::Type4,
                ChromaLocation::Type5,
            ] {
                object.set_chroma_location(location);
                window.attach(&buf);
                window
                    .wait_frame(&mut client)
                    .with_context(|| format!("{format:?} with chroma location {location:?}"))?;
            }
        }
        // Destroyed: the next commit drops the state; a new object may be got.
        object.destroy();
        window.damage_all();
        window
            .wait_frame(&mut client)
            .with_context(|| format!("{format:?} after destroy"))?;
        let again = manager.get_surface(&client, &window.surface);
        again.set_coefficients_and_range(WireCoefficients::Bt709, WireRange::Full);
        window.damage_all();
        window
            .wait_frame(&mut client)
            .with_context(|| format!("{format:?} with a second surface object"))?;
        again.destroy();
        drop(window);
    }

    // An RGB window: identity with full range.
    let (window, object) = window_with_object(&mut client)?;
    object.set_alpha_mode(AlphaMode::PremultipliedElectrical);
    object.set_coefficients_and_range(WireCoefficients::Identity, WireRange::Full);
    let buf = buffer(&client, Format::Xrgb8888)?;
    window.attach(&buf);
    window.wait_frame(&mut client).context("XRGB8888 with identity full")?;

    // Destroying the object of a destroyed wl_surface is fine.
    let surface = client.globals.compositor.create_surface(&client.qh, ());
    let orphan = manager.get_surface(&client, &surface);
    surface.destroy();
    orphan.destroy();

    client.roundtrip().context("no protocol error for supported requests")?;
    ensure!(client.protocol_error().is_none(), "{:?}", client.protocol_error());
    drop((window, buf, client));
    comp.terminate_successfully()
}

#[test]
fn surface_exists() -> Result<()> {
    let role_less: BadClient = ("get_surface twice for a role-less wl_surface", &|c| {
        let manager = c.color_representation()?;
        let surface = c.globals.compositor.create_surface(&c.qh, ());
        let _first = manager.get_surface(c, &surface);
        let _second = manager.get_surface(c, &surface);
        Ok(())
    });
    let mapped: BadClient = ("get_surface again for a mapped window using its first", &|c| {
        let (window, object) = window_with_object(c)?;
        object.set_coefficients_and_range(WireCoefficients::Bt709, WireRange::Limited);
        let buf = buffer(c, Format::Nv12)?;
        window.attach(&buf);
        window.wait_frame(c)?;
        let _second = c.color_representation()?.get_surface(c, &window.surface);
        Ok(())
    });
    expect_protocol_errors(
        MANAGER_INTERFACE,
        ManagerError::SurfaceExists as u32,
        &[role_less, mapped],
    )
}

#[test]
fn alpha_mode() -> Result<()> {
    let mode = |raw: WEnum<AlphaMode>| {
        move |c: &mut Client| -> Result<()> {
            let (_window, object) = window_with_object(c)?;
            send(&object, Request::SetAlphaMode { alpha_mode: raw })
        }
    };
    let (optical, straight, unknown) = (
        mode(WEnum::Value(AlphaMode::PremultipliedOptical)),
        mode(WEnum::Value(AlphaMode::Straight)),
        mode(WEnum::Unknown(3)),
    );
    expect_protocol_errors(
        SURFACE_INTERFACE,
        SurfaceError::AlphaMode as u32,
        &[
            ("premultiplied_optical", &optical),
            ("straight", &straight),
            ("alpha mode 3 (no such mode)", &unknown),
        ],
    )
}

#[test]
fn coefficients() -> Result<()> {
    // Raw values, so that numbers outside the enums go out too.
    let pair = |coefficients: u32, range: u32| {
        move |c: &mut Client| -> Result<()> {
            let (_window, object) = window_with_object(c)?;
            let (coefficients, range) = (WEnum::from(coefficients), WEnum::from(range));
            send(&object, Request::SetCoefficientsAndRange { coefficients, range })
        }
    };
    let (limited, full): (u32, u32) = (WireRange::Limited.into(), WireRange::Full.into());
    let cases = [
        ("fcc limited", pair(WireCoefficients::Fcc.into(), limited)),
        ("smpte240 limited", pair(WireCoefficients::Smpte240.into(), limited)),
        ("bt2020_cl limited", pair(WireCoefficients::Bt2020Cl.into(), limited)),
        ("ictcp full", pair(WireCoefficients::Ictcp.into(), full)),
        ("identity limited", pair(WireCoefficients::Identity.into(), limited)),
        ("coefficients 0 (invalid)", pair(0, limited)),
        ("coefficients 9 (no such)", pair(9, full)),
        ("bt709 with range 0 (invalid)", pair(WireCoefficients::Bt709.into(), 0)),
    ];
    let cases: Vec<BadClient> = cases.iter().map(|(name, f)| (*name, f as _)).collect();
    expect_protocol_errors(SURFACE_INTERFACE, SurfaceError::Coefficients as u32, &cases)
}

#[test]
fn chroma_location() -> Result<()> {
    let location = |raw: u32| {
        move |c: &mut Client| -> Result<()> {
            let (_window, object) = window_with_object(c)?;
            send(
                &object,
                Request::SetChromaLocation {
                    chroma_location: WEnum::Unknown(raw),
                },
            )
        }
    };
    let (zero, seven, max) = (location(0), location(7), location(u32::MAX));
    expect_protocol_errors(
        SURFACE_INTERFACE,
        SurfaceError::ChromaLocation as u32,
        &[
            ("chroma location 0 (invalid)", &zero),
            ("chroma location 7 (after type_5)", &seven),
            ("chroma location u32::MAX", &max),
        ],
    )
}

#[test]
fn pixel_format() -> Result<()> {
    expect_protocol_errors(
        SURFACE_INTERFACE,
        SurfaceError::PixelFormat as u32,
        &[
            ("identity full with an NV12 buffer", &|c| {
                commit_with(c, WireCoefficients::Identity, WireRange::Full, Format::Nv12)
            }),
            ("bt709 limited with an XRGB8888 buffer", &|c| {
                commit_with(c, WireCoefficients::Bt709, WireRange::Limited, Format::Xrgb8888)
            }),
            ("bt601 full with an ARGB8888 buffer", &|c| {
                commit_with(c, WireCoefficients::Bt601, WireRange::Full, Format::Argb8888)
            }),
            ("chroma location type_0 with an NV16 (4:2:2) buffer", &|c| {
                commit_chroma_location_with(c, ChromaLocation::Type0, Format::Nv16)
            }),
            ("chroma location type_2 with an XRGB8888 buffer", &|c| {
                commit_chroma_location_with(c, ChromaLocation::Type2, Format::Xrgb8888)
            }),
        ],
    )
}

#[test]
fn inert() -> Result<()> {
    /// A surface object whose wl_surface is already destroyed.
    fn orphan(c: &mut Client) -> Result<WpColorRepresentationSurfaceV1> {
        let manager = c.color_representation()?;
        let surface = c.globals.compositor.create_surface(&c.qh, ());
        let object = manager.get_surface(c, &surface);
        surface.destroy();
        Ok(object)
    }
    expect_protocol_errors(
        SURFACE_INTERFACE,
        SurfaceError::Inert as u32,
        &[
            ("set_alpha_mode after the wl_surface was destroyed", &|c| {
                orphan(c)?.set_alpha_mode(AlphaMode::PremultipliedElectrical);
                Ok(())
            }),
            ("set_coefficients_and_range after the wl_surface was destroyed", &|c| {
                orphan(c)?.set_coefficients_and_range(WireCoefficients::Bt709, WireRange::Limited);
                Ok(())
            }),
            ("set_chroma_location after the wl_surface was destroyed", &|c| {
                orphan(c)?.set_chroma_location(ChromaLocation::Type0);
                Ok(())
            }),
        ],
    )
}
