//! SHAKE128 for short messages (one 168-byte block), the hash behind every `_dlt_id` of a child
//! row. A nested document yields several child rows, so ids are hashed in batches: on x86-64
//! with AVX-512 eight Keccak-f[1600] states run side by side in vector lanes (one state per
//! 64-bit lane), with AVX2 four; elsewhere and for messages of a block or more the scalar
//! permutation runs once per message. `SLUICE_NO_SIMD_KECCAK=1` forces the scalar path. Both give exactly `shake128(message)` (tested against tiny-keccak).

use tiny_keccak::{Hasher, Shake, Xof};

/// The SHAKE128 rate in bytes: messages shorter than this fit one block.
pub const RATE: usize = 168;

/// The first `out.len()` (at most 16) bytes of `shake128(msg)`.
pub fn shake128_short(msg: &[u8], out: &mut [u8]) {
    debug_assert!(out.len() <= 16);
    if msg.len() >= RATE {
        let mut h = Shake::v128();
        h.update(msg);
        h.squeeze(out);
        return;
    }
    let mut state = [0u64; 25];
    absorb_block(&mut state, msg);
    tiny_keccak::keccakf(&mut state);
    squeeze16(&state, out);
}

/// XORs one padded single-block message into a zero state.
fn absorb_block(state: &mut [u64; 25], msg: &[u8]) {
    let mut block = [0u8; RATE];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] ^= 0x1f;
    block[RATE - 1] ^= 0x80;
    for (lane, chunk) in state.iter_mut().zip(block.chunks_exact(8)) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        *lane ^= u64::from_le_bytes(w);
    }
}

fn squeeze16(state: &[u64; 25], out: &mut [u8]) {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&state[0].to_le_bytes());
    bytes[8..].copy_from_slice(&state[1].to_le_bytes());
    out.copy_from_slice(&bytes[..out.len()]);
}

/// `shake128` of each message of `buf` (message `i` ends at `ends[i]`, the next starts there):
/// the first 16 bytes of each, passed to `emit` in order. Nothing is allocated.
pub fn shake128_batch(buf: &[u8], ends: &[usize], mut emit: impl FnMut(&[u8; 16])) {
    #[cfg(target_arch = "x86_64")]
    if ends.len() >= 2 {
        if avx512::available() {
            // SAFETY: the CPU supports AVX-512F (checked by `available`)
            return batched(buf, ends, avx512::shake128_x8, emit);
        }
        if avx2::available() {
            // SAFETY: the CPU supports AVX2 (checked by `available`)
            return batched(buf, ends, avx2::shake128_x4, emit);
        }
    }
    let mut start = 0;
    for &end in ends {
        let mut o = [0u8; 16];
        shake128_short(&buf[start..end], &mut o);
        start = end;
        emit(&o);
    }
}

/// The messages in groups of `N`, each group hashed side by side by `hash` (one of the SIMD
/// permutations below; the caller checked the CPU has its features), or one by one when one of
/// the group's messages is a block or longer.
#[cfg(target_arch = "x86_64")]
fn batched<const N: usize>(
    buf: &[u8],
    ends: &[usize],
    hash: unsafe fn(&[&[u8]], &mut [[u8; 16]; N]),
    mut emit: impl FnMut(&[u8; 16]),
) {
    let mut start = 0;
    for group in ends.chunks(N) {
        let mut msgs: [&[u8]; N] = [&[]; N];
        for (m, &end) in msgs.iter_mut().zip(group) {
            *m = &buf[start..end];
            start = end;
        }
        let msgs = &msgs[..group.len()];
        if msgs.iter().all(|m| m.len() < RATE) {
            let mut res = [[0u8; 16]; N];
            // SAFETY: the caller checked the CPU features `hash` needs
            unsafe { hash(msgs, &mut res) };
            res[..msgs.len()].iter().for_each(&mut emit);
        } else {
            for m in msgs {
                let mut o = [0u8; 16];
                shake128_short(m, &mut o);
                emit(&o);
            }
        }
    }
}

