//! RSA-OAEP encryption as CPIX delivery uses it (SHA-1, MGF1-SHA-1, empty
//! label; RFC 8017 §7.1.1), with the public-key operation done in
//! Montgomery form over 64-bit limbs and the modulus constants computed
//! once per key. The certificate cache keeps one [`RsaEncryptor`] per
//! recipient, so a request pays only the exponentiation: for e = 65537,
//! sixteen Montgomery squarings and two products (into Montgomery form,
//! and the last bit, which also brings the result out of it), where the
//! generic big-integer exponentiation it replaces cost about 2.4 million
//! instructions a wrap.

use super::SecureRandom;
use rsa::traits::PublicKeyParts;
use sha1::{Digest, Sha1};

/// SHA-1 output length.
const H_LEN: usize = 20;

/// Why a message cannot be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OaepError {
    /// The message does not fit the modulus with OAEP's overhead.
    #[error("message of {len} bytes is too long for a {modulus_bytes}-byte modulus")]
    TooLong {
        /// Message length.
        len: usize,
        /// Modulus length in bytes.
        modulus_bytes: usize,
    },
}

/// An RSA public key ready to encrypt: modulus limbs and Montgomery
/// constants.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaEncryptor {
    /// Modulus, little-endian 64-bit limbs.
    n: Vec<u64>,
    /// -n⁻¹ mod 2⁶⁴.
    n0: u64,
    /// R² mod n, R = 2^(64·limbs), little-endian limbs.
    r2: Vec<u64>,
    /// Public exponent, big-endian bytes without leading zeros.
    e: Vec<u8>,
    /// Modulus length in bytes.
    k: usize,
}

impl std::fmt::Debug for RsaEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaEncryptor({} bits)", self.k * 8)
    }
}

/// Big-endian bytes → `limbs` little-endian 64-bit limbs.
fn to_limbs(be: &[u8], limbs: usize) -> Vec<u64> {
    let mut out = vec![0u64; limbs];
    for (i, b) in be.iter().rev().enumerate() {
        if let Some(l) = out.get_mut(i / 8) {
            *l |= u64::from(*b) << (8 * (i % 8));
        }
    }
    out
}

/// Little-endian limbs → `k` big-endian bytes.
fn to_bytes(limbs: &[u64], k: usize) -> Vec<u8> {
    let mut out = vec![0u8; k];
    for i in 0..k {
        let limb = limbs.get(i / 8).copied().unwrap_or(0);
        out[k - 1 - i] = (limb >> (8 * (i % 8))) as u8;
    }
    out
}

/// t + a·b + c as (low limb, high limb); never overflows 128 bits. Written
/// so that the compiler keeps one carry chain per product: a multiply, two
/// additions with carry and no flag-to-register moves.
#[inline(always)]
fn mul_add(t: u64, a: u64, b: u64, c: u64) -> (u64, u64) {
    let p = u128::from(a) * u128::from(b) + u128::from(c);
    let (low, carry) = (p as u64).overflowing_add(t);
    (low, ((p >> 64) as u64).wrapping_add(u64::from(carry)))
}

/// t[j] += a·b[j] along the row with the carry passed on; returns the carry
/// out of the last limb. Four limbs a step, so the loop's own bookkeeping is
/// a small part of each product.
#[inline(always)]
fn mul_add_row(t: &mut [u64], a: u64, b: &[u64]) -> u64 {
    let mut c = 0u64;
    let mut t4 = t.chunks_exact_mut(4);
    let mut b4 = b.chunks_exact(4);
    for (t, b) in (&mut t4).zip(&mut b4) {
        (t[0], c) = mul_add(t[0], a, b[0], c);
        (t[1], c) = mul_add(t[1], a, b[1], c);
        (t[2], c) = mul_add(t[2], a, b[2], c);
        (t[3], c) = mul_add(t[3], a, b[3], c);
    }
    for (tj, &bj) in t4.into_remainder().iter_mut().zip(b4.remainder()) {
        (*tj, c) = mul_add(*tj, a, bj, c);
    }
    c
}

/// Largest modulus handled, in 64-bit limbs (8192 bits).
const MAX_LIMBS: usize = 128;

/// `t` (n.len() limbs, with `top` above them) minus `n` when it is at
/// least `n`, chosen without a branch on the value.
fn reduce_once(t: &mut [u64], top: u64, n: &[u64]) {
    let mut diff = [0u64; MAX_LIMBS];
    let mut borrow = 0u64;
    for ((d, &a), &b) in diff.iter_mut().zip(t.iter()).zip(n) {
        let (s1, b1) = a.overflowing_sub(b);
        let (s2, b2) = s1.overflowing_sub(borrow);
        *d = s2;
        borrow = u64::from(b1 | b2);
    }
    let (_, b3) = top.overflowing_sub(borrow);
    // No borrow out of the top limb: t ≥ n, keep the difference.
    let keep_diff = (u64::from(b3)).wrapping_sub(1);
    for (x, d) in t.iter_mut().zip(&diff) {
        *x = (*d & keep_diff) | (*x & !keep_diff);
    }
}

