//! The client side of a Wayland connection, written by hand so a fuzz input
//! can send any request, in any order, with any arguments: messages are
//! encoded here and sent with their fds (SCM_RIGHTS); events are read back
//! only as far as the fuzzer needs them (globals, configure serials, pings,
//! errors).

use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;

/// One request argument.
pub enum Arg<'a> {
    Uint(u32),
    Int(i32),
    /// An object or new_id (0 for null).
    Object(u32),
    Str(&'a str),
    Fd(BorrowedFd<'a>),
}

/// An event as read off the wire: sender object, opcode and raw arguments.
pub struct Event {
    pub object: u32,
    pub opcode: u16,
    pub args: Vec<u8>,
}

impl Event {
    /// The `n`-th 32-bit word of the arguments.
    pub fn word(&self, n: usize) -> Option<u32> {
        let b = self.args.get(n * 4..n * 4 + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A string argument starting at word `n`, and the word after it.
    pub fn string(&self, n: usize) -> Option<(String, usize)> {
        let len = self.word(n)? as usize;
        let start = (n + 1) * 4;
        let bytes = self.args.get(start..start + len.saturating_sub(1))?;
        let words = len.div_ceil(4);
        Some((String::from_utf8_lossy(bytes).into_owned(), n + 1 + words))
    }
}

/// The client end of the socket pair.
pub struct Wire {
    socket: UnixStream,
    inbox: Vec<u8>,
    /// Set once a send failed or the compositor closed the connection.
    pub closed: bool,
}

impl Wire {
    pub fn new(socket: UnixStream) -> io::Result<Wire> {
        socket.set_nonblocking(true)?;
        Ok(Wire {
            socket,
            inbox: Vec::new(),
            closed: false,
        })
    }

    /// Sends one request; a full or closed socket marks the wire closed.
    pub fn send(&mut self, object: u32, opcode: u16, args: &[Arg<'_>]) {
        if self.closed {
            return;
        }
        let mut body = Vec::with_capacity(32);
        let mut fds: Vec<RawFd> = Vec::new();
        for arg in args {
            match arg {
                Arg::Uint(v) | Arg::Object(v) => body.extend_from_slice(&v.to_ne_bytes()),
                Arg::Int(v) => body.extend_from_slice(&v.to_ne_bytes()),
                Arg::Str(s) => {
                    let len = s.len() as u32 + 1;
                    body.extend_from_slice(&len.to_ne_bytes());
                    body.extend_from_slice(s.as_bytes());
                    body.push(0);
                    while body.len() % 4 != 0 {
                        body.push(0);
                    }
                }
                Arg::Fd(fd) => fds.push(fd.as_raw_fd()),
            }
        }
        let size = (8 + body.len()) as u32;
        let mut msg = Vec::with_capacity(size as usize);
        msg.extend_from_slice(&object.to_ne_bytes());
        msg.extend_from_slice(&((size << 16) | u32::from(opcode)).to_ne_bytes());
        msg.extend_from_slice(&body);
        if send_with_fds(&self.socket, &msg, &fds).is_err() {
            self.closed = true;
        }
    }

    /// Reads whatever the compositor sent so far and splits it into events.
    pub fn events(&mut self) -> Vec<Event> {
        let mut buf = [0u8; 65536];
        loop {
            match self.socket.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        let mut events = Vec::new();
        let mut at = 0;
        while self.inbox.len() >= at + 8 {
            let word = |i: usize| u32::from_ne_bytes(self.inbox[i..i + 4].try_into().unwrap());
            let object = word(at);
            let header = word(at + 4);
            let size = (header >> 16) as usize;
            if size < 8 || self.inbox.len() < at + size {
                break;
            }
            events.push(Event {
                object,
                opcode: (header & 0xffff) as u16,
                args: self.inbox[at + 8..at + size].to_vec(),
            });
            at += size;
        }
        self.inbox.drain(..at);
        events
    }
}

/// `sendmsg` with the fds as one SCM_RIGHTS message.
fn send_with_fds(socket: &UnixStream, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let fd_bytes = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes as u32) } as usize;
    let mut control = vec![0u8; space.max(1)];
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer has room for one header with the fds.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), fds.len());
        }
    }
    // SAFETY: a valid socket and message.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    if sent as usize != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
    }
    Ok(())
}
