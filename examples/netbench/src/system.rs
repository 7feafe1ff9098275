//! What the process costs and sees: CPU time (getrusage), resident memory (/proc), and the
//! bytes that crossed the loopback interface of a network namespace of its own.

use std::{fs, io, time::Duration};

/// CPU time the process used so far (user and system, all threads).
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Resident memory of the process, in bytes.
pub fn resident_bytes() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Moves the process into a network namespace of its own with only a loopback interface, so
/// that the interface's counters see this process's traffic alone. Needs root (or
/// CAP_SYS_ADMIN); must run before any other thread starts (a namespace is per thread, and
/// threads started later inherit it). The namespace goes away with the process.
pub fn enter_own_network_namespace() -> io::Result<()> {
    // SAFETY: unshare and the ioctls only change this thread's namespace and the loopback
    // interface inside it; the ifreq is zeroed and its name NUL-terminated.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if socket < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let result = if libc::ioctl(socket, libc::SIOCGIFFLAGS as _, &mut request) != 0 {
            Err(io::Error::last_os_error())
        } else {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(socket, libc::SIOCSIFFLAGS as _, &request) != 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        libc::close(socket);
        result
    }
}

/// Bytes and packets sent over the loopback interface (IP packets: headers included, no
/// link-layer header), from /proc/self/net/dev.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loopback {
    pub bytes: u64,
    pub packets: u64,
}

impl Loopback {
    pub fn read() -> Option<Loopback> {
        let dev = fs::read_to_string("/proc/self/net/dev").ok()?;
        let line = dev.lines().find(|l| l.trim_start().starts_with("lo:"))?;
        let fields: Vec<u64> = line
            .split_once(':')?
            .1
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        Some(Loopback {
            bytes: *fields.get(8)?,
            packets: *fields.get(9)?,
        })
    }

    pub fn minus(self, earlier: Loopback) -> Loopback {
        Loopback {
            bytes: self.bytes.saturating_sub(earlier.bytes),
            packets: self.packets.saturating_sub(earlier.packets),
        }
    }
}

/// The IPv4 and UDP headers of each datagram: what the loopback counters add to QUIC's bytes.
pub const UDP_IPV4_HEADERS: u64 = 28;

/// The processor's model name, from /proc/cpuinfo.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Processors the process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