impl RsaEncryptor {
    /// Precomputes what encryption under `key` needs; `None` for an even
    /// modulus (not an RSA key).
    pub fn new(key: &rsa::RsaPublicKey) -> Option<RsaEncryptor> {
        let n_be = key.n().to_bytes_be();
        let k = n_be.len();
        let limbs = k.div_ceil(8);
        let n = to_limbs(&n_be, limbs);
        if limbs > MAX_LIMBS || n.first().is_none_or(|l| l & 1 == 0) {
            return None;
        }
        // n[0]⁻¹ mod 2⁶⁴ by Newton's iteration (each step doubles the bits).
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        // R² mod n: 1 doubled 2·64·limbs times modulo n.
        let mut r2 = vec![0u64; limbs];
        r2[0] = 1;
        for _ in 0..2 * 64 * limbs {
            let mut carry = 0u64;
            for l in r2.iter_mut() {
                let next = *l >> 63;
                *l = (*l << 1) | carry;
                carry = next;
            }
            reduce_once(&mut r2, carry, &n);
        }
        let e = key.e().to_bytes_be();
        Some(RsaEncryptor {
            n,
            n0: inv.wrapping_neg(),
            r2,
            e,
            k,
        })
    }

    /// Modulus length in bytes.
    pub fn modulus_bytes(&self) -> usize {
        self.k
    }

    /// a·b·R⁻¹ mod n (separated operand scanning), inputs below n.
    fn mont_mul(&self, a: &[u64], b: &[u64]) -> Vec<u64> {
        let k = self.n.len();
        let mut t = [0u64; 2 * MAX_LIMBS];
        for (i, &ai) in a.iter().enumerate() {
            t[i + k] = mul_add_row(&mut t[i..i + k], ai, b);
        }
        self.redc(&mut t)
    }

    /// a²·R⁻¹ mod n: each cross product once, doubled, plus the squares
    /// (the exponentiation is almost all squarings).
    fn mont_sqr(&self, a: &[u64]) -> Vec<u64> {
        let k = self.n.len();
        let mut t = [0u64; 2 * MAX_LIMBS];
        for i in 0..k {
            let ai = a[i];
            t[i + k] = mul_add_row(&mut t[2 * i + 1..i + k], ai, &a[i + 1..k]);
        }
        let mut carry = 0u64;
        for x in t[..2 * k].iter_mut() {
            let next = *x >> 63;
            *x = (*x << 1) | carry;
            carry = next;
        }
        let mut c = 0u64;
        for (i, &ai) in a.iter().enumerate().take(k) {
            let sq = u128::from(ai) * u128::from(ai);
            let s = u128::from(t[2 * i]) + (sq & u128::from(u64::MAX)) + u128::from(c);
            t[2 * i] = s as u64;
            let s = u128::from(t[2 * i + 1]) + (sq >> 64) + (s >> 64);
            t[2 * i + 1] = s as u64;
            c = (s >> 64) as u64;
        }
        self.redc(&mut t)
    }

    /// t·R⁻¹ mod n for a 2k-limb t below n·R: adds m·n at each limb so that
    /// the low k limbs vanish; `hi` carries into the limb above each row.
    fn redc(&self, t: &mut [u64; 2 * MAX_LIMBS]) -> Vec<u64> {
        let n = &self.n;
        let k = n.len();
        let mut hi = 0u64;
        for i in 0..k {
            let m = t[i].wrapping_mul(self.n0);
            let c = mul_add_row(&mut t[i..i + k], m, n);
            let s = u128::from(t[i + k]) + u128::from(c) + u128::from(hi);
            t[i + k] = s as u64;
            hi = (s >> 64) as u64;
        }
        let mut r = t[k..2 * k].to_vec();
        reduce_once(&mut r, hi, n);
        r
    }

    /// mᵉ mod n for m < n.
    fn public_op(&self, m: &[u64]) -> Vec<u64> {
        let xm = self.mont_mul(m, &self.r2);
        let mut acc: Option<Vec<u64>> = None;
        let bits = self.e.len() * 8;
        for i in 0..bits {
            if let Some(a) = acc.as_ref() {
                acc = Some(self.mont_sqr(a));
            }
            if self.e[i / 8] >> (7 - i % 8) & 1 == 1 {
                if i + 1 == bits {
                    // The last bit of an odd exponent: multiplying by m
                    // itself instead of m·R leaves the result out of
                    // Montgomery form, one product fewer.
                    return acc.map_or_else(|| m.to_vec(), |a| self.mont_mul(&a, m));
                }
                acc = Some(match acc {
                    Some(a) => self.mont_mul(&a, &xm),
                    None => xm.clone(),
                });
            }
        }
        let mut one = vec![0u64; self.n.len()];
        one[0] = 1;
        // An exponent of 0 gives 1 (R mod n in Montgomery form).
        let acc = acc.unwrap_or_else(|| self.mont_mul(&self.r2, &one));
        // An even exponent: out of Montgomery form.
        self.mont_mul(&acc, &one)
    }

