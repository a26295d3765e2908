//! linux-dmabuf at a chosen version, client side: binding the global at
//! exactly that version and reading a feedback object's events as sent, so
//! a test can check what each version gets.

use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use anyhow::{ensure, Context, Result};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_feedback_v1::{self, ZwpLinuxDmabufFeedbackV1};
pub use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1;

use crate::client::{Client, State};

/// `tranche_flags.scanout`.
pub const SCANOUT: u32 = 1;
/// `tranche_flags.sampling` (version 6).
pub const SAMPLING: u32 = 2;

/// One tranche as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrancheEvents {
    pub device: Option<Vec<u8>>,
    pub flags: Option<u32>,
    /// Indices from every `tranche_formats` event of the tranche.
    pub indices: Vec<u16>,
}

/// Everything one feedback object received, in the shape the protocol
/// defines, up to its first `done`.
#[derive(Debug, Default)]
pub struct FeedbackEvents {
    pub main_device: Option<Vec<u8>>,
    /// The format table read back: `(fourcc, modifier)` per entry.
    pub table: Vec<(u32, u64)>,
    /// Tranches closed by `tranche_done`.
    pub tranches: Vec<TrancheEvents>,
    current: TrancheEvents,
    /// Events out of the protocol's order (a tranche event after `done`,
    /// `main_device` after the table, a table that cannot be read).
    pub out_of_order: Vec<String>,
    pub done: bool,
}

impl FeedbackEvents {
    /// The table entries a tranche names.
    pub fn formats(&self, tranche: &TrancheEvents) -> Vec<(u32, u64)> {
        tranche
            .indices
            .iter()
            .filter_map(|&i| self.table.get(usize::from(i)).copied())
            .collect()
    }
}

/// A `dev_t` as the protocol's arrays carry it.
pub fn dev_bytes(major: u32, minor: u32) -> Vec<u8> {
    libc::makedev(major, minor).to_ne_bytes().to_vec()
}

/// Binds `zwp_linux_dmabuf_v1` at exactly `version` on `client`'s
/// connection (beside the one [`Client`] binds at 3).
pub fn bind(client: &mut Client, version: u32) -> Result<ZwpLinuxDmabufV1> {
    let dmabuf = client
        .registry
        .bind(&client.qh, version..=version, ())
        .with_context(|| format!("zwp_linux_dmabuf_v1 version {version} not offered"))?;
    client.roundtrip()?;
    Ok(dmabuf)
}

/// `get_default_feedback`, or `get_surface_feedback` for `surface`, and
/// every event up to `done`.
pub fn feedback(client: &mut Client, dmabuf: &ZwpLinuxDmabufV1, surface: Option<&WlSurface>) -> Result<FeedbackEvents> {
    let events = Arc::new(Mutex::new(FeedbackEvents::default()));
    let object = match surface {
        Some(surface) => dmabuf.get_surface_feedback(surface, &client.qh, events.clone()),
        None => dmabuf.get_default_feedback(&client.qh, events.clone()),
    };
    let watched = events.clone();
    client.dispatch_until("zwp_linux_dmabuf_feedback_v1.done", |_| watched.lock().unwrap().done)?;
    object.destroy();
    let mut events = std::mem::take(&mut *events.lock().unwrap());
    ensure!(
        events.out_of_order.is_empty(),
        "feedback events out of order: {:?}",
        events.out_of_order
    );
    events.current = TrancheEvents::default();
    Ok(events)
}

/// Reads the table the way a client may: a private read-only view of the
/// file (here by `pread`, which sees the same bytes).
fn read_table(fd: OwnedFd, size: u32) -> Result<Vec<(u32, u64)>> {
    ensure!(
        size.is_multiple_of(16),
        "format table of {size} bytes is not whole entries"
    );
    let file = std::fs::File::from(fd);
    let mut bytes = vec![0u8; size as usize];
    file.read_exact_at(&mut bytes, 0).context("read the format table")?;
    Ok(bytes
        .chunks_exact(16)
        .map(|e| {
            let format = u32::from_ne_bytes(e[0..4].try_into().unwrap());
            let modifier = u64::from_ne_bytes(e[8..16].try_into().unwrap());
            (format, modifier)
        })
        .collect())
}

impl Dispatch<ZwpLinuxDmabufFeedbackV1, Arc<Mutex<FeedbackEvents>>> for State {
    fn event(
        _: &mut Self,
        _: &ZwpLinuxDmabufFeedbackV1,
        event: zwp_linux_dmabuf_feedback_v1::Event,
        data: &Arc<Mutex<FeedbackEvents>>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zwp_linux_dmabuf_feedback_v1::Event;
        let mut fb = data.lock().unwrap();
        if fb.done {
            // Only the first set of parameters is recorded.
            return;
        }
        match event {
            Event::MainDevice { device } => {
                if !fb.table.is_empty() || !fb.tranches.is_empty() {
                    fb.out_of_order.push("main_device after the table or a tranche".into());
                }
                fb.main_device = Some(device);
            }
            Event::FormatTable { fd, size } => match read_table(fd, size) {
                Ok(table) => fb.table = table,
                Err(e) => fb.out_of_order.push(format!("format_table: {e:#}")),
            },
            Event::TrancheTargetDevice { device } => fb.current.device = Some(device),
            Event::TrancheFlags { flags } => {
                if fb.current.flags.is_some() {
                    fb.out_of_order.push("two tranche_flags in one tranche".into());
                }
                fb.current.flags = Some(flags.into());
            }
            Event::TrancheFormats { indices } => {
                let parsed: Vec<u16> = indices
                    .chunks_exact(2)
                    .map(|c| u16::from_ne_bytes([c[0], c[1]]))
                    .collect();
                fb.current.indices.extend(parsed);
            }
            Event::TrancheDone => {
                let tranche = std::mem::take(&mut fb.current);
                fb.tranches.push(tranche);
            }
            Event::Done => fb.done = true,
            _ => {}
        }
    }
}
