//! Who is on the other end of the socket: the kernel says (peer uid), the
//! client does not get a say.

/// The user name for a uid from `/etc/passwd`, or `uid<N>` when not listed.
pub fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid{uid}"))
}

/// The current process's user name (for tests and the `local:` actor of the CLI).
pub fn current_user() -> String {
    user_name(rustix::process::getuid().as_raw())
}
