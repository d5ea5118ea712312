//! Deflate's Huffman codes (RFC 1951 §3.2.2): decoding tables built from code lengths,
//! accepting and refusing exactly the sets zlib's `inflate_table` does.

use std::sync::{Arc, LazyLock};

/// Bits of a literal/length code looked up at once; longer codes go through a subtable.
pub(super) const LIT_ROOT: u32 = 10;
/// The same for distance codes.
pub(super) const DIST_ROOT: u32 = 8;

/// The longest code deflate allows.
pub(super) const MAX_CODE_BITS: u32 = 15;

// A table entry is a u32: `value << 16 | kind << 12 | extra << 8 | bits`.
// `bits`: the code's whole length (for a subtable link: its index bits); `extra`: the
// extra bits that follow a length or distance code; `value`: the literal, the base length
// or distance, or the subtable's offset.
pub(super) const LITERAL: u32 = 0;
pub(super) const LENGTH: u32 = 1;
pub(super) const END_OF_BLOCK: u32 = 2;
pub(super) const DISTANCE: u32 = 1;
const SUBTABLE: u32 = 3;
pub(super) const INVALID: u32 = 4;

const fn entry(value: u32, kind: u32, extra: u32, bits: u32) -> u32 {
    value << 16 | kind << 12 | extra << 8 | bits
}

pub(super) const fn kind(entry: u32) -> u32 {
    entry >> 12 & 0xf
}

pub(super) const fn bits(entry: u32) -> u32 {
    entry & 0xff
}

pub(super) const fn extra(entry: u32) -> u32 {
    entry >> 8 & 0xf
}

pub(super) const fn value(entry: u32) -> u32 {
    entry >> 16
}

/// Base lengths and extra bits of length symbols 257..=285 (RFC 1951 §3.2.5).
const LENGTH_BASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/// Base distances and extra bits of distance symbols 0..=29.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// Which alphabet a set of code lengths is for: zlib refuses an incomplete code-length
/// code, but allows a literal/length or distance code of a single one-bit code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Alphabet {
    CodeLengths,
    LitLen,
    Dist,
}

/// One lookup table: the root, indexed by the next `ROOT` bits, then the subtables.
#[derive(Debug)]
pub(super) struct Table<const SIZE: usize> {
    root: [u32; SIZE],
    sub: Vec<u32>,
}

impl<const SIZE: usize> Table<SIZE> {
    /// The entry for the code at the start of `bits` (its low bits are the next ones).
    #[inline(always)]
    pub(super) fn lookup(&self, word: u64) -> u32 {
        let link = self.root[word as usize & (SIZE - 1)];
        if kind(link) != SUBTABLE {
            return link;
        }
        let root = SIZE.trailing_zeros();
        let index = value(link) as usize + ((word >> root) as usize & ((1 << bits(link)) - 1));
        self.sub.get(index).copied().unwrap_or(entry(0, INVALID, 0, MAX_CODE_BITS))
    }
}

/// The codes of one Huffman block, and its end-of-block code (to end the block early).
#[derive(Debug)]
pub(in crate::codec) struct Tables {
    pub(super) lit: Table<{ 1 << LIT_ROOT }>,
    pub(super) dist: Table<{ 1 << DIST_ROOT }>,
    /// The end-of-block code as it goes on the wire (bit-reversed), and its length.
    pub(in crate::codec) end_of_block: (u32, u32),
}

/// Why a set of code lengths was refused (zlib's words).
pub(super) type Refusal = &'static str;

impl Tables {
    /// The tables of a dynamic block from its literal/length and distance code lengths.
    pub(super) fn new(lit_lengths: &[u8], dist_lengths: &[u8]) -> Result<Tables, Refusal> {
        let lit = build(lit_lengths, Alphabet::LitLen).ok_or("invalid literal/lengths set")?;
        let dist = build(dist_lengths, Alphabet::Dist).ok_or("invalid distances set")?;
        let end_of_block = canonical_codes(lit_lengths)[256];
        Ok(Tables { lit, dist, end_of_block: (end_of_block, u32::from(lit_lengths[256])) })
    }

