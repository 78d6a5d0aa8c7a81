//! Cryptographic primitives behind small, testable interfaces: the secret
//! key types (zeroized on drop, printed as `***`), the random source (one
//! trait, an OS-backed and a seedable implementation), the block-cipher
//! operations the DRM signalling needs (AES-128-ECB for PlayReady
//! checksums, AES-256-CBC for CPIX key delivery), AES-256-GCM envelopes for
//! keys at rest, RSA-OAEP, HMAC-SHA512, SHA-256 for stored credentials and
//! constant-time comparison. X.509 parsing and policy are in `x509`.

pub mod rsa_public;
pub mod x509;

use aes::cipher::{
    block_padding::Pkcs7, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit,
};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 128-bit content key. Zeroized on drop; `Debug`/`Display` print `***`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ContentKey([u8; 16]);

impl ContentKey {
    /// Wraps 16 key bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        ContentKey(bytes)
    }

    /// Builds a key from a slice that must be exactly 16 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 16] = bytes.try_into().ok()?;
        Some(ContentKey(arr))
    }

    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &dyn SecureRandom) -> Self {
        let mut k = [0u8; 16];
        rng.fill(&mut k);
        ContentKey(k)
    }

    /// The raw key bytes. Callers must not log them.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(***)")
    }
}

impl fmt::Display for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Source of cryptographically secure random bytes.
pub trait SecureRandom: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}
/// A secret string (an API key, a password, an access token). Zeroized on
/// drop; `Debug`/`Display` print `***`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }

    /// The secret text. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Bytes that are key material: a `PlainValue`, a decrypted key, a clear
/// CPIX response. Wiped on drop, length and spare capacity, in bulk
/// (`Zeroizing<Vec<u8>>` and a derived `Zeroize` wipe a `Vec` one volatile
/// byte at a time, which for a 60 KB response cost as much as a sixth of
/// building it); printed as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The bytes. Callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Overwrites every byte of the allocation with zeros (the length
    /// stays, so the zeros can be seen).
    pub fn wipe(&mut self) {
        self.0.as_mut_slice().zeroize();
        self.0.spare_capacity_mut().zeroize();
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(*** {} bytes)", self.0.len())
    }
}

/// Random bytes from the operating system, one `getrandom` call per draw.
/// Deliberately no pool or generator in the process: bytes drawn ahead
/// would be served twice by two copies of a cloned or restored VM (the
/// same content keys, the same AES-GCM nonces under one master key), while
/// the kernel reseeds on such a clone. The key store's group commit draws
/// through [`BatchRandom`]: one call for the group's keys, IVs and nonces,
/// used as the group is written and wiped when it ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// Random bytes for one batch of work (one group commit of the key store),
/// fetched from `source` in one call instead of one per draw. The first
/// draw fetches what the whole batch is expected to use; later draws take
/// from those bytes, each wiped as it is handed out, and fetch again only
/// if the guess falls short. Whatever is left when the batch ends is
/// wiped with it and never serves a later batch: bytes are drawn at the
/// moment of use, as with [`OsRandom`] (see there why nothing is drawn
/// ahead).
pub struct BatchRandom<'a> {
    source: &'a dyn SecureRandom,
    expected: usize,
    drawn: Mutex<Drawn>,
}

#[derive(Default)]
struct Drawn {
    bytes: zeroize::Zeroizing<Vec<u8>>,
    /// Bytes of `bytes` handed out (and wiped).
    used: usize,
    /// Bytes handed out in the whole batch.
    total: usize,
}

impl<'a> BatchRandom<'a> {
    /// A batch expected to draw about `expected` bytes from `source`.
    pub fn new(source: &'a dyn SecureRandom, expected: usize) -> Self {
        BatchRandom {
            source,
            expected,
            drawn: Mutex::new(Drawn::default()),
        }
    }
}

impl SecureRandom for BatchRandom<'_> {
    fn fill(&self, buf: &mut [u8]) {
        let mut d = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
        if d.bytes.len() - d.used < buf.len() {
            // What the batch still expects to draw, or this draw if more;
            // the unused rest of the last fetch is wiped, not kept.
            let want = buf.len().max(self.expected.saturating_sub(d.total));
            d.bytes.zeroize();
            d.bytes.resize(want, 0);
            self.source.fill(&mut d.bytes);
            d.used = 0;
        }
        let start = d.used;
        let taken = &mut d.bytes[start..start + buf.len()];
        buf.copy_from_slice(taken);
        taken.zeroize();
        d.used += buf.len();
        d.total += buf.len();
    }
}

