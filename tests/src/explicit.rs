//! Explicit sync on the client side: `wp_linux_drm_syncobj_v1`
//! requests, sent exactly as told so protocol tests can provoke every error.
//! The timelines themselves are syncobjs the test creates on a render node
//! (`importer::sync::Syncobj`) and passes here as fds.

use std::io::Write;
use std::os::fd::BorrowedFd;

use wayland_client::protocol::wl_surface::WlSurface;
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1,
    wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1,
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};

use crate::client::{Client, State};

pub type SyncobjManager = WpLinuxDrmSyncobjManagerV1;
pub type SyncobjSurface = WpLinuxDrmSyncobjSurfaceV1;
pub type SyncobjTimeline = WpLinuxDrmSyncobjTimelineV1;

/// The manager, or an error saying the compositor does not offer it.
pub fn manager(client: &Client) -> anyhow::Result<SyncobjManager> {
    client
        .globals
        .syncobj
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the compositor offers no wp_linux_drm_syncobj_manager_v1"))
}

/// `import_timeline(fd)`: the fd of a syncobj (`Syncobj::export`).
pub fn import_timeline(client: &Client, fd: BorrowedFd<'_>) -> anyhow::Result<SyncobjTimeline> {
    Ok(manager(client)?.import_timeline(fd, &client.qh, ()))
}

/// `get_surface(surface)`.
pub fn get_surface(client: &Client, surface: &WlSurface) -> anyhow::Result<SyncobjSurface> {
    Ok(manager(client)?.get_surface(surface, &client.qh, ()))
}

/// Splits a 64-bit timeline point into the protocol's (hi, lo).
pub fn split(point: u64) -> (u32, u32) {
    ((point >> 32) as u32, point as u32)
}

/// `set_acquire_point` + `set_release_point` (not committed).
pub fn set_points(surface: &SyncobjSurface, timeline: &SyncobjTimeline, acquire: u64, release: u64) {
    let (hi, lo) = split(acquire);
    surface.set_acquire_point(timeline, hi, lo);
    let (hi, lo) = split(release);
    surface.set_release_point(timeline, hi, lo);
}

// None of the three interfaces has events.
wayland_client::delegate_noop!(State: ignore WpLinuxDrmSyncobjManagerV1);
wayland_client::delegate_noop!(State: ignore WpLinuxDrmSyncobjSurfaceV1);
wayland_client::delegate_noop!(State: ignore WpLinuxDrmSyncobjTimelineV1);

/// A `wl_shm` buffer (XRGB8888, zero-filled): what `unsupported_buffer`
/// is raised for when it carries sync points.
pub fn shm_buffer(
    client: &Client,
    width: i32,
    height: i32,
) -> anyhow::Result<wayland_client::protocol::wl_buffer::WlBuffer> {
    filled_shm_buffer(client, width, height, [0; 4])
}

/// A `wl_shm` XRGB8888 buffer whose every pixel is the 4 bytes `pixel`, as
/// laid out in memory (`Format::Xrgb8888.encode` gives them for a colour).
pub fn filled_shm_buffer(
    client: &Client,
    width: i32,
    height: i32,
    pixel: [u8; 4],
) -> anyhow::Result<wayland_client::protocol::wl_buffer::WlBuffer> {
    use anyhow::Context;
    use wayland_client::protocol::wl_shm;
    let shm = client.globals.shm.as_ref().context("no wl_shm global")?;
    let size = width * height * 4;
    let mut fd = std::fs::File::from(rustix::fs::memfd_create("test-shm", rustix::fs::MemfdFlags::CLOEXEC)?);
    let bytes: Vec<u8> = pixel.iter().copied().cycle().take(size as usize).collect();
    fd.write_all(&bytes).context("filling the shm buffer")?;
    let pool = shm.create_pool(std::os::fd::AsFd::as_fd(&fd), size, &client.qh, ());
    let buffer = pool.create_buffer(
        0,
        width,
        height,
        width * 4,
        wl_shm::Format::Xrgb8888,
        &client.qh,
        crate::buffer::BufferData::new(),
    );
    pool.destroy();
    Ok(buffer)
}

wayland_client::delegate_noop!(State: ignore wayland_client::protocol::wl_shm::WlShm);
wayland_client::delegate_noop!(State: ignore wayland_client::protocol::wl_shm_pool::WlShmPool);
