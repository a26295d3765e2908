//! Dma-buf feedback: the format table and the preference tranches, sent
//! the way the object's version asks for.
//!
//! DOC: what a feedback object receives
//!
//! * Version 4 and 5: `main_device`, `format_table`, then each tranche
//!   (`tranche_target_device`, `tranche_flags`, `tranche_formats`,
//!   `tranche_done`), then `done`. A sampling tranche carries no flag (the
//!   `sampling` bit does not exist before version 6); a scan-out tranche
//!   carries `scanout`.
//! * Version 6: the same without `main_device`, and every tranche has a flag:
//!   `sampling` on the renderer's tranches, `scanout` on the plane's.
//!
//! The table is a sealed memfd written once and never changed, so every
//! feedback object can be sent the same file.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use smithay::backend::allocator::Format;
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::{
    TrancheFlags, ZwpLinuxDmabufFeedbackV1,
};
use smithay::reexports::wayland_server::Resource;

/// Version from which `main_device` is no longer sent and every tranche
/// must have a flag.
pub const SAMPLING_FLAG_SINCE: u32 = 6;

/// What a tranche's target device does with buffers made for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrancheKind {
    /// The renderer imports and samples them.
    Sampling,
    /// The primary plane may scan them out directly.
    Scanout,
}

/// One preference tranche, as given to [`Feedback::new`].
#[derive(Debug, Clone)]
pub struct Tranche {
    pub device: libc::dev_t,
    pub kind: TrancheKind,
    pub formats: Vec<Format>,
}

#[derive(Debug)]
struct BuiltTranche {
    device: libc::dev_t,
    kind: TrancheKind,
    /// Indices into the table, native-endian u16s.
    indices: Vec<u8>,
}

/// A complete, immutable feedback: the table file and its tranches.
#[derive(Debug)]
pub struct Feedback {
    main_device: libc::dev_t,
    table: OwnedFd,
    table_size: u32,
    tranches: Vec<BuiltTranche>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("feedback has no sampling tranche")]
    NoSamplingTranche,
    #[error("format table has {0} entries, more than a u16 index can name")]
    TooManyFormats(usize),
    #[error("writing the format table: {0}")]
    Table(#[from] std::io::Error),
}

impl Feedback {
    /// Builds the table (each distinct format + modifier pair once) and the
    /// tranches, in the order given (most preferred first). `main_device`
    /// is what version 4 and 5 clients are told; there must be at least one
    /// sampling tranche.
    pub fn new(main_device: libc::dev_t, tranches: &[Tranche]) -> Result<Feedback, FeedbackError> {
        if !tranches.iter().any(|t| t.kind == TrancheKind::Sampling) {
            return Err(FeedbackError::NoSamplingTranche);
        }
        let mut pairs: Vec<Format> = Vec::new();
        let mut built = Vec::with_capacity(tranches.len());
        for tranche in tranches {
            let mut indices = Vec::with_capacity(tranche.formats.len() * 2);
            let mut seen = Vec::new();
            for format in &tranche.formats {
                let index = match pairs.iter().position(|p| p == format) {
                    Some(i) => i,
                    None => {
                        pairs.push(*format);
                        pairs.len() - 1
                    }
                };
                // No duplicate pair within one tranche.
                if seen.contains(&index) {
                    continue;
                }
                seen.push(index);
                let index = u16::try_from(index).map_err(|_| FeedbackError::TooManyFormats(pairs.len()))?;
                indices.extend_from_slice(&index.to_ne_bytes());
            }
            built.push(BuiltTranche {
                device: tranche.device,
                kind: tranche.kind,
                indices,
            });
        }
        let (table, table_size) = write_table(&pairs)?;
        Ok(Feedback {
            main_device,
            table,
            table_size,
            tranches: built,
        })
    }

