//! linux-dmabuf at a chosen version, client side: binding the global at
//! exactly that version and reading a feedback object's events as sent, so
//! a test can check what each version gets, and every later set of
//! parameters the compositor sends (a surface's feedback can change).

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

/// One set of parameters a feedback object received, in the shape the
/// protocol defines, up to its `done`.
#[derive(Debug, Default)]
pub struct FeedbackEvents {
    pub main_device: Option<Vec<u8>>,
    /// The format table read back: `(fourcc, modifier)` per entry.
    pub table: Vec<(u32, u64)>,
    /// Tranches closed by `tranche_done`.
    pub tranches: Vec<TrancheEvents>,
    current: TrancheEvents,
    /// Events out of the protocol's order (`main_device` after the table,
    /// two flags in a tranche, a table that cannot be read).
    pub out_of_order: Vec<String>,
}

/// Every complete set of parameters one feedback object received, and the
/// one being received.
#[derive(Debug, Default)]
pub struct FeedbackLog {
    pub sets: Vec<FeedbackEvents>,
    current: FeedbackEvents,
}

/// A feedback object kept alive, with what it received.
pub struct FeedbackWatch {
    object: ZwpLinuxDmabufFeedbackV1,
    log: Arc<Mutex<FeedbackLog>>,
}

impl FeedbackWatch {
    /// Waits (bounded) until `n` sets of parameters arrived and returns the
    /// `n`-th (1-based), checked for order.
    pub fn wait_for(&self, client: &mut Client, n: usize) -> Result<FeedbackEvents> {
        let log = self.log.clone();
        client.dispatch_until(&format!("feedback parameter set {n}"), |_| {
            log.lock().unwrap().sets.len() >= n
        })?;
        let mut log = self.log.lock().unwrap();
        let set = std::mem::take(&mut log.sets[n - 1]);
        ensure!(
            set.out_of_order.is_empty(),
            "feedback events out of order: {:?}",
            set.out_of_order
        );
        Ok(set)
    }

    /// The sets received so far.
    pub fn received(&self) -> usize {
        self.log.lock().unwrap().sets.len()
    }
}

impl Drop for FeedbackWatch {
    fn drop(&mut self) {
        self.object.destroy();
    }
}

/// `get_default_feedback`, or `get_surface_feedback` for `surface`, kept
/// alive to watch what it receives.
pub fn watch(client: &Client, dmabuf: &ZwpLinuxDmabufV1, surface: Option<&WlSurface>) -> FeedbackWatch {
    let log = Arc::new(Mutex::new(FeedbackLog::default()));
    let object = match surface {
        Some(surface) => dmabuf.get_surface_feedback(surface, &client.qh, log.clone()),
        None => dmabuf.get_default_feedback(&client.qh, log.clone()),
    };
    FeedbackWatch { object, log }
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

/// `get_default_feedback`, or `get_surface_feedback` for `surface`: its
/// first set of parameters.
pub fn feedback(client: &mut Client, dmabuf: &ZwpLinuxDmabufV1, surface: Option<&WlSurface>) -> Result<FeedbackEvents> {
    watch(client, dmabuf, surface).wait_for(client, 1)
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

impl Dispatch<ZwpLinuxDmabufFeedbackV1, Arc<Mutex<FeedbackLog>>> for State {
    fn event(
        _: &mut Self,
        _: &ZwpLinuxDmabufFeedbackV1,
        event: zwp_linux_dmabuf_feedback_v1::Event,
        data: &Arc<Mutex<FeedbackLog>>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zwp_linux_dmabuf_feedback_v1::Event;
        let mut log = data.lock().unwrap();
        let fb = &mut log.current;
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
            Event::Done => {
                let set = std::mem::take(&mut log.current);
                log.sets.push(set);
            }
            _ => {}
        }
    }
}
