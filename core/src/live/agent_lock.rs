//! One agent-runner per session on one machine, whoever started it: each `clawsim-agent`
//! started by [`ProcessRuntime`](super::process_runtime::ProcessRuntime) holds an exclusive
//! `flock` on `<session_id>.agent.lock` beside its session folder for as long as it lives. The
//! kernel drops the lock when the process ends (killed, crashed, or a zombie not yet reaped),
//! so "the lock is held" means "that session's agent is alive", with no pid to trust: a host
//! that restarts finds a live agent by its lock, and a second agent refuses to run.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// The lock of a live agent; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
}

/// Takes the lock at `path` (creating the file); `None` while another process holds it.
pub fn acquire(path: &Path) -> io::Result<Option<AgentLock>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    Ok(try_lock(&file)?.then_some(AgentLock { _file: file }))
}

/// True when another process holds the lock at `path` (a missing file: nobody).
pub fn is_held(path: &Path) -> bool {
    match File::open(path) {
        Ok(file) => matches!(try_lock(&file), Ok(false)),
        Err(_) => false,
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: `true` when taken, `false` when held elsewhere. A probe's lock
/// goes away with its file handle.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this File owns for the duration of the call.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    match taken {
        true => Ok(true),
        false => match io::Error::last_os_error() {
            error if error.kind() == io::ErrorKind::WouldBlock => Ok(false),
            error => Err(error),
        },
    }
}

/// Without `flock`, every lock is free: no adoption, as before.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}

/// Sends SIGKILL to `pid` (an adopted agent, not a child of this process).
#[cfg(unix)]
pub fn kill_pid(pid: i32) -> io::Result<()> {
    // SAFETY: kill(2) with a pid read from the runtime's own pid file.
    match unsafe { libc::kill(pid, libc::SIGKILL) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(not(unix))]
pub fn kill_pid(_pid: i32) -> io::Result<()> {
    Err(io::Error::other("cannot kill a process by pid here"))
}
