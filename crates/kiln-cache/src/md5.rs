//! MD5, the hash DVC names every object by. Written here because it is the whole cost of `add`
//! of a large file: one md5 stream cannot be split, so its speed is the speed of `add`.
//!
//! On x86-64 the 64 steps are written in assembly, for this reason: each step's result feeds the
//! next, so what counts is the length of that chain, not the number of instructions. Written out
//! by hand, every operand that does not depend on the newest word (`a + m[g] + K[i]`, `c ^ d`,
//! `c & !d`, `!d`) is ready before it arrives, and G adds its two disjoint halves separately, so a
//! step is 4 (G, H) or 5 (F, I) cycles of latency: 4.5 cycles a byte against 5.7 for the md-5
//! crate (whose Rust LLVM folds back into the longer forms) and 4.9 for OpenSSL's assembly. On this
//! project's 2-core machines that is 805 MB/s against 638 (md-5) and 740 (OpenSSL, DVC's md5).
//! Tried and slower there: the steps in one AVX-512 lane (`vpternlogd` makes every function one
//! instruction, but a vector rotate costs 2 cycles), 700 MB/s.
//!
//! Elsewhere the md-5 crate's block function is used; the padding and buffering around it are
//! the same few lines on every target.

/// An md5 in progress: [`Md5::update`] with the bytes in order, then [`Md5::finalize`].
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    /// Bytes of a block not yet complete, `buffered` of them.
    block: [u8; 64],
    buffered: usize,
    /// Every byte given so far, for the padding's length field.
    len: u64,
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Md5").field("len", &self.len).finish_non_exhaustive()
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    #[must_use]
    pub fn new() -> Self {
        Self { state: [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476], block: [0; 64], buffered: 0, len: 0 }
    }

    /// The md5 of bytes already in memory.
    #[must_use]
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let take = data.len().min(64 - self.buffered);
            self.block[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            compress(&mut self.state, std::slice::from_ref(&self.block));
            self.buffered = 0;
        }
        let (blocks, rest) = data.as_chunks::<64>();
        compress(&mut self.state, blocks);
        self.block[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    #[must_use]
    pub fn finalize(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        // RFC 1321 §3.1–3.2: a 1 bit, zeros up to 56 bytes into a block, the length in bits.
        let mut tail = [0u8; 128];
        tail[..self.buffered].copy_from_slice(&self.block[..self.buffered]);
        tail[self.buffered] = 0x80;
        let end = if self.buffered < 56 { 64 } else { 128 };
        tail[end - 8..end].copy_from_slice(&bits.to_le_bytes());
        let (blocks, _) = tail[..end].as_chunks::<64>();
        compress(&mut self.state, blocks);
        let mut out = [0u8; 16];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        out
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn compress(state: &mut [u32; 4], blocks: &[[u8; 64]]) {
    md5::block_api::compress(state, blocks);
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // the steps are assembly: see the module's comment
fn compress(state: &mut [u32; 4], blocks: &[[u8; 64]]) {
    let [mut a, mut b, mut c, mut d] = *state;
    for block in blocks {
        let (words, _) = block.as_chunks::<4>();
        let m: [u32; 16] = std::array::from_fn(|i| u32::from_le_bytes(words[i]));
        let (a0, b0, c0, d0) = (a, b, c, d);
        // One step: a = b + rotl(a + f(b, c, d) + m[g] + K[i], s).
        macro_rules! step {
            ($f:ident, $s:literal, $a:ident, $b:ident, $c:ident, $d:ident, $g:literal, $i:literal) => {
                x86::step!($f, $s, $a, $b, $c, $d, m[$g].wrapping_add(K[$i]))
            };
        }
        step!(F, 7, a, b, c, d, 0, 0);
        step!(F, 12, d, a, b, c, 1, 1);
        step!(F, 17, c, d, a, b, 2, 2);
        step!(F, 22, b, c, d, a, 3, 3);
        step!(F, 7, a, b, c, d, 4, 4);
        step!(F, 12, d, a, b, c, 5, 5);
        step!(F, 17, c, d, a, b, 6, 6);
        step!(F, 22, b, c, d, a, 7, 7);
        step!(F, 7, a, b, c, d, 8, 8);
        step!(F, 12, d, a, b, c, 9, 9);
        step!(F, 17, c, d, a, b, 10, 10);
        step!(F, 22, b, c, d, a, 11, 11);
        step!(F, 7, a, b, c, d, 12, 12);
        step!(F, 12, d, a, b, c, 13, 13);
        step!(F, 17, c, d, a, b, 14, 14);
        step!(F, 22, b, c, d, a, 15, 15);

        step!(G, 5, a, b, c, d, 1, 16);
        step!(G, 9, d, a, b, c, 6, 17);
        step!(G, 14, c, d, a, b, 11, 18);
        step!(G, 20, b, c, d, a, 0, 19);
        step!(G, 5, a, b, c, d, 5, 20);
        step!(G, 9, d, a, b, c, 10, 21);
        step!(G, 14, c, d, a, b, 15, 22);
        step!(G, 20, b, c, d, a, 4, 23);
        step!(G, 5, a, b, c, d, 9, 24);
        step!(G, 9, d, a, b, c, 14, 25);
        step!(G, 14, c, d, a, b, 3, 26);
        step!(G, 20, b, c, d, a, 8, 27);
        step!(G, 5, a, b, c, d, 13, 28);
        step!(G, 9, d, a, b, c, 2, 29);
        step!(G, 14, c, d, a, b, 7, 30);
        step!(G, 20, b, c, d, a, 12, 31);

        step!(H, 4, a, b, c, d, 5, 32);
        step!(H, 11, d, a, b, c, 8, 33);
        step!(H, 16, c, d, a, b, 11, 34);
        step!(H, 23, b, c, d, a, 14, 35);
        step!(H, 4, a, b, c, d, 1, 36);
        step!(H, 11, d, a, b, c, 4, 37);
        step!(H, 16, c, d, a, b, 7, 38);
        step!(H, 23, b, c, d, a, 10, 39);
        step!(H, 4, a, b, c, d, 13, 40);
        step!(H, 11, d, a, b, c, 0, 41);
        step!(H, 16, c, d, a, b, 3, 42);
        step!(H, 23, b, c, d, a, 6, 43);
        step!(H, 4, a, b, c, d, 9, 44);
        step!(H, 11, d, a, b, c, 12, 45);
        step!(H, 16, c, d, a, b, 15, 46);
        step!(H, 23, b, c, d, a, 2, 47);

        step!(I, 6, a, b, c, d, 0, 48);
        step!(I, 10, d, a, b, c, 7, 49);
        step!(I, 15, c, d, a, b, 14, 50);
        step!(I, 21, b, c, d, a, 5, 51);
        step!(I, 6, a, b, c, d, 12, 52);
        step!(I, 10, d, a, b, c, 3, 53);
        step!(I, 15, c, d, a, b, 10, 54);
        step!(I, 21, b, c, d, a, 1, 55);
        step!(I, 6, a, b, c, d, 8, 56);
        step!(I, 10, d, a, b, c, 15, 57);
        step!(I, 15, c, d, a, b, 6, 58);
        step!(I, 21, b, c, d, a, 13, 59);
        step!(I, 6, a, b, c, d, 4, 60);
        step!(I, 10, d, a, b, c, 11, 61);
        step!(I, 15, c, d, a, b, 2, 62);
        step!(I, 21, b, c, d, a, 9, 63);

        a = a.wrapping_add(a0);
        b = b.wrapping_add(b0);
        c = c.wrapping_add(c0);
        d = d.wrapping_add(d0);
    }
    *state = [a, b, c, d];
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// One md5 step in assembly. In each, the instructions on `b` (the word the previous step
    /// wrote) come last and are as few as the function allows; the rest runs ahead of it.
    /// Baseline x86-64 only (no BMI), so no feature check is needed.
    #[rustfmt::skip]
    macro_rules! step {
        // F = (b & c) | (!b & d), as d ^ (b & (c ^ d)).
        (F, $s:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr) => {
            x86::asm_step!($s, $a, $b, $c, $d, $w,
                "mov {t:e}, {c:e}", "xor {t:e}, {d:e}", "add {a:e}, {w:e}",
                "and {t:e}, {b:e}", "xor {t:e}, {d:e}", "add {a:e}, {t:e}")
        };
        // G = (b & d) | (c & !d): the halves have no bit in common, so they are added one at a
        // time and only `b & d` waits for b.
        (G, $s:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr) => {
            x86::asm_step!($s, $a, $b, $c, $d, $w,
                "mov {t:e}, {d:e}", "not {t:e}", "and {t:e}, {c:e}", "add {a:e}, {w:e}", "add {a:e}, {t:e}",
                "mov {t:e}, {d:e}", "and {t:e}, {b:e}", "add {a:e}, {t:e}")
        };
        // H = b ^ c ^ d, with c ^ d first.
        (H, $s:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr) => {
            x86::asm_step!($s, $a, $b, $c, $d, $w,
                "mov {t:e}, {c:e}", "xor {t:e}, {d:e}", "add {a:e}, {w:e}",
                "xor {t:e}, {b:e}", "add {a:e}, {t:e}")
        };
        // I = c ^ (b | !d), with !d first.
        (I, $s:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr) => {
            x86::asm_step!($s, $a, $b, $c, $d, $w,
                "mov {t:e}, {d:e}", "not {t:e}", "add {a:e}, {w:e}",
                "or {t:e}, {b:e}", "xor {t:e}, {c:e}", "add {a:e}, {t:e}")
        };
    }

    /// A step's function (`$f`: instructions leaving `a + f(b, c, d) + m[g] + K[i]` in `a`,
    /// with `t` to spare), then the rotation and the add of `b` that every step ends with.
    macro_rules! asm_step {
        ($s:literal, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr, $($f:literal),+) => {
            // SAFETY: registers only, as declared; no memory, no stack.
            unsafe {
                std::arch::asm!(
                    $($f,)+ "rol {a:e}, {s}", "add {a:e}, {b:e}",
                    a = inout(reg) $a, b = in(reg) $b, c = in(reg) $c, d = in(reg) $d, w = in(reg) $w,
                    t = out(reg) _, s = const $s, options(pure, nomem, nostack),
                )
            }
        };
    }
    pub(super) use {asm_step, step};
}

/// RFC 1321's table: `K[i]` is the integer part of `abs(sin(i + 1)) * 2^32`.
#[cfg(target_arch = "x86_64")]
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501, 0x698098d8,
    0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
    0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87,
    0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039,
    0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
    0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391,
];

#[cfg(test)]
mod tests {
    use super::Md5;
    use md5::Digest;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc_1321_test_suite() {
        for (input, want) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(Md5::digest(input.as_bytes())), want, "md5 of {input:?}");
        }
    }

    /// Every length around the padding's edges, fed whole and in uneven pieces, against the md-5
    /// crate.
    #[test]
    fn agrees_with_the_md5_crate_at_every_split() {
        let data: Vec<u8> = (0..1200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in (0..200).chain([511, 512, 513, 1023, 1024, 1199]) {
            let want: [u8; 16] = md5::Md5::digest(&data[..len]).into();
            assert_eq!(Md5::digest(&data[..len]), want, "length {len}");
            for piece in [1, 3, 63, 64, 65, 100] {
                let mut h = Md5::new();
                for chunk in data[..len].chunks(piece) {
                    h.update(chunk);
                }
                assert_eq!(h.finalize(), want, "length {len} in pieces of {piece}");
            }
        }
    }
}