/// The absorbed states of up to `N` single-block messages, lane-major: `lanes[i][j]` is lane `i`
/// of message `j`'s state, so row `i` loads as one vector.
#[cfg(target_arch = "x86_64")]
fn lanes_of<const N: usize>(msgs: &[&[u8]]) -> [[u64; N]; 25] {
    let mut lanes = [[0u64; N]; 25];
    for (j, m) in msgs.iter().enumerate() {
        let mut s = [0u64; 25];
        absorb_block(&mut s, m);
        for (row, w) in lanes.iter_mut().zip(s) {
            row[j] = w;
        }
    }
    lanes
}

/// The first 16 bytes of each of `n` squeezed states, from their lanes 0 and 1.
#[cfg(target_arch = "x86_64")]
fn digests<const N: usize>(l0: &[u64; N], l1: &[u64; N], n: usize, out: &mut [[u8; 16]; N]) {
    for (j, o) in out.iter_mut().enumerate().take(n) {
        o[..8].copy_from_slice(&l0[j].to_le_bytes());
        o[8..].copy_from_slice(&l1[j].to_le_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
const RC: [u64; 24] = [
    0x0000000000000001,
    0x0000000000008082,
    0x800000000000808a,
    0x8000000080008000,
    0x000000000000808b,
    0x0000000080000001,
    0x8000000080008081,
    0x8000000000008009,
    0x000000000000008a,
    0x0000000000000088,
    0x0000000080008009,
    0x000000008000000a,
    0x000000008000808b,
    0x800000000000008b,
    0x8000000000008089,
    0x8000000000008003,
    0x8000000000008002,
    0x8000000000000080,
    0x000000000000800a,
    0x800000008000000a,
    0x8000000080008081,
    0x8000000000008080,
    0x0000000080000001,
    0x8000000080008008,
];

/// Keccak-f[1600] over 25 vectors of lanes (one state per 64-bit lane), written out once for
/// every vector width: the width's operations come in as macros (`xor`, five-way `xor5`, `rol`
/// by a literal, `chi` = a ^ (!b & c), `splat` of a round constant). One variable per lane, so
/// the lanes and temporaries stay in vector registers where there are enough of them.
#[cfg(target_arch = "x86_64")]
macro_rules! keccak_f1600 {
    ($state:ident, $xor:ident, $xor5:ident, $rol:ident, $chi:ident, $splat:ident) => {{
        let state = $state;
        let mut a0 = state[0];
        let mut a1 = state[1];
        let mut a2 = state[2];
        let mut a3 = state[3];
        let mut a4 = state[4];
        let mut a5 = state[5];
        let mut a6 = state[6];
        let mut a7 = state[7];
        let mut a8 = state[8];
        let mut a9 = state[9];
        let mut a10 = state[10];
        let mut a11 = state[11];
        let mut a12 = state[12];
        let mut a13 = state[13];
        let mut a14 = state[14];
        let mut a15 = state[15];
        let mut a16 = state[16];
        let mut a17 = state[17];
        let mut a18 = state[18];
        let mut a19 = state[19];
        let mut a20 = state[20];
        let mut a21 = state[21];
        let mut a22 = state[22];
        let mut a23 = state[23];
        let mut a24 = state[24];
        for rc in RC {
            // theta
            let c0 = $xor5!(a0, a5, a10, a15, a20);
            let c1 = $xor5!(a1, a6, a11, a16, a21);
            let c2 = $xor5!(a2, a7, a12, a17, a22);
            let c3 = $xor5!(a3, a8, a13, a18, a23);
            let c4 = $xor5!(a4, a9, a14, a19, a24);
            let d0 = $xor!(c4, $rol!(1, c1));
            let d1 = $xor!(c0, $rol!(1, c2));
            let d2 = $xor!(c1, $rol!(1, c3));
            let d3 = $xor!(c2, $rol!(1, c4));
            let d4 = $xor!(c3, $rol!(1, c0));
            // rho and pi (b[PI[i]] = rol(a[i] ^ d[x], ROT[i]))
            let b0 = $xor!(a0, d0);
            let b10 = $rol!(1, $xor!(a1, d1));
            let b20 = $rol!(62, $xor!(a2, d2));
            let b5 = $rol!(28, $xor!(a3, d3));
            let b15 = $rol!(27, $xor!(a4, d4));
            let b16 = $rol!(36, $xor!(a5, d0));
            let b1 = $rol!(44, $xor!(a6, d1));
            let b11 = $rol!(6, $xor!(a7, d2));
            let b21 = $rol!(55, $xor!(a8, d3));
            let b6 = $rol!(20, $xor!(a9, d4));
            let b7 = $rol!(3, $xor!(a10, d0));
            let b17 = $rol!(10, $xor!(a11, d1));
            let b2 = $rol!(43, $xor!(a12, d2));
            let b12 = $rol!(25, $xor!(a13, d3));
            let b22 = $rol!(39, $xor!(a14, d4));
            let b23 = $rol!(41, $xor!(a15, d0));
            let b8 = $rol!(45, $xor!(a16, d1));
            let b18 = $rol!(15, $xor!(a17, d2));
            let b3 = $rol!(21, $xor!(a18, d3));
            let b13 = $rol!(8, $xor!(a19, d4));
            let b14 = $rol!(18, $xor!(a20, d0));
            let b24 = $rol!(2, $xor!(a21, d1));
            let b9 = $rol!(61, $xor!(a22, d2));
            let b19 = $rol!(56, $xor!(a23, d3));
            let b4 = $rol!(14, $xor!(a24, d4));
            // chi: a ^ (!b & c)
            a0 = $chi!(b0, b1, b2);
            a1 = $chi!(b1, b2, b3);
            a2 = $chi!(b2, b3, b4);
            a3 = $chi!(b3, b4, b0);
            a4 = $chi!(b4, b0, b1);
            a5 = $chi!(b5, b6, b7);
            a6 = $chi!(b6, b7, b8);
            a7 = $chi!(b7, b8, b9);
            a8 = $chi!(b8, b9, b5);
            a9 = $chi!(b9, b5, b6);
            a10 = $chi!(b10, b11, b12);
            a11 = $chi!(b11, b12, b13);
            a12 = $chi!(b12, b13, b14);
            a13 = $chi!(b13, b14, b10);
            a14 = $chi!(b14, b10, b11);
            a15 = $chi!(b15, b16, b17);
            a16 = $chi!(b16, b17, b18);
            a17 = $chi!(b17, b18, b19);
            a18 = $chi!(b18, b19, b15);
            a19 = $chi!(b19, b15, b16);
            a20 = $chi!(b20, b21, b22);
            a21 = $chi!(b21, b22, b23);
            a22 = $chi!(b22, b23, b24);
            a23 = $chi!(b23, b24, b20);
            a24 = $chi!(b24, b20, b21);
            // iota
            a0 = $xor!(a0, $splat!(rc));
        }
        state[0] = a0;
        state[1] = a1;
        state[2] = a2;
        state[3] = a3;
        state[4] = a4;
        state[5] = a5;
        state[6] = a6;
        state[7] = a7;
        state[8] = a8;
        state[9] = a9;
        state[10] = a10;
        state[11] = a11;
        state[12] = a12;
        state[13] = a13;
        state[14] = a14;
        state[15] = a15;
        state[16] = a16;
        state[17] = a17;
        state[18] = a18;
        state[19] = a19;
        state[20] = a20;
        state[21] = a21;
        state[22] = a22;
        state[23] = a23;
        state[24] = a24;
    }};
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use super::{digests, lanes_of, RATE, RC};

    pub fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            std::env::var_os("SLUICE_NO_SIMD_KECCAK").is_none()
                && std::arch::is_x86_feature_detected!("avx512f")
        })
    }

    macro_rules! xor {
        ($a:expr, $b:expr) => {
            _mm512_xor_si512($a, $b)
        };
    }
    macro_rules! xor5 {
        ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
            _mm512_ternarylogic_epi64::<0x96>(_mm512_ternarylogic_epi64::<0x96>($a, $b, $c), $d, $e)
        };
    }
    macro_rules! rol {
        ($n:literal, $x:expr) => {
            _mm512_rol_epi64::<$n>($x)
        };
    }
    macro_rules! chi {
        ($a:expr, $b:expr, $c:expr) => {
            _mm512_ternarylogic_epi64::<0xD2>($a, $b, $c)
        };
    }
    macro_rules! splat {
        ($rc:expr) => {
            _mm512_set1_epi64($rc as i64)
        };
    }

    /// Keccak-f[1600] on eight states, one per 64-bit lane of each vector (32 registers: the
    /// lanes and temporaries fit).
    #[target_feature(enable = "avx512f")]
    fn f1600_x8(state: &mut [__m512i; 25]) {
        keccak_f1600!(state, xor, xor5, rol, chi, splat);
    }

    /// SHAKE128 of up to eight single-block messages: the first 16 bytes of each.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn shake128_x8(msgs: &[&[u8]], out: &mut [[u8; 16]; 8]) {
        debug_assert!(msgs.len() <= 8 && msgs.iter().all(|m| m.len() < RATE));
        let lanes = lanes_of::<8>(msgs);
        let mut a = [_mm512_setzero_si512(); 25];
        for (v, row) in a.iter_mut().zip(&lanes) {
            // SAFETY: a row is 8 u64
            *v = unsafe { _mm512_loadu_si512(row.as_ptr().cast()) };
        }
        f1600_x8(&mut a);
        let (mut l0, mut l1) = ([0u64; 8], [0u64; 8]);
        // SAFETY: 8 u64 each
        unsafe {
            _mm512_storeu_si512(l0.as_mut_ptr().cast(), a[0]);
            _mm512_storeu_si512(l1.as_mut_ptr().cast(), a[1]);
        }
        digests(&l0, &l1, msgs.len(), out);
    }
}

