//! Test-only instrument: what a thread leaves in the heap memory it frees.
//!
//! The crate's unit-test binary allocates through the system allocator plus
//! this: while a thread runs [`freed_during`], every block it frees is
//! copied into a log before it is released, to be searched for secrets
//! afterwards ([`Freed::holds`]). While recording, new blocks are zeroed (a
//! copy found was written while recording) and a `realloc` always moves the
//! block, as allocators do when they cannot grow it in place. Other
//! threads, and a thread not recording, use the system allocator unchanged.
//! (paired-mls engine changes 33-34, docs/ENGINE.md.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The log's capacity: reserved, only the pages written are backed.
const CAPACITY: usize = 1 << 28;

thread_local! {
    /// While recording: the log (start, bytes used, capacity); a null start
    /// otherwise. Bytes used past the capacity mark a log that overflowed.
    static LOG: Cell<(*mut u8, usize, usize)> = const { Cell::new((std::ptr::null_mut(), 0, 0)) };
}

fn log() -> (*mut u8, usize, usize) {
    LOG.try_with(Cell::get)
        .unwrap_or((std::ptr::null_mut(), 0, 0))
}

struct RecordingAllocator;

unsafe impl GlobalAlloc for RecordingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if log().0.is_null() {
            System.alloc(layout)
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (start, used, capacity) = log();
        if !start.is_null() && used <= capacity {
            let used = if layout.size() <= capacity - used {
                std::ptr::copy_nonoverlapping(ptr, start.add(used), layout.size());
                used + layout.size()
            } else {
                capacity + 1
            };
            LOG.with(|log| log.set((start, used, capacity)));
        }
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if log().0.is_null() {
            return System.realloc(ptr, layout, new_size);
        }
        let moved = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !moved.is_null() {
            std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: RecordingAllocator = RecordingAllocator;

/// The blocks a thread freed during [`freed_during`], one after the other.
pub(crate) struct Freed {
    start: *mut u8,
    len: usize,
}

impl Freed {
    /// Whether a freed block held a copy of `secret`.
    pub(crate) fn holds(&self, secret: &[u8]) -> bool {
        assert!(secret.len() >= 16, "too short to tell a copy from chance");
        let bytes = unsafe { std::slice::from_raw_parts(self.start, self.len) };
        bytes.windows(secret.len()).any(|window| window == secret)
    }
}

impl Drop for Freed {
    fn drop(&mut self) {
        unsafe { System.dealloc(self.start, Layout::from_size_align_unchecked(CAPACITY, 1)) }
    }
}

/// Run `op`, keeping a copy of every heap block this thread frees during it.
pub(crate) fn freed_during<T>(op: impl FnOnce() -> T) -> (T, Freed) {
    assert!(log().0.is_null(), "freed_during does not nest");
    let start = unsafe { System.alloc(Layout::from_size_align_unchecked(CAPACITY, 1)) };
    assert!(!start.is_null(), "no memory for the log");
    LOG.with(|log| log.set((start, 0, CAPACITY)));
    let out = op();
    let (_, len, _) = log();
    LOG.with(|log| log.set((std::ptr::null_mut(), 0, 0)));
    let freed = Freed {
        start,
        len: len.min(CAPACITY),
    };
    assert!(len <= CAPACITY, "the blocks freed overflowed the log");
    (out, freed)
}

#[test]
fn a_freed_copy_is_kept_and_a_wiped_one_is_not() {
    use zeroize::Zeroize;

    let (kept, wiped, grown) = ([0x5au8; 32], [0xa5u8; 32], [0x3cu8; 32]);
    let (alive, freed) = freed_during(|| {
        drop(kept.to_vec());
        let mut copy = wiped.to_vec();
        copy.zeroize();
        drop(copy);
        // The block a vector grows out of is freed with its old content.
        let mut moved = Vec::with_capacity(32);
        moved.extend_from_slice(&grown);
        moved.push(0u8);
        moved.zeroize();
        vec![0xc3u8; 32]
    });
    assert!(freed.holds(&kept));
    assert!(!freed.holds(&wiped));
    assert!(freed.holds(&grown));
    assert!(!freed.holds(&alive));
}
