//! Child processes stripe-ops starts (an `--observe` command, chromedriver, Chromium) run in a
//! process group of their own, so that the whole group, grandchildren included, can be killed
//! on every way out.

/// Kills the process group led by `pid` (a child started with `process_group(0)`); nothing
/// when it is gone already.
pub fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}