    /// Sends every parameter and `done` to `feedback`, as its version asks.
    pub fn send(&self, feedback: &ZwpLinuxDmabufFeedbackV1) {
        let v6 = feedback.version() >= SAMPLING_FLAG_SINCE;
        if !v6 {
            feedback.main_device(self.main_device.to_ne_bytes().to_vec());
        }
        feedback.format_table(self.table.as_fd(), self.table_size);
        for tranche in &self.tranches {
            feedback.tranche_target_device(tranche.device.to_ne_bytes().to_vec());
            feedback.tranche_flags(flags(tranche.kind, v6));
            feedback.tranche_formats(tranche.indices.clone());
            feedback.tranche_done();
        }
        feedback.done();
    }
}

/// The flags a tranche of `kind` carries for a client of version 6 (`v6`)
/// or older.
fn flags(kind: TrancheKind, v6: bool) -> TrancheFlags {
    match kind {
        TrancheKind::Scanout => TrancheFlags::Scanout,
        TrancheKind::Sampling if v6 => TrancheFlags::Sampling,
        TrancheKind::Sampling => TrancheFlags::empty(),
    }
}

/// The table as the protocol lays it out (format u32, 4 bytes padding,
/// modifier u64, native endian) in a memfd sealed against every change.
fn write_table(pairs: &[Format]) -> std::io::Result<(OwnedFd, u32)> {
    use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};
    let mut bytes = Vec::with_capacity(pairs.len() * 16);
    for pair in pairs {
        bytes.extend_from_slice(&(pair.code as u32).to_ne_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&u64::from(pair.modifier).to_ne_bytes());
    }
    let size = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("format table too large"))?;
    let fd = memfd_create(
        "linux-dmabuf-format-table",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes)?;
    let fd = OwnedFd::from(file);
    fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    Ok((fd, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::backend::allocator::{Fourcc, Modifier};

    fn fmt(code: Fourcc, modifier: Modifier) -> Format {
        Format { code, modifier }
    }

    #[test]
    fn pairs_shared_between_tranches_are_stored_once() {
        let a = fmt(Fourcc::Xrgb8888, Modifier::Linear);
        let b = fmt(Fourcc::Argb8888, Modifier::Linear);
        let feedback = Feedback::new(
            7,
            &[
                Tranche {
                    device: 1,
                    kind: TrancheKind::Scanout,
                    formats: vec![a],
                },
                Tranche {
                    device: 7,
                    kind: TrancheKind::Sampling,
                    formats: vec![a, b, b],
                },
            ],
        )
        .expect("feedback builds");
        assert_eq!(feedback.table_size, 32, "two distinct pairs, 16 bytes each");
        assert_eq!(feedback.tranches[0].indices, 0u16.to_ne_bytes());
        let sampling: Vec<u8> = [0u16, 1].iter().flat_map(|i| i.to_ne_bytes()).collect();
        assert_eq!(
            feedback.tranches[1].indices, sampling,
            "a pair repeated in one tranche is sent once"
        );
    }

    #[test]
    fn a_feedback_without_a_sampling_tranche_is_refused() {
        let err = Feedback::new(
            1,
            &[Tranche {
                device: 1,
                kind: TrancheKind::Scanout,
                formats: vec![fmt(Fourcc::Xrgb8888, Modifier::Linear)],
            }],
        )
        .unwrap_err();
        assert!(matches!(err, FeedbackError::NoSamplingTranche));
    }

    #[test]
    fn every_v6_tranche_has_a_flag_and_older_sampling_tranches_have_none() {
        for kind in [TrancheKind::Sampling, TrancheKind::Scanout] {
            assert!(!flags(kind, true).is_empty(), "{kind:?} without a flag in v6");
        }
        assert!(flags(TrancheKind::Sampling, false).is_empty());
        assert_eq!(flags(TrancheKind::Scanout, false), TrancheFlags::Scanout);
    }

    #[test]
    fn the_table_is_sealed_against_writes() {
        let (fd, size) = write_table(&[fmt(Fourcc::Nv12, Modifier::Linear)]).expect("table");
        assert_eq!(size, 16);
        let mut file = std::fs::File::from(fd);
        assert!(file.write_all(&[1]).is_err(), "a sealed table took a write");
    }
}
