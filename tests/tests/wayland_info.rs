//! A third-party client's view: Debian's `wayland-info` (wayland-utils, which
//! scripts/setup-host.sh installs) lists zwp_linux_dmabuf_v1 and every format
//! the renderer imports, with the LINEAR modifier (the v3 list, as there is no
//! DRM device on the host): the RGB formats, and the YUV ones lavapipe samples
//! through a Y'CbCr conversion.

use std::process::Command;

use testkit::harness::Compositor;

#[test]
fn wayland_info_lists_linux_dmabuf_and_its_formats() {
    let compositor = Compositor::spawn(&["--size", "320x240"]).expect("compositor starts");
    let socket = compositor.socket_path();
    let out = Command::new("wayland-info")
        .env("XDG_RUNTIME_DIR", socket.parent().expect("socket dir"))
        .env("WAYLAND_DISPLAY", socket.file_name().expect("socket name"))
        .output()
        .expect("wayland-info runs (install wayland-utils: scripts/setup-host.sh)");
    assert!(
        out.status.success(),
        "wayland-info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let section: String = text
        .split("interface: ")
        .find(|s| s.starts_with("'zwp_linux_dmabuf_v1'"))
        .unwrap_or_else(|| panic!("no zwp_linux_dmabuf_v1 in:\n{text}"))
        .to_owned();
    for fourcc in [
        "'AR24'", "'XR24'", "'AB24'", "'XB24'", "'NV12'", "'NV16'", "'YU12'", "'P010'",
    ] {
        let line = section
            .lines()
            .find(|l| l.contains(fourcc))
            .unwrap_or_else(|| panic!("{fourcc} missing:\n{section}"));
        assert!(line.contains("LINEAR"), "{fourcc} without LINEAR: {line}");
    }
    assert!(
        section.contains("version:  3"),
        "expected the v3 global without a DRM device:\n{section}"
    );
}
