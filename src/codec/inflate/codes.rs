//! The symbols of a Huffman block (RFC 1951 §3.2.5): a fast loop while eight bytes of
//! input are at hand, a careful one that decodes a symbol only once all its bits are in,
//! and the walk that finds a symbol boundary again for the splice.

use std::io;
use std::sync::Arc;

use super::huffman::{DISTANCE, END_OF_BLOCK, LENGTH, LITERAL, Tables, bits, extra, kind, value};
use super::{Inflate, Input, MARK_SPACING, Mark, Stop, corrupt};

/// The most bits one symbol takes: a 15-bit length code and 5 extra bits, a 15-bit
/// distance code and 13 extra bits.
const SYMBOL_BITS: u32 = 48;

/// One decoded symbol.
enum Symbol {
    Literal(u8),
    Match { len: usize, dist: usize },
    End,
}

const fn mask(n: u32) -> u32 {
    (1 << n) - 1
}

/// The symbol at the start of `word` and how many bits it takes; only sure when `word`
/// holds [`SYMBOL_BITS`] bits of the stream.
#[inline(always)]
fn decode(tables: &Tables, word: u64) -> Result<(Symbol, u32), &'static str> {
    let entry = tables.lit.lookup(word);
    let mut used = bits(entry);
    match kind(entry) {
        LITERAL => Ok((Symbol::Literal(value(entry) as u8), used)),
        LENGTH => {
            let len = value(entry) + ((word >> used) as u32 & mask(extra(entry)));
            used += extra(entry);
            let code = tables.dist.lookup(word >> used);
            if kind(code) != DISTANCE {
                return Err("invalid distance code");
            }
            used += bits(code);
            let dist = value(code) + ((word >> used) as u32 & mask(extra(code)));
            used += extra(code);
            Ok((Symbol::Match { len: len as usize, dist: dist as usize }, used))
        }
        END_OF_BLOCK => Ok((Symbol::End, used)),
        _ => Err("invalid literal/length code"),
    }
}

/// The stream's bits, a word at a time: `bitcount` of `bitbuf`'s low bits are the next
/// ones; the bits above them, where there are any, are the stream's too.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    bitbuf: u64,
    bitcount: u32,
}

impl Reader<'_> {
    /// Whether a whole word can be loaded.
    #[inline(always)]
    fn fast(&self) -> bool {
        self.pos + 8 <= self.bytes.len()
    }

    /// Tops the buffer up to at least 56 bits, eight bytes at hand.
    #[inline(always)]
    fn refill_fast(&mut self) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.bytes[self.pos..self.pos + 8]);
        self.bitbuf |= u64::from_le_bytes(word) << self.bitcount;
        self.pos += 7 - (self.bitcount >> 3) as usize;
        self.bitcount |= 56;
    }

    /// Tops the buffer up a byte at a time, as far as the input goes.
    fn refill_careful(&mut self) {
        while self.bitcount <= 56 && self.pos < self.bytes.len() {
            self.bitbuf |= u64::from(self.bytes[self.pos]) << self.bitcount;
            self.pos += 1;
            self.bitcount += 8;
        }
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.bitbuf >>= n;
        self.bitcount -= n;
    }

    /// The stream bit the buffer starts at.
    fn bit(&self, base: u64) -> u64 {
        (base + self.pos as u64) * 8 - u64::from(self.bitcount)
    }
}

/// Decodes symbols until the block ends, the output reaches `limit` (less a match), or
/// the input runs short.
pub(super) fn run(inflate: &mut Inflate, input: Input<'_>, limit: usize, marks: &mut Vec<Mark>) -> io::Result<Stop> {
    let tables = Arc::clone(&inflate.tables);
    let mut reader =
        Reader { bytes: input.bytes, pos: (inflate.bit / 8 - input.base) as usize, bitbuf: 0, bitcount: 0 };
    let skip = (inflate.bit % 8) as u32;
    if reader.fast() {
        reader.refill_fast();
    } else {
        reader.refill_careful();
    }
    if reader.bitcount < skip {
        return Ok(Stop::Input);
    }
    reader.consume(skip);
    let origin = inflate.window.origin;
    let start = inflate.start;
    let buf = &mut inflate.window.buf[..];
    let mut at = inflate.window.at;
    let stop = loop {
        if at + 258 > limit {
            break Stop::Budget;
        }
        let here = origin + at as u64;
        if here >= inflate.next_mark {
            marks.push(Mark::Symbols { bit: reader.bit(input.base), pos: here, tables: Arc::clone(&tables) });
            inflate.next_mark = here + MARK_SPACING as u64;
        }
        let fast = reader.fast();
        if fast {
            reader.refill_fast();
        } else {
            reader.refill_careful();
        }
        let (symbol, used) = match decode(&tables, reader.bitbuf) {
            Ok(decoded) if fast || decoded.1 <= reader.bitcount => decoded,
            Err(message) if fast || reader.bitcount >= SYMBOL_BITS => return Err(corrupt(message)),
            // The symbol's bits are not all here yet.
            _ => break Stop::Input,
        };
        reader.consume(used);
        match symbol {
            Symbol::Literal(byte) => {
                buf[at] = byte;
                at += 1;
            }
            Symbol::Match { len, dist } => {
                if dist as u64 > here - start {
                    return Err(corrupt("invalid distance too far back"));
                }
                copy_match(buf, at, dist, len);
                at += len;
            }
            Symbol::End => break Stop::End,
        }
    };
    inflate.window.at = at;
    inflate.bit = reader.bit(input.base);
    Ok(stop)
}

/// Copies `len` bytes from `dist` back to `at`, as LZ77 does (an overlapping copy repeats
/// the bytes). Up to 15 bytes past the match may be overwritten: the buffer's slack.
#[inline(always)]
fn copy_match(buf: &mut [u8], at: usize, dist: usize, len: usize) {
    let from = at - dist;
    if dist >= 16 {
        let mut done = 0;
        while done < len {
            buf.copy_within(from + done..from + done + 16, at + done);
            done += 16;
        }
    } else if dist == 1 {
        let byte = buf[from];
        buf[at..at + len].fill(byte);
    } else {
        for i in 0..len {
            buf[at + i] = buf[from + i];
        }
    }
}

/// The last boundary between symbols at or before decoded position `target`, walking the
/// block from a known boundary (`bit`, `pos`) with its codes: the stream bit and the
/// decoded position there. It never walks past the block's end-of-block code.
pub(in crate::codec) fn boundary_before(
    input: Input<'_>,
    (mut bit, mut pos): (u64, u64),
    tables: &Tables,
    target: u64,
) -> io::Result<(u64, u64)> {
    loop {
        let (symbol, used) = decode(tables, input.peek(bit)).map_err(corrupt)?;
        let len = match symbol {
            Symbol::Literal(_) => 1,
            Symbol::Match { len, .. } => len as u64,
            Symbol::End => return Ok((bit, pos)),
        };
        if pos + len > target || bit + u64::from(used) > input.end_bit() {
            return Ok((bit, pos));
        }
        bit += u64::from(used);
        pos += len;
    }
}
