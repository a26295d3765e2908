//! A third-party client's view: Debian's `wayland-info` (wayland-utils, which
//! scripts/setup-host.sh installs) lists zwp_linux_dmabuf_v1 and every format
//! the renderer imports, with the LINEAR modifier: the RGB formats, and the
//! YUV ones lavapipe samples through a Y'CbCr conversion. Without a DRM
//! device (the host) that is the version 3 list; with one (here named by
//! the test hook `COMPOSITOR_DMABUF_DEVICE`) the global is version 6 and
//! wayland-info, which binds version 4, prints the main device and the
//! tranche.

use std::process::Command;

use testkit::harness::{require_test_hooks, Compositor};

const FORMATS: [&str; 8] = [
    "'AR24'", "'XR24'", "'AB24'", "'XB24'", "'NV12'", "'NV16'", "'YU12'", "'P010'",
];

/// wayland-info's section for zwp_linux_dmabuf_v1, with every format of
/// [`FORMATS`] on a LINEAR line.
fn dmabuf_section(env: &[(&str, &str)]) -> String {
    let mut compositor = Compositor::spawn_with_env(&["--size", "320x240"], env).expect("compositor starts");
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
    for fourcc in FORMATS {
        let line = section
            .lines()
            .find(|l| l.contains(fourcc))
            .unwrap_or_else(|| panic!("{fourcc} missing:\n{section}"));
        assert!(line.contains("LINEAR"), "{fourcc} without LINEAR: {line}");
    }
    compositor.terminate_successfully().expect("clean exit");
    section
}

#[test]
fn wayland_info_lists_linux_dmabuf_and_its_formats() {
    let section = dmabuf_section(&[]);
    assert!(
        section.contains("version:  3"),
        "expected the v3 global without a DRM device:\n{section}"
    );
}

#[test]
fn wayland_info_lists_the_version_6_global_with_its_tranche() {
    require_test_hooks("COMPOSITOR_DMABUF_DEVICE").expect("test hooks");
    let section = dmabuf_section(&[("COMPOSITOR_DMABUF_DEVICE", "226:128")]);
    assert!(section.contains("version:  6"), "expected the v6 global:\n{section}");
    // 226:128 is 0xE280; wayland-info prints the tranche after the device.
    assert!(section.contains("main device: 0xE280"), "main device:\n{section}");
    assert!(section.contains("tranche"), "no tranche:\n{section}");
    assert!(section.contains("target device: 0xE280"), "tranche device:\n{section}");
}
