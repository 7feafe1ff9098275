//! Cache prefetch hints for the simulator's scattered memory accesses. They never change a
//! result: a prefetch only asks the CPU to start loading memory that will be read soon.

/// Asks the CPU to start loading the cache line at `ptr`.
#[inline(always)]
pub(super) fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no observable effect, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Asks the CPU to start loading every cache line of the `bytes` bytes at `ptr`.
#[inline(always)]
pub(super) fn prefetch_bytes<T>(ptr: *const T, bytes: usize) {
    const LINE: usize = 64;
    let start = ptr.cast::<u8>();
    let first = start.wrapping_sub(start as usize % LINE);
    let end = start.wrapping_add(bytes);
    let mut line = first;
    while line < end {
        prefetch(line);
        line = line.wrapping_add(LINE);
    }
}