/// A deterministic ChaCha20 stream for reproducible output (tests, golden
/// files, `--seed`). Never use it to issue keys in production.
pub struct SeededRandom(Mutex<ChaCha20Rng>);

impl SeededRandom {
    /// Creates the stream for `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom(Mutex::new(ChaCha20Rng::seed_from_u64(seed)))
    }
}

impl fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededRandom")
    }
}

impl SecureRandom for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        // A poisoned lock only means another thread panicked mid-draw; the
        // generator state is still a valid stream.
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        rng.fill_bytes(buf);
    }
}

/// Encrypts one 16-byte block with AES-128 in ECB mode (no padding).
pub fn aes128_ecb_encrypt_block(key: &ContentKey, block: &[u8; 16]) -> [u8; 16] {
    // The encryption schedule only: one block is encrypted, none decrypted.
    let cipher = aes::Aes128Enc::new(key.expose().into());
    let mut b = aes::Block::clone_from_slice(block);
    cipher.encrypt_block(&mut b);
    let mut out = [0u8; 16];
    out.copy_from_slice(&b);
    out
}

/// Draws a 16-byte IV that differs from `key` (an IV equal to the key would
/// publish the key wherever the IV is written, e.g. an HLS playlist).
pub fn random_iv(rng: &dyn SecureRandom, key: &ContentKey) -> [u8; 16] {
    loop {
        let mut iv = [0u8; 16];
        rng.fill(&mut iv);
        if &iv != key.expose() {
            return iv;
        }
    }
}

/// A 256-bit master key that wraps stored content keys, with its version.
/// Zeroized on drop; `Debug` prints `***`. Not `Zeroize`: wiping the key
/// in place would leave its cipher able to seal and open.
#[derive(Clone, ZeroizeOnDrop)]
pub struct MasterKey {
    #[zeroize(skip)]
    version: u32,
    key: [u8; 32],
    /// The key's AES-256-GCM schedule, set up once instead of for every
    /// record sealed or opened (about 840 instructions each time); the
    /// `aes` crate's `zeroize` feature wipes its round keys on drop.
    #[zeroize(skip)]
    cipher: Aes256Gcm,
}

impl MasterKey {
    /// Wraps 32 key bytes under a version number.
    pub fn new(version: u32, key: [u8; 32]) -> Self {
        let cipher = Aes256Gcm::new((&key).into());
        MasterKey {
            version,
            key,
            cipher,
        }
    }

    /// Draws a fresh master key.
    pub fn generate(version: u32, rng: &dyn SecureRandom) -> Self {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill(&mut key[..]);
        MasterKey::new(version, *key)
    }

    /// The version recorded with every key it wraps.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The raw key, for writing the key file only.
    pub fn expose(&self) -> &[u8; 32] {
        &self.key
    }

    /// AES-256-GCM: returns `nonce (12) ‖ ciphertext ‖ tag (16)`
    /// ([`SEAL_OVERHEAD`] bytes more than the plaintext); `aad` is
    /// authenticated, not encrypted.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], rng: &dyn SecureRandom) -> Vec<u8> {
        let mut nonce = [0u8; SEAL_NONCE_BYTES];
        rng.fill(&mut nonce);
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.extend_from_slice(&nonce);
        // Encryption cannot fail for inputs of this size.
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a [`MasterKey::seal`] envelope; `None` if it was altered, the
    /// `aad` differs or the key is wrong.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        if sealed.len() < SEAL_OVERHEAD {
            return None;
        }
        let (nonce, ct) = sealed.split_at(SEAL_NONCE_BYTES);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
            .map(zeroize::Zeroizing::new)
    }
}

/// Random bytes a [`MasterKey::seal`] draws: its AES-GCM nonce.
pub const SEAL_NONCE_BYTES: usize = 12;

/// Bytes a [`MasterKey::seal`] envelope adds to its plaintext: the nonce
/// and the 16-byte tag.
pub const SEAL_OVERHEAD: usize = SEAL_NONCE_BYTES + 16;

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(v{}, ***)", self.version)
    }
}

/// Adapts a [`SecureRandom`] to the `rand_core` traits the `rsa` crate's
/// padding needs (the reference encryption of the tests).
#[cfg(test)]
struct RngAdapter<'a>(&'a dyn SecureRandom);

#[cfg(test)]
impl rand::RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

#[cfg(test)]
impl rand::CryptoRng for RngAdapter<'_> {}

