//! Test-only instrument: which secrets does a code path leave behind in
//! heap memory it frees without wiping?
//!
//! The unit-test binary's allocator is the system's, plus this: while a
//! test thread watches some 32-byte secrets (`freed_copies_of`), every
//! block that thread frees is searched for them before it is released.
//! While watching, new blocks are zeroed (so a hit was written during the
//! watch, not left over from earlier), and a `realloc` always moves the
//! block (allocate, copy, free the old one), as dlmalloc (wasm) and glibc
//! do whenever they cannot grow a block in place. Other threads, and the
//! thread when not watching, use the system allocator unchanged.
//!
//! When the secrets are only known after the code path ran (a commit's
//! fresh path secrets), `freed_during` keeps a copy of every block the
//! thread frees (same zeroing and moves), to be searched afterwards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

const MAX_WATCHED: usize = 48;

thread_local! {
    static WATCHED: Cell<[[u8; 32]; MAX_WATCHED]> = const { Cell::new([[0u8; 32]; MAX_WATCHED]) };
    /// How many of WATCHED are in use; 0 when the thread does not watch.
    static WATCHED_COUNT: Cell<usize> = const { Cell::new(0) };
    /// For each watched secret, whether a freed block held a copy.
    static FOUND: Cell<[bool; MAX_WATCHED]> = const { Cell::new([false; MAX_WATCHED]) };
    /// While `freed_during` records: its log (start, bytes used, capacity);
    /// a null start when the thread does not record.
    static LOG: Cell<(*mut u8, usize, usize)> = const { Cell::new((std::ptr::null_mut(), 0, 0)) };
}

/// The capacity of a `freed_during` log. Reserved, not touched: only the
/// pages written are backed.
const LOG_CAPACITY: usize = 1 << 30;

fn recording() -> bool {
    LOG.try_with(|log| !log.get().0.is_null()).unwrap_or(false)
}

fn watching() -> bool {
    WATCHED_COUNT.try_with(Cell::get).unwrap_or(0) > 0 || recording()
}

/// Append `block` to the log (no allocation); a block past its capacity
/// marks it overflowed (bytes used = capacity + 1).
fn record(block: &[u8]) {
    let (start, used, capacity) = LOG.with(Cell::get);
    if start.is_null() || used > capacity {
        return;
    }
    if block.len() > capacity - used {
        LOG.with(|log| log.set((start, capacity + 1, capacity)));
        return;
    }
    unsafe { std::ptr::copy_nonoverlapping(block.as_ptr(), start.add(used), block.len()) };
    LOG.with(|log| log.set((start, used + block.len(), capacity)));
}

/// Record which watched secrets `block` holds a copy of (no allocation).
fn search(block: &[u8]) {
    let count = WATCHED_COUNT.with(Cell::get);
    let watched = WATCHED.with(Cell::get);
    let mut found = FOUND.with(Cell::get);
    for (secret, hit) in watched.iter().zip(found.iter_mut()).take(count) {
        if block.windows(32).any(|window| window == secret) {
            *hit = true;
        }
    }
    FOUND.with(|cell| cell.set(found));
}

struct SearchingAllocator;