    /// RSAES-OAEP-ENCRYPT with SHA-1, MGF1-SHA-1 and an empty label; the
    /// seed comes from `rng`.
    pub fn encrypt_oaep_sha1(
        &self,
        msg: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, OaepError> {
        let k = self.k;
        if k < 2 * H_LEN + 2 || msg.len() > k - 2 * H_LEN - 2 {
            return Err(OaepError::TooLong {
                len: msg.len(),
                modulus_bytes: k,
            });
        }
        // EM = 0x00 ‖ maskedSeed ‖ maskedDB
        let mut em = zeroize::Zeroizing::new(vec![0u8; k]);
        let (seed, db) = em[1..].split_at_mut(H_LEN);
        rng.fill(seed);
        db[..H_LEN].copy_from_slice(&Sha1::digest(b""));
        let db_len = db.len();
        db[db_len - msg.len() - 1] = 1;
        db[db_len - msg.len()..].copy_from_slice(msg);
        mgf1_xor(db, seed);
        mgf1_xor(seed, db);
        let m = to_limbs(&em, self.n.len());
        Ok(to_bytes(&self.public_op(&m), k))
    }
}

/// out ^= MGF1-SHA-1(seed, out.len()).
fn mgf1_xor(out: &mut [u8], seed: &[u8]) {
    for (counter, chunk) in out.chunks_mut(H_LEN).enumerate() {
        let mut h = Sha1::new();
        h.update(seed);
        h.update((counter as u32).to_be_bytes());
        for (o, m) in chunk.iter_mut().zip(h.finalize()) {
            *o ^= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;

    fn key(bits: usize, seed: u64) -> rsa::RsaPrivateKey {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        rsa::RsaPrivateKey::new(&mut rng, bits).unwrap()
    }

    #[test]
    fn same_ciphertext_as_the_rsa_crate_and_it_decrypts() {
        for (bits, seed) in [(1024, 1), (2048, 2), (3072, 3)] {
            let private = key(bits, seed);
            let public = private.to_public_key();
            let enc = RsaEncryptor::new(&public).unwrap();
            for len in [0usize, 1, 32, 64, enc.modulus_bytes() - 42] {
                let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                let ours = enc.encrypt_oaep_sha1(&msg, &SeededRandom::new(9)).unwrap();
                let theirs = crate::crypto::rsa_oaep_sha1_encrypt_generic(
                    &public,
                    &msg,
                    &SeededRandom::new(9),
                )
                .unwrap();
                assert_eq!(ours, theirs, "{bits} bits, {len} bytes");
                let back = crate::crypto::rsa_oaep_sha1_decrypt(&private, &ours).unwrap();
                assert_eq!(&back[..], &msg[..]);
            }
            let too_long = vec![0u8; enc.modulus_bytes() - 41];
            assert!(enc
                .encrypt_oaep_sha1(&too_long, &SeededRandom::new(1))
                .is_err());
        }
    }

    #[test]
    fn squaring_is_multiplication_by_itself() {
        for (bits, seed) in [(1024, 4), (2048, 5)] {
            let enc = RsaEncryptor::new(&key(bits, seed).to_public_key()).unwrap();
            let k = enc.n.len();
            let rng = SeededRandom::new(seed);
            for top in [0u64, 1, u64::MAX >> 1] {
                let mut bytes = vec![0u8; k * 8];
                rng.fill(&mut bytes);
                let mut a = to_limbs(&bytes, k);
                // Below n: the top limb under n's.
                a[k - 1] = top.min(enc.n[k - 1] - 1);
                assert_eq!(enc.mont_sqr(&a), enc.mont_mul(&a, &a), "{bits} bits");
            }
        }
    }

    /// Every shape of exponent (odd or even, one bit or many) against a
    /// generic modular exponentiation.
    #[test]
    fn public_operation_matches_generic_exponentiation() {
        use rsa::BigUint;
        let public = key(1024, 6).to_public_key();
        let base = RsaEncryptor::new(&public).unwrap();
        let k = base.n.len();
        let rng = SeededRandom::new(6);
        let mut bytes = vec![0u8; base.k];
        rng.fill(&mut bytes);
        bytes[0] = 0;
        let m = to_limbs(&bytes, k);
        let m_big = BigUint::from_bytes_be(&bytes);
        for e in [1u32, 2, 3, 4, 17, 256, 65_536, 65_537, 0x0100_0003] {
            let enc = RsaEncryptor {
                e: BigUint::from(e).to_bytes_be(),
                ..base.clone()
            };
            let expected = m_big.modpow(&BigUint::from(e), public.n());
            let ours = BigUint::from_bytes_be(&to_bytes(&enc.public_op(&m), base.k));
            assert_eq!(ours, expected, "e = {e}");
        }
    }

    #[test]
    fn limbs_round_trip() {
        let be: Vec<u8> = (1..=33).collect();
        assert_eq!(to_bytes(&to_limbs(&be, 5), 33), be);
    }
}