/// AES-256-CBC with PKCS#7 padding.
pub fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// Inverse of [`aes256_cbc_encrypt`]; `None` when the padding is wrong.
pub fn aes256_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .ok()
        .map(zeroize::Zeroizing::new)
}

/// HMAC-SHA256 of `data` under `key` (DRM tokens, HS256).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so construction cannot fail.
    let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA512 under one key, with the key's inner and outer blocks hashed
/// once for all the messages it authenticates: a CPIX document MACs every
/// content key and both wrapped keys under one MAC key, and each MAC then
/// costs two SHA-512 blocks instead of four.
#[derive(Clone)]
pub struct HmacSha512(Hmac<sha2::Sha512>);

impl HmacSha512 {
    /// The keyed state for `key` (any length).
    pub fn new(key: &[u8]) -> HmacSha512 {
        // HMAC takes keys of any length, so construction cannot fail.
        HmacSha512(
            <Hmac<sha2::Sha512> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
        )
    }

    /// HMAC-SHA512 of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 64] {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Checks an HMAC-SHA512 of `data` in constant time.
    pub fn verify(&self, data: &[u8], expected: &[u8]) -> bool {
        ct_eq(&self.mac(data), expected)
    }
}

impl fmt::Debug for HmacSha512 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha512(***)")
    }
}

/// HMAC-SHA512 of `data` under `key`.
pub fn hmac_sha512(key: &[u8], data: &[u8]) -> [u8; 64] {
    HmacSha512::new(key).mac(data)
}

