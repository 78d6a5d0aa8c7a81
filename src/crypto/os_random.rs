//! The operating system's random bytes, drawn a page at a time per thread.
//! Issuing a key asks for 16 bytes, sealing it for 12 more, an IV for 16:
//! one `getrandom` system call each cost about a twentieth of the CPU of
//! answering a request for new content. Each thread now fills a 4 KiB pool
//! with one call and hands it out in order; every byte handed out is wiped
//! from the pool at once and the rest is wiped when the thread ends, so the
//! pool never holds a byte that has been used. The bytes are the kernel's
//! CSPRNG output unchanged: nothing is derived or stretched in the process.

use rand::RngCore;
use std::cell::RefCell;
use zeroize::Zeroize;

/// Bytes drawn from the kernel per refill.
const POOL_BYTES: usize = 4096;

/// Requests at least this large go straight to the kernel.
const DIRECT_BYTES: usize = POOL_BYTES / 4;

struct Pool {
    bytes: Box<[u8; POOL_BYTES]>,
    /// Bytes at the front already handed out (and wiped).
    used: usize,
    /// Refills so far on this thread (tests count system calls with it).
    refills: u64,
}

impl Pool {
    fn new() -> Pool {
        Pool {
            bytes: Box::new([0; POOL_BYTES]),
            used: POOL_BYTES,
            refills: 0,
        }
    }

    fn take(&mut self, out: &mut [u8]) {
        if out.len() > POOL_BYTES - self.used {
            rand::rngs::OsRng.fill_bytes(&mut self.bytes[..]);
            self.used = 0;
            self.refills += 1;
        }
        let served = &mut self.bytes[self.used..self.used + out.len()];
        out.copy_from_slice(served);
        served.zeroize();
        self.used += out.len();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::new());
}

/// Fills `buf` with the kernel's random bytes.
pub fn fill(buf: &mut [u8]) {
    if buf.len() >= DIRECT_BYTES {
        rand::rngs::OsRng.fill_bytes(buf);
        return;
    }
    POOL.with(|p| p.borrow_mut().take(buf));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn refills() -> u64 {
        POOL.with(|p| p.borrow().refills)
    }

    #[test]
    fn small_draws_share_one_system_call_per_pool() {
        let before = refills();
        let mut seen = HashSet::new();
        // 16-byte keys: a pool serves 256 of them.
        for _ in 0..1024 {
            let mut k = [0u8; 16];
            fill(&mut k);
            assert!(seen.insert(k), "a 16-byte draw repeated");
        }
        let calls = refills() - before;
        assert!((4..=5).contains(&calls), "{calls} refills for 1024 draws");
    }

    #[test]
    fn handed_out_bytes_leave_the_pool() {
        let mut a = [0u8; 40];
        fill(&mut a);
        POOL.with(|p| {
            let p = p.borrow();
            assert!(p.used >= 40);
            assert!(
                p.bytes[..p.used].iter().all(|&b| b == 0),
                "a used byte is still in the pool"
            );
            // The unused rest is random, not zeros.
            let rest = &p.bytes[p.used..];
            assert!(rest.len() < 64 || rest.iter().filter(|&&b| b == 0).count() < rest.len() / 8);
        });
        assert_ne!(a, [0u8; 40]);
    }

    #[test]
    fn draws_across_a_refill_and_large_draws_are_whole() {
        // Leave fewer bytes than the next draw needs.
        POOL.with(|p| p.borrow_mut().used = POOL_BYTES - 5);
        let mut a = [0u8; 12];
        fill(&mut a);
        assert_ne!(a, [0u8; 12]);
        POOL.with(|p| assert_eq!(p.borrow().used, 12));
        let mut big = vec![0u8; DIRECT_BYTES + 3];
        fill(&mut big);
        assert!(big.iter().filter(|&&b| b == 0).count() < big.len() / 16);
        POOL.with(|p| assert_eq!(p.borrow().used, 12));
    }
}
