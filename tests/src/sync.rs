//! Sync test helpers: a [`BufferProvider`] backed by vgem dumb
//! buffers, so a client buffer can carry a controllable implicit write fence.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::kernel::vgem::{DumbBuffer, Vgem, VgemFence};
use crate::provider::BufferProvider;

/// vgem dumb buffers exported as dma-bufs. Remembers each buffer's GEM handle
/// so the test can attach fences to the dma-buf it handed out.
pub struct VgemProvider {
    pub vgem: Vgem,
    buffers: Mutex<Vec<(u64, DumbBuffer)>>,
}

fn inode(fd: impl AsFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}

impl VgemProvider {
    pub fn open() -> io::Result<VgemProvider> {
        Ok(VgemProvider {
            vgem: Vgem::open()?,
            buffers: Mutex::new(Vec::new()),
        })
    }

    fn find(&self, dmabuf: impl AsFd) -> io::Result<DumbBuffer> {
        let ino = inode(dmabuf)?;
        let list = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let (_, b) = list
            .iter()
            .find(|(i, _)| *i == ino)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not a buffer of this provider"))?;
        Ok(DumbBuffer {
            handle: b.handle,
            dmabuf: b.dmabuf.try_clone()?,
            pitch: b.pitch,
            size: b.size,
        })
    }

    /// Attaches an unsignaled fence (a write fence if `write`) to the
    /// dma-buf `fd` handed out by [`BufferProvider::allocate`].
    pub fn attach_fence(&self, dmabuf: impl AsFd, write: bool) -> io::Result<VgemFence> {
        let b = self.find(dmabuf)?;
        self.vgem.attach_fence(&b, write)
    }

    pub fn signal(&self, fence: VgemFence) -> io::Result<()> {
        self.vgem.signal(fence)
    }
}

impl BufferProvider for VgemProvider {
    fn name(&self) -> &'static str {
        "vgem"
    }

    fn allocate(&self, size: usize) -> io::Result<OwnedFd> {
        // 1024 px * 4 B = one 4 KiB page per row.
        let rows = size.div_ceil(4096).max(1) as u32;
        let b = self.vgem.create_dumb(1024, rows, 32)?;
        let fd = b.dmabuf.try_clone()?;
        let ino = inode(&fd)?;
        self.buffers.lock().unwrap_or_else(|p| p.into_inner()).push((ino, b));
        Ok(fd)
    }
}

impl Drop for VgemProvider {
    fn drop(&mut self) {
        for (_, b) in self.buffers.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            self.vgem.close_handle(b.handle);
        }
    }
}