    /// The fixed codes of RFC 1951 §3.2.6, built once.
    pub(super) fn fixed() -> Arc<Tables> {
        static FIXED: LazyLock<Arc<Tables>> = LazyLock::new(|| {
            let mut lit = [8u8; 288];
            lit[144..256].fill(9);
            lit[256..280].fill(7);
            // Valid lengths, so the table builds; the symbols' entries say they are invalid.
            Arc::new(Tables::new(&lit, &[5u8; 32]).unwrap_or_else(|e| unreachable!("the fixed codes: {e}")))
        });
        Arc::clone(&FIXED)
    }
}

/// A table for the code-length code of a dynamic block header. A code with no codes at
/// all is refused here; zlib refuses the block a little later ("missing end-of-block").
pub(super) fn code_length_table(lengths: &[u8; 19]) -> Result<Table<128>, Refusal> {
    if lengths.iter().all(|&len| len == 0) {
        return Err("invalid code lengths set");
    }
    build(lengths, Alphabet::CodeLengths).ok_or("invalid code lengths set")
}

/// What symbol `symbol` of `alphabet` decodes to, as a table entry without its length.
fn symbol_entry(symbol: usize, alphabet: Alphabet) -> u32 {
    match alphabet {
        Alphabet::CodeLengths => entry(symbol as u32, LITERAL, 0, 0),
        Alphabet::LitLen => match symbol {
            0..=255 => entry(symbol as u32, LITERAL, 0, 0),
            256 => entry(0, END_OF_BLOCK, 0, 0),
            257..=285 => entry(u32::from(LENGTH_BASE[symbol - 257]), LENGTH, u32::from(LENGTH_EXTRA[symbol - 257]), 0),
            _ => entry(0, INVALID, 0, 0),
        },
        Alphabet::Dist => match symbol {
            0..=29 => entry(u32::from(DIST_BASE[symbol]), DISTANCE, u32::from(DIST_EXTRA[symbol]), 0),
            _ => entry(0, INVALID, 0, 0),
        },
    }
}