/// The same batch on four states with AVX2, for x86-64 CPUs without AVX-512 (AMD before Zen 4,
/// most desktop Intel).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use super::{digests, lanes_of, RATE, RC};

    pub fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            std::env::var_os("SLUICE_NO_SIMD_KECCAK").is_none()
                && std::arch::is_x86_feature_detected!("avx2")
        })
    }

    macro_rules! xor {
        ($a:expr, $b:expr) => {
            _mm256_xor_si256($a, $b)
        };
    }
    macro_rules! xor5 {
        ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
            _mm256_xor_si256(
                _mm256_xor_si256(_mm256_xor_si256($a, $b), _mm256_xor_si256($c, $d)),
                $e,
            )
        };
    }
    macro_rules! rol {
        ($n:literal, $x:expr) => {{
            let x = $x;
            _mm256_or_si256(
                _mm256_slli_epi64::<$n>(x),
                _mm256_srli_epi64::<{ 64 - $n }>(x),
            )
        }};
    }
    macro_rules! chi {
        ($a:expr, $b:expr, $c:expr) => {
            _mm256_xor_si256($a, _mm256_andnot_si256($b, $c))
        };
    }
    macro_rules! splat {
        ($rc:expr) => {
            _mm256_set1_epi64x($rc as i64)
        };
    }

    /// Keccak-f[1600] on four states, one per 64-bit lane of each vector (16 registers: the
    /// compiler spills some lanes, still far ahead of four scalar permutations).
    #[target_feature(enable = "avx2")]
    fn f1600_x4(state: &mut [__m256i; 25]) {
        keccak_f1600!(state, xor, xor5, rol, chi, splat);
    }

    /// SHAKE128 of up to four single-block messages: the first 16 bytes of each.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn shake128_x4(msgs: &[&[u8]], out: &mut [[u8; 16]; 4]) {
        debug_assert!(msgs.len() <= 4 && msgs.iter().all(|m| m.len() < RATE));
        let lanes = lanes_of::<4>(msgs);
        let mut a = [_mm256_setzero_si256(); 25];
        for (v, row) in a.iter_mut().zip(&lanes) {
            // SAFETY: a row is 4 u64
            *v = unsafe { _mm256_loadu_si256(row.as_ptr().cast()) };
        }
        f1600_x4(&mut a);
        let (mut l0, mut l1) = ([0u64; 4], [0u64; 4]);
        // SAFETY: 4 u64 each
        unsafe {
            _mm256_storeu_si256(l0.as_mut_ptr().cast(), a[0]);
            _mm256_storeu_si256(l1.as_mut_ptr().cast(), a[1]);
        }
        digests(&l0, &l1, msgs.len(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(msgs: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for m in msgs {
            buf.extend_from_slice(m);
            ends.push(buf.len());
        }
        (buf, ends)
    }

    fn reference(msg: &[u8], n: usize) -> Vec<u8> {
        let mut h = Shake::v128();
        h.update(msg);
        let mut out = vec![0u8; n];
        h.squeeze(&mut out);
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn each_simd_width_matches_the_reference() {
        let msgs: Vec<Vec<u8>> = (0..8usize)
            .map(|i| (0..(i * 21)).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        if std::arch::is_x86_feature_detected!("avx2") {
            for n in 1..=4 {
                let mut out = [[0u8; 16]; 4];
                // SAFETY: AVX2 detected above
                unsafe { avx2::shake128_x4(&refs[..n], &mut out) };
                for (m, o) in refs.iter().zip(&out[..n]) {
                    assert_eq!(o.to_vec(), reference(m, 16), "x4, len {}", m.len());
                }
            }
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            for n in 1..=8 {
                let mut out = [[0u8; 16]; 8];
                // SAFETY: AVX-512F detected above
                unsafe { avx512::shake128_x8(&refs[..n], &mut out) };
                for (m, o) in refs.iter().zip(&out[..n]) {
                    assert_eq!(o.to_vec(), reference(m, 16), "x8, len {}", m.len());
                }
            }
        }
    }

    #[test]
    fn single_and_batched_match_the_reference() {
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        for len in [0usize, 1, 7, 8, 9, 50, 135, 136, 166, 167, 168, 169, 300] {
            msgs.push((0..len).map(|i| (i * 31 + len) as u8).collect());
        }
        for i in 0..37 {
            msgs.push(format!("IzCnYUQ9BmCnLQ_issues__comments_{i}").into_bytes());
        }
        for m in &msgs {
            let mut o = [0u8; 10];
            shake128_short(m, &mut o);
            assert_eq!(o.to_vec(), reference(m, 10), "len {}", m.len());
        }
        for take in [1usize, 2, 3, 8, 9, 17, msgs.len()] {
            let refs: Vec<&[u8]> = msgs.iter().take(take).map(Vec::as_slice).collect();
            let (buf, ends) = concat(&refs);
            let mut out: Vec<[u8; 10]> = Vec::new();
            shake128_batch(&buf, &ends, |d| {
                let mut o = [0u8; 10];
                o.copy_from_slice(&d[..10]);
                out.push(o);
            });
            assert_eq!(out.len(), take);
            for (m, o) in refs.iter().zip(&out) {
                assert_eq!(
                    o.to_vec(),
                    reference(m, 10),
                    "batch of {take}, len {}",
                    m.len()
                );
            }
        }
    }
}
