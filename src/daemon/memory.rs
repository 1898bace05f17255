//! Start-up touches most of the program's code once (the command line, the config
//! reader, interface discovery); the kernel maps every page around each page run
//! (fault-around), so a daemon that then sleeps keeps megabytes of code mapped that it
//! never runs again. Once started, the daemon unmaps its code; the pages the loop runs
//! come back on their first use, from the page cache.

/// Unmaps our executable's code and read-only data pages (Linux; elsewhere nothing).
/// Only mappings that are private, not writable and were never written are dropped:
/// their pages read back unchanged from the file.
pub fn drop_startup_code() {
    #[cfg(target_os = "linux")]
    linux::drop_startup_code();
}

#[cfg(target_os = "linux")]
mod linux {
    use log::debug;

    pub fn drop_startup_code() {
        let (Ok(exe), Ok(smaps)) = (
            std::fs::read_link("/proc/self/exe"),
            std::fs::read_to_string("/proc/self/smaps"),
        ) else {
            return;
        };
        let exe = exe.to_string_lossy();
        for (start, end) in clean_mappings(&smaps, &exe) {
            // SAFETY: [start, end) is a whole mapping of our own executable that the kernel
            // lists as private and not writable, with no anonymous (copied and written)
            // page in it: every page it has is the file's own, so dropping them loses
            // nothing, and the next use of any of them faults the same bytes back in.
            let r = unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
            };
            if r != 0 {
                debug!(
                    "cannot unmap start-up code: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }

    /// The `/proc/self/smaps` mappings of `exe` that are private, not writable and hold
    /// no anonymous page: the code and the read-only data, never the relocated part.
    fn clean_mappings(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut candidate = None;
        for line in smaps.lines() {
            if let Some(range) = mapping_of(line, exe) {
                candidate = Some(range);
            } else if line.starts_with(|c: char| c.is_ascii_hexdigit()) && line.contains('-') {
                candidate = None; // another mapping's header
            } else if let Some(kb) = line.strip_prefix("Anonymous:") {
                if let Some(range) = candidate.take() {
                    if kb.trim() == "0 kB" {
                        out.push(range);
                    }
                }
            }
        }
        out
    }

    /// `start-end` of a mapping header line for `exe` that is private and not writable.
    fn mapping_of(line: &str, exe: &str) -> Option<(usize, usize)> {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let perms = fields.next()?.as_bytes();
        let private_read_only = perms.len() == 4 && perms[1] == b'-' && perms[3] == b'p';
        if !private_read_only || fields.nth(3)? != exe {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (end > start).then_some((start, end))
    }

    #[cfg(test)]
    mod tests {
        use super::clean_mappings;

        #[test]
        fn only_our_unwritten_private_mappings() {
            let exe = "/usr/sbin/floatip";
            let smaps = format!(
                "1000-2000 r--p 00000000 08:01 42    {exe}\nRss: 4 kB\nAnonymous:      0 kB\n\
                 2000-5000 r-xp 00001000 08:01 42    {exe}\nAnonymous:      0 kB\n\
                 5000-6000 r--p 00004000 08:01 42    {exe}\nAnonymous:      4 kB\n\
                 6000-7000 rw-p 00005000 08:01 42    {exe}\nAnonymous:      0 kB\n\
                 7000-8000 r-xs 00000000 08:01 42    {exe}\nAnonymous:      0 kB\n\
                 8000-9000 r-xp 00000000 08:01 7 /usr/lib/libc.so.6\nAnonymous:      0 kB\n"
            );
            assert_eq!(
                clean_mappings(&smaps, exe),
                [(0x1000, 0x2000), (0x2000, 0x5000)],
                "code and read-only data; never the relocated (written) part, writable or shared mappings, or other files"
            );
        }
    }
}