/// RSAES-OAEP with SHA-1 and MGF1-SHA-1, empty label
/// (`http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p`) by the `rsa` crate:
/// the reference [`rsa_public::RsaEncryptor`] is checked against.
#[cfg(test)]
pub fn rsa_oaep_sha1_encrypt_generic(
    key: &rsa::RsaPublicKey,
    data: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, rsa::Error> {
    key.encrypt(&mut RngAdapter(rng), rsa::Oaep::new::<sha1::Sha1>(), data)
}

/// Inverse of RSAES-OAEP-ENCRYPT with SHA-1 ([`rsa_public::RsaEncryptor`]).
pub fn rsa_oaep_sha1_decrypt(
    key: &rsa::RsaPrivateKey,
    data: &[u8],
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    key.decrypt(rsa::Oaep::new::<sha1::Sha1>(), data)
        .ok()
        .map(zeroize::Zeroizing::new)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lowercase hex SHA-256 of `data` (how credentials are kept in the config).
pub fn sha256_hex(data: &[u8]) -> String {
    sha256(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded source that counts its calls.
    struct Counted(SeededRandom, std::sync::atomic::AtomicUsize);

    impl SecureRandom for Counted {
        fn fill(&self, buf: &mut [u8]) {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.fill(buf);
        }
    }

    fn counted() -> Counted {
        Counted(SeededRandom::new(7), Default::default())
    }

    /// The first `n` bytes of the stream behind [`counted`].
    fn stream(n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        SeededRandom::new(7).fill(&mut v);
        v
    }

    #[test]
    fn a_batch_draws_once_what_it_expects_and_hands_the_source_stream_out() {
        let source = counted();
        let batch = BatchRandom::new(&source, 8 * 44);
        let mut out = Vec::new();
        for _ in 0..8 {
            for n in [16, 16, 12] {
                let mut b = vec![0; n];
                batch.fill(&mut b);
                out.extend_from_slice(&b);
            }
        }
        assert_eq!(source.1.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(out, stream(8 * 44));
        // Every byte handed out is wiped from the batch's buffer.
        let d = batch.drawn.lock().unwrap();
        assert_eq!(d.used, 8 * 44);
        assert!(d.bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_batch_that_draws_more_than_expected_fetches_again_and_drops_the_rest() {
        let source = counted();
        let batch = BatchRandom::new(&source, 12);
        let (mut a, mut b, mut c) = ([0u8; 8], [0u8; 8], [0u8; 4]);
        batch.fill(&mut a);
        batch.fill(&mut b);
        batch.fill(&mut c);
        // 12 bytes fetched, 8 used; the 4 left are dropped, not handed out
        // later; then at least the draw's size each time. (Sizes are whole
        // words of the seeded stream, which rounds each fill up to 4 bytes.)
        let s = stream(12 + 8 + 4);
        assert_eq!(a[..], s[..8]);
        assert_eq!(b[..], s[12..20]);
        assert_eq!(c[..], s[20..24]);
        assert_eq!(source.1.load(std::sync::atomic::Ordering::Relaxed), 3);
        // Nothing expected: every draw goes to the source on its own.
        let lone = BatchRandom::new(&source, 0);
        lone.fill(&mut a);
        lone.fill(&mut a);
        assert_eq!(source.1.load(std::sync::atomic::Ordering::Relaxed), 5);
    }

    #[test]
    fn secret_bytes_are_wiped_and_never_printed() {
        let mut v = Vec::with_capacity(100);
        v.extend_from_slice(&[0xAB; 70]);
        let mut s = SecretBytes::new(v);
        assert_eq!(s.expose(), &[0xAB; 70][..]);
        let shown = format!("{s:?}");
        assert!(
            shown.contains("70 bytes") && !shown.contains("171"),
            "{shown}"
        );
        s.wipe();
        assert_eq!(s.expose(), &[0u8; 70][..]);
    }

    #[test]
    fn content_key_never_prints_its_bytes() {
        let k = ContentKey::from_bytes([0xab; 16]);
        assert_eq!(format!("{k:?}"), "ContentKey(***)");
        assert_eq!(format!("{k}"), "***");
    }

    #[test]
    fn seeded_random_is_reproducible_and_seed_dependent() {
        let (a, b, c) = (
            SeededRandom::new(7),
            SeededRandom::new(7),
            SeededRandom::new(8),
        );
        let (mut x, mut y, mut z) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn aes_ecb_matches_fips197() {
        // FIPS-197 appendix C.1
        let key = ContentKey::from_bytes(
            *b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
        );
        let pt = *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
        let ct = aes128_ecb_encrypt_block(&key, &pt);
        assert_eq!(
            ct,
            *b"\x69\xc4\xe0\xd8\x6a\x7b\x04\x30\xd8\xcd\xb7\x80\x70\xb4\xc5\x5a"
        );
    }

    #[test]
    fn master_key_envelopes_bind_aad_and_detect_tampering() {
        let rng = SeededRandom::new(3);
        let mk = MasterKey::generate(7, &rng);
        let sealed = mk.seal(b"tenant/kid", b"secret key bytes", &rng);
        assert_eq!(
            &mk.open(b"tenant/kid", &sealed).unwrap()[..],
            b"secret key bytes"
        );
        assert!(mk.open(b"other/kid", &sealed).is_none());
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(mk.open(b"tenant/kid", &bad).is_none());
        assert!(MasterKey::generate(7, &rng)
            .open(b"tenant/kid", &sealed)
            .is_none());
        assert_eq!(format!("{mk:?}"), "MasterKey(v7, ***)");
    }

    /// Nonces of zeros, for known answers.
    struct Zeros;

    impl SecureRandom for Zeros {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(0);
        }
    }

    #[test]
    fn master_key_envelopes_are_aes_256_gcm() {
        // McGrew and Viega's GCM test case 14: zero key, IV and block.
        let unhex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let sealed = MasterKey::new(1, [0; 32]).seal(b"", &[0; 16], &Zeros);
        assert_eq!(
            sealed,
            unhex(
                "000000000000000000000000\
                 cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
            )
        );
        // Key 00..1f, nonce 00..0b, with associated data, as Python's
        // `cryptography` seals it.
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let nonce: Vec<u8> = (0..12).collect();
        let expected = "3467b569a091e270e838b7e9c89d1d1ea3b7e950d012295c0951c5e7641d65c1\
                        c937d6a15c6424e6eaf7f0bd5a1303bc";
        let mut envelope = nonce.clone();
        envelope.extend(unhex(expected));
        let mk = MasterKey::new(2, key);
        let plain = b"secret key bytes and iv 16 bytes";
        assert_eq!(&mk.open(b"tenant/kid", &envelope).unwrap()[..], plain);
        // A clone holds the same schedule.
        assert_eq!(
            &mk.clone().open(b"tenant/kid", &envelope).unwrap()[..],
            plain
        );
        struct Counting(std::sync::atomic::AtomicU8);
        impl SecureRandom for Counting {
            fn fill(&self, buf: &mut [u8]) {
                for b in buf {
                    *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        let sealed = mk.seal(b"tenant/kid", plain, &Counting(Default::default()));
        assert_eq!(sealed, envelope);
    }

    #[test]
    fn hashing_and_constant_time_comparison() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ct_eq(b"same", b"same"));
        assert!(!ct_eq(b"same", b"diff"));
        assert!(!ct_eq(b"short", b"longer"));
    }
}
