//! The global allocator of the binary (and of the benches and examples
//! that measure it): mimalloc, asked for plain blocks whenever plain
//! blocks are aligned enough. A request allocates hundreds of small strings
//! and glibc's allocator was a fifth of the engine's instructions; and
//! mimalloc's aligned entry point, which the `mimalloc` crate calls for
//! every allocation, takes a slow, over-allocating path for any block over
//! 1 KiB (a quarter of an answer's allocations).
//!
//! Not part of the library, which forbids `unsafe`: `main.rs` declares it
//! and the benches, `examples/answer_loop.rs` and `tests/allocator.rs`
//! include it by path.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// What `malloc` guarantees, as C's `max_align_t`: a block of at least
/// this size is aligned to it, a smaller block to its size rounded up to a
/// power of two (mimalloc's `MI_MAX_ALIGN_SIZE`, and the rule Rust's own
/// `System` allocator relies on).
const MALLOC_ALIGN: usize = 16;

/// mimalloc, through `mi_malloc` when the layout allows it.
pub struct Mimalloc;

fn plain(layout: &Layout) -> bool {
    layout.align() <= MALLOC_ALIGN && layout.align() <= layout.size()
}

// SAFETY: every block comes from mimalloc and goes back to it; a plain
// block is only handed out for layouts whose alignment malloc guarantees
// (see `MALLOC_ALIGN`), the others go through the aligned entry points.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C allocation calls; the caller owns the result.
        unsafe {
            if plain(&layout) {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if plain(&layout) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract).
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new
        // block keeps the alignment the old layout needed.
        unsafe {
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            if plain(&new) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}