unsafe impl GlobalAlloc for SearchingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if watching() { System.alloc_zeroed(layout) } else { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if watching() {
            let block = std::slice::from_raw_parts(ptr, layout.size());
            search(block);
            record(block);
        }
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !watching() {
            return System.realloc(ptr, layout, new_size);
        }
        let moved = System.alloc_zeroed(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !moved.is_null() {
            std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: SearchingAllocator = SearchingAllocator;

/// Run `op` while watching `secrets` (at most 48); for each, whether a heap
/// block freed on this thread during `op` still held a copy of it.
pub(crate) fn freed_copies_of(secrets: &[[u8; 32]], op: impl FnOnce()) -> Vec<bool> {
    assert!(secrets.len() <= MAX_WATCHED, "at most {MAX_WATCHED} secrets");
    let mut watched = [[0u8; 32]; MAX_WATCHED];
    watched[..secrets.len()].copy_from_slice(secrets);
    WATCHED.with(|cell| cell.set(watched));
    FOUND.with(|cell| cell.set([false; MAX_WATCHED]));
    WATCHED_COUNT.with(|cell| cell.set(secrets.len()));
    op();
    WATCHED_COUNT.with(|cell| cell.set(0));
    FOUND.with(Cell::get)[..secrets.len()].to_vec()
}

/// The blocks a thread freed during `freed_during`, one after the other.
pub(crate) struct Freed {
    start: *mut u8,
    len: usize,
}

impl Freed {
    /// For each of `secrets`, whether a freed block held a copy of it.
    pub(crate) fn copies_of(&self, secrets: &[[u8; 32]]) -> Vec<bool> {
        let bytes = unsafe { std::slice::from_raw_parts(self.start, self.len) };
        secrets.iter().map(|secret| bytes.windows(32).any(|window| window == secret)).collect()
    }

    /// The freed blocks' bytes, one after the other (review63c: searched
    /// for secrets that are known only by a property, an ephemeral key by
    /// its public key).
    pub(crate) fn bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}

// An owned buffer, handed back from the thread that recorded it.
unsafe impl Send for Freed {}

impl Drop for Freed {
    fn drop(&mut self) {
        unsafe { System.dealloc(self.start, Layout::from_size_align_unchecked(LOG_CAPACITY, 1)) }
    }
}

/// Run `op`, keeping a copy of every heap block freed on this thread
/// during it, to search for secrets known only afterwards.
pub(crate) fn freed_during(op: impl FnOnce()) -> Freed {
    assert!(!recording(), "freed_during does not nest");
    let start = unsafe { System.alloc(Layout::from_size_align_unchecked(LOG_CAPACITY, 1)) };
    assert!(!start.is_null(), "no memory for the log");
    LOG.with(|log| log.set((start, 0, LOG_CAPACITY)));
    op();
    let (_, len, _) = LOG.with(Cell::get);
    LOG.with(|log| log.set((std::ptr::null_mut(), 0, 0)));
    let freed = Freed { start, len: len.min(LOG_CAPACITY) };
    assert!(len <= LOG_CAPACITY, "the blocks freed overflowed the log");
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_unwiped_copy_is_found_and_a_wiped_one_is_not() {
        use zeroize::Zeroize as _;
        let (kept, wiped) = ([0x5au8; 32], [0xa5u8; 32]);
        let found = freed_copies_of(&[kept, wiped], || {
            drop(kept.to_vec());
            let mut copy = wiped.to_vec();
            copy.zeroize();
            drop(copy);
        });
        assert_eq!(found, vec![true, false]);
        // A grown vector's first block, freed by the move, is searched too.
        let secret = [0x3cu8; 32];
        let found = freed_copies_of(&[secret], || {
            let mut grown: Vec<zeroize::Zeroizing<[u8; 32]>> = Vec::with_capacity(1);
            grown.push(zeroize::Zeroizing::new(secret));
            grown.push(zeroize::Zeroizing::new([0u8; 32]));
            drop(grown);
        });
        assert_eq!(found, vec![true]);
    }

    #[test]
    fn the_blocks_freed_are_kept_for_secrets_known_afterwards() {
        use zeroize::Zeroize as _;
        let (kept, wiped, grown, alive) = ([0x5au8; 32], [0xa5u8; 32], [0x3cu8; 32], [0xc3u8; 32]);
        let mut still_allocated = Vec::new();
        let freed = freed_during(|| {
            drop(kept.to_vec());
            let mut copy = wiped.to_vec();
            copy.zeroize();
            drop(copy);
            let mut moved = Vec::with_capacity(32);
            moved.extend_from_slice(&grown);
            moved.push(0u8);
            moved.zeroize();
            still_allocated = alive.to_vec();
        });
        assert_eq!(freed.copies_of(&[kept, wiped, grown, alive]), vec![true, false, true, false]);
    }
}
