//! Kernel VM tier: linux-dmabuf version 6 with a real DRM node. Lavapipe
//! reports no DRM node of its own, so the compositor names the first render
//! node (a CPU renderer maps a dma-buf from any device); `wayland-info` and
//! a version 6 client read it from the feedback, and a buffer from another
//! device (a vgem dumb buffer, with vgem named as its sampling device) is
//! still shown.
//!
//! Ignored on the host (no /dev/dri); `scripts/vm/test.sh` runs it in the
//! VM with `--include-ignored`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use testkit::buffer::{CreateOutcome, ParamsBuilder, MOD_LINEAR};
use testkit::dmabuf_feedback::{self, SAMPLING};
use testkit::harness::{read_stats, Compositor};
use testkit::image_compare::check_window_pixel;
use testkit::kernel::vgem::Vgem;
use testkit::{Format, RgbaImage, Window};

const GREEN: [u8; 4] = [40, 190, 70, 255];
const SIZE: u32 = 64;

/// The device number of `path`, as the protocol's arrays carry it.
fn rdev_bytes(path: &std::path::Path) -> Result<Vec<u8>> {
    let st = rustix::fs::stat(path).with_context(|| format!("stat {}", path.display()))?;
    Ok((st.st_rdev as libc::dev_t).to_ne_bytes().to_vec())
}

/// The first `/dev/dri/renderD*` by name: the node the compositor names.
fn first_render_node() -> Result<PathBuf> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .context("read /dev/dri")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("renderD"))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().next().context("no render node in /dev/dri")
}

/// A third-party client's view: Debian's `wayland-info` lists the version
/// 6 global and (it binds version 4) the node as main device and tranche
/// target, by path where libdrm resolves it, else as a number.
fn wayland_info_lists_the_node(comp: &Compositor, node: &std::path::Path) -> Result<()> {
    let socket = comp.socket_path();
    let out = std::process::Command::new("wayland-info")
        .env("XDG_RUNTIME_DIR", socket.parent().context("socket dir")?)
        .env("WAYLAND_DISPLAY", socket.file_name().context("socket name")?)
        .output()
        .context("wayland-info runs (wayland-utils)")?;
    ensure!(
        out.status.success(),
        "wayland-info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let section = text
        .split("interface: ")
        .find(|s| s.starts_with("'zwp_linux_dmabuf_v1'"))
        .with_context(|| format!("no zwp_linux_dmabuf_v1 in:\n{text}"))?;
    ensure!(section.contains("version:  6"), "not the version 6 global:\n{section}");
    let rdev = rustix::fs::stat(node)?.st_rdev;
    let names = [format!("0x{rdev:X}"), node.display().to_string()];
    for what in ["main device: ", "target device: "] {
        ensure!(
            names.iter().any(|n| section.contains(&format!("{what}{n}"))),
            "wayland-info does not name {} as {what}:\n{section}",
            node.display()
        );
    }
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs a DRM render node and the vgem module (run scripts/vm/test.sh)"]
fn version_6_names_the_render_node_and_shows_a_buffer_from_vgem() -> Result<()> {
    let out = tempfile::tempdir()?;
    let (shot, stats) = (out.path().join("out.png"), out.path().join("stats.json"));
    let args: Vec<OsString> = vec![
        "--size".into(),
        "320x240".into(),
        "--screenshot".into(),
        shot.clone().into(),
        "--stats".into(),
        stats.clone().into(),
    ];
    let mut comp = Compositor::spawn(&args)?;
    let node = first_render_node()?;
    wayland_info_lists_the_node(&comp, &node)?;
    let mut client = comp.connect()?;
    let dmabuf = dmabuf_feedback::bind(&mut client, 6)?;
    let feedback = dmabuf_feedback::feedback(&mut client, &dmabuf, None)?;
    ensure!(feedback.main_device.is_none(), "main_device sent to a version 6 client");
    let advertised = rdev_bytes(&node)?;
    let sampling: Vec<_> = feedback
        .tranches
        .iter()
        .filter(|t| t.flags.is_some_and(|f| f & SAMPLING != 0))
        .collect();
    ensure!(
        sampling.len() == 1 && sampling[0].device.as_deref() == Some(&advertised[..]),
        "expected one sampling tranche for {}: {:?}",
        node.display(),
        feedback.tranches
    );

    // A vgem dumb buffer, filled from the CPU, meant for vgem.
    let vgem = Vgem::open()?;
    let bo = vgem.create_dumb(SIZE, SIZE, 32)?;
    bo.fill(SIZE, SIZE, Format::Xrgb8888.encode(GREEN))?;
    let vgem_device = rdev_bytes(&vgem.path)?;
    let params = ParamsBuilder::on(&client, &dmabuf);
    params
        .set_sampling_device(&vgem_device)
        .add(&bo.dmabuf, 0, 0, bo.pitch, MOD_LINEAR);
    params.create(SIZE as i32, SIZE as i32, Format::Xrgb8888.fourcc(), 0);
    let CreateOutcome::Created(buffer) = params.wait_outcome(&mut client)? else {
        anyhow::bail!("create failed for a vgem buffer");
    };
    let window = Window::new(&mut client, "vgem")?;
    window.surface.attach(Some(&buffer), 0, 0);
    window.damage_all();
    window.wait_frame(&mut client)?;
    window.damage_all();
    window.wait_frame(&mut client)?;

    comp.terminate()?;
    let image = RgbaImage::load_png(&shot).context("screenshot")?;
    let stats = read_stats(&stats)?;
    drop(window);
    check_window_pixel(&image, 0, 10, GREEN)?;
    let d = stats.linux_dmabuf;
    ensure!(d.global_version == 6, "global version {}", d.global_version);
    // vgem may itself be the first render node's driver.
    let (named, other) = if vgem_device == advertised { (1, 0) } else { (0, 1) };
    ensure!(d.sampling_device == named && d.other_device == other, "{d:?}");
    ensure!(stats.imports.failed == 0, "imports: {:?}", stats.imports);
    Ok(())
}
