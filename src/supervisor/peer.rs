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

/// The current process's uid.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The current process's user name (for tests and the `local:` actor of the CLI).
pub fn current_user() -> String {
    user_name(rustix::process::getuid().as_raw())
}

/// The gid of a group from `/etc/group`, if it exists.
pub fn group_id(name: &str) -> Option<u32> {
    group_id_in(&std::fs::read_to_string("/etc/group").ok()?, name)
}

fn group_id_in(etc_group: &str, name: &str) -> Option<u32> {
    etc_group.lines().find_map(|l| {
        let mut f = l.split(':');
        let n = f.next()?;
        let _pw = f.next()?;
        let gid = f.next()?.parse().ok()?;
        (n == name).then_some(gid)
    })
}

/// Opens a run directory and its socket to `group`: the directory may be
/// traversed (0710) and the socket used (0660) by the group's members; the
/// supervisor still knows each client by its peer uid.
pub fn share_with_group(
    run_dir: &std::path::Path,
    socket: &std::path::Path,
    group: &str,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let gid = group_id(group)
        .ok_or_else(|| std::io::Error::other(format!("no OS group named '{group}'")))?;
    let gid = rustix::fs::Gid::from_raw(gid);
    for (path, mode) in [(run_dir, 0o710), (socket, 0o660)] {
        rustix::fs::chown(path, None, Some(gid)).map_err(std::io::Error::from)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod group_tests {
    use super::*;

    #[test]
    fn finds_groups_by_name() {
        let etc = "root:x:0:\ndba:x:1042:alice,bob\n";
        assert_eq!(group_id_in(etc, "dba"), Some(1042));
        assert_eq!(group_id_in(etc, "ops"), None);
    }

    #[test]
    fn shares_a_run_dir_with_a_group() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sock = dir.path().join("control.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}"));
        // The process's own primary group always exists and may be assigned.
        let gid = rustix::process::getgid().as_raw();
        let name = std::fs::read_to_string("/etc/group").ok().and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == gid.to_string()).then(|| f[0].to_string())
            })
        });
        let name = name.unwrap_or_else(|| panic!("gid {gid} has no entry in /etc/group"));
        share_with_group(dir.path(), &sock, &name).unwrap_or_else(|e| panic!("{e}"));
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        assert_eq!(mode(dir.path()), 0o710);
        assert_eq!(mode(&sock), 0o660);
        assert!(share_with_group(dir.path(), &sock, "no-such-group-cutover").is_err());
    }
}
