//! The binary's allocator hands out blocks with the alignment asked for,
//! through mimalloc's plain and aligned entry points alike, and keeps
//! contents across `realloc`.

#[path = "../src/allocator.rs"]
mod allocator;

use allocator::Mimalloc;
use std::alloc::{GlobalAlloc, Layout};

#[test]
fn blocks_have_the_alignment_asked() {
    let a = Mimalloc;
    for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
        for size in [1usize, 7, 8, 15, 16, 24, 100, 1024, 1025, 4000, 70_000] {
            let Ok(layout) = Layout::from_size_align(size, align) else {
                continue;
            };
            // SAFETY: non-zero sizes; each block is freed once below.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                p.write_bytes(0xA5, size);
                let q = a.realloc(p, layout, size * 3);
                assert_eq!(q as usize % align, 0, "realloc {size} align {align}");
                assert_eq!(*q.add(size - 1), 0xA5, "contents kept");
                a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                let z = a.alloc_zeroed(layout);
                assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                a.dealloc(z, layout);
            }
        }
    }
}