/// The canonical code of each symbol (bit-reversed, as read from the stream), from the
/// code lengths (RFC 1951 §3.2.2). Symbols without a code get 0.
fn canonical_codes(lengths: &[u8]) -> Vec<u32> {
    let mut count = [0u32; 16];
    for &len in lengths {
        count[usize::from(len)] += 1;
    }
    count[0] = 0;
    let mut next = [0u32; 16];
    let mut code = 0;
    for len in 1..16 {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    lengths
        .iter()
        .map(|&len| {
            if len == 0 {
                return 0;
            }
            let code = next[usize::from(len)];
            next[usize::from(len)] += 1;
            code.reverse_bits() >> (32 - u32::from(len))
        })
        .collect()
}

/// Builds a table from code lengths, or `None` for a set zlib refuses: over-subscribed,
/// or incomplete (but for a literal/length or distance code whose longest code is one
/// bit, or a distance code with no codes at all).
fn build<const SIZE: usize>(lengths: &[u8], alphabet: Alphabet) -> Option<Table<SIZE>> {
    let root = SIZE.trailing_zeros();
    let mut count = [0i32; 16];
    for &len in lengths {
        count[usize::from(len)] += 1;
    }
    let longest = (1..16).rev().find(|&len| count[len] > 0).unwrap_or(0);
    let mut left = 1i32;
    for &n in &count[1..] {
        left = (left << 1) - n;
        if left < 0 {
            return None;
        }
    }
    if left > 0 && longest != 0 && (alphabet == Alphabet::CodeLengths || longest != 1) {
        return None;
    }
    let mut table = Table { root: [entry(0, INVALID, 0, MAX_CODE_BITS); SIZE], sub: Vec::new() };
    let codes = canonical_codes(lengths);
    // Subtables first: one per root prefix of the longer codes, as wide as its longest.
    let mut widths = [0u32; SIZE];
    for (&len, &code) in lengths.iter().zip(&codes) {
        let len = u32::from(len);
        if len > root {
            let prefix = code as usize & (SIZE - 1);
            widths[prefix] = widths[prefix].max(len - root);
        }
    }
    for (prefix, &width) in widths.iter().enumerate().filter(|(_, w)| **w > 0) {
        table.root[prefix] = entry(table.sub.len() as u32, SUBTABLE, 0, width);
        table.sub.resize(table.sub.len() + (1 << width), entry(0, INVALID, 0, MAX_CODE_BITS));
    }
    for (symbol, (&len, &code)) in lengths.iter().zip(&codes).enumerate().filter(|(_, (len, _))| **len > 0) {
        let len = u32::from(len);
        let entry = symbol_entry(symbol, alphabet) | len;
        if len <= root {
            for index in (code as usize..SIZE).step_by(1 << len) {
                table.root[index] = entry;
            }
        } else {
            let link = table.root[code as usize & (SIZE - 1)];
            let (offset, width) = (value(link) as usize, bits(link));
            let sub_code = (code >> root) as usize;
            for index in (sub_code..1 << width).step_by(1 << (len - root)) {
                table.sub[offset + index] = entry;
            }
        }
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_codes_decode_as_rfc_1951_says() {
        let fixed = Tables::fixed();
        // Literal 0 is 00110000 (8 bits), sent most significant bit first.
        let e = fixed.lit.lookup(u64::from(0b0011_0000u32.reverse_bits() >> 24));
        assert_eq!((kind(e), value(e), bits(e)), (LITERAL, 0, 8));
        // 256 (end of block) is 0000000 (7 bits).
        let e = fixed.lit.lookup(0);
        assert_eq!((kind(e), bits(e)), (END_OF_BLOCK, 7));
        assert_eq!(fixed.end_of_block, (0, 7));
        // 255 is 111111111 (9 bits).
        let e = fixed.lit.lookup(0x1ff);
        assert_eq!((kind(e), value(e), bits(e)), (LITERAL, 255, 9));
        // 286 and 287 have codes (11000110, 11000111) but are not valid symbols.
        let e = fixed.lit.lookup(u64::from(0b1100_0110u32.reverse_bits() >> 24));
        assert_eq!(kind(e), INVALID);
        // Distance 30 and 31 likewise.
        let e = fixed.dist.lookup(u64::from(30u32.reverse_bits() >> 27));
        assert_eq!(kind(e), INVALID);
        let e = fixed.dist.lookup(u64::from(4u32.reverse_bits() >> 27));
        assert_eq!((kind(e), value(e), extra(e)), (DISTANCE, 5, 1));
    }

    #[test]
    fn long_codes_are_found_through_subtables() {
        // A complete code with lengths 1, 2, ..., 14, 15, 15.
        let mut lengths: Vec<u8> = (1..=15).collect();
        lengths.push(15);
        lengths.resize(286, 0);
        let table = build::<{ 1 << LIT_ROOT }>(&lengths, Alphabet::LitLen).unwrap();
        let codes = canonical_codes(&lengths);
        for (symbol, (&len, &code)) in lengths.iter().zip(&codes).enumerate().take(16) {
            let e = table.lookup(u64::from(code) | 0xdead << len);
            assert_eq!((value(e), bits(e)), (symbol as u32, u32::from(len)), "symbol {symbol}");
        }
    }

    #[test]
    fn zlib_refuses_what_is_refused_here() {
        // Over-subscribed: three one-bit codes.
        assert!(build::<256>(&[1, 1, 1], Alphabet::Dist).is_none());
        // Incomplete: a two-bit code alone.
        assert!(build::<256>(&[2, 0, 0], Alphabet::Dist).is_none());
        // One one-bit code is allowed for literals/lengths and distances, not code lengths.
        assert!(build::<256>(&[1, 0, 0], Alphabet::Dist).is_some());
        assert!(build::<128>(&[1, 0, 0], Alphabet::CodeLengths).is_none());
        // No distance codes at all: allowed (a block of literals only).
        assert!(build::<256>(&[0; 30], Alphabet::Dist).is_some());
    }
}
