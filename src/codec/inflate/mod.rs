//! A deflate decoder (RFC 1951) that says where its blocks and symbols are: the splice
//! ([`super::splice`]) keeps the upstream's compressed bits up to a symbol boundary and
//! needs to know, bit for bit, where each one is. It accepts exactly the streams zlib
//! accepts (a property test compares them), in safe code.
//!
//! The input is the stream's bytes held in one contiguous buffer that starts at byte
//! `base` of the stream; positions are absolute bit offsets. Each unit of the stream (a
//! block header, a symbol, a piece of a stored block) is decoded whole or not at all, so
//! a decoder that runs out of input simply waits at its last boundary for more.

mod codes;
mod huffman;

use std::io;
use std::sync::Arc;

pub(super) use codes::boundary_before;
use huffman::MAX_CODE_BITS;
pub(super) use huffman::Tables;

/// Distances reach back at most this far (RFC 1951 §2).
pub(super) const WINDOW: usize = 32 * 1024;
/// A mark of the symbols' position goes at the first boundary after this many more
/// decoded bytes: how finely the splice can hand on the upstream's bits without looking
/// again.
const MARK_SPACING: usize = 4 * 1024;
/// Room past the end of the output for a match copied 16 bytes at a time.
const SLACK: usize = 258 + 16;

/// Where the stream's structure is, in stream order; `pos` is the decoded position there
/// (counted over the whole body, every member).
#[derive(Clone, Debug)]
pub(super) enum Mark {
    /// Bits kept as they are from `bit` on: a gzip or zlib header.
    Wrapper { bit: u64, pos: u64 },
    /// A member's deflate stream starts at `bit`, with an empty window.
    Begin { bit: u64, pos: u64 },
    /// A Huffman block's header starts at `bit` (its BFINAL bit).
    Header { bit: u64, pos: u64 },
    /// A boundary between symbols of a Huffman block with these codes.
    Symbols { bit: u64, pos: u64, tables: Arc<Tables> },
    /// A stored block whose header starts at `bit`, its `len` bytes of data at byte `data`.
    Stored { bit: u64, data: u64, len: u32, pos: u64 },
    /// The final block ends at `bit`, after its last code.
    End { bit: u64, pos: u64 },
    /// A member's trailer (check value and length) of `len` bytes starts at byte `byte`.
    Trailer { byte: u64, len: u64, pos: u64 },
    /// Nothing from byte `byte` on is part of the body (what follows its end).
    Ignored { byte: u64, pos: u64 },
}

impl Mark {
    /// The decoded position at the mark.
    pub(super) fn pos(&self) -> u64 {
        match self {
            Mark::Wrapper { pos, .. }
            | Mark::Begin { pos, .. }
            | Mark::Header { pos, .. }
            | Mark::Symbols { pos, .. }
            | Mark::Stored { pos, .. }
            | Mark::End { pos, .. }
            | Mark::Trailer { pos, .. }
            | Mark::Ignored { pos, .. } => *pos,
        }
    }

    /// The stream bit at the mark.
    pub(super) fn bit(&self) -> u64 {
        match self {
            Mark::Trailer { byte, .. } | Mark::Ignored { byte, .. } => byte * 8,
            Mark::Wrapper { bit, .. }
            | Mark::Begin { bit, .. }
            | Mark::Header { bit, .. }
            | Mark::Symbols { bit, .. }
            | Mark::Stored { bit, .. }
            | Mark::End { bit, .. } => *bit,
        }
    }
}

/// The input as the decoder sees it: the stream's bytes from byte `base` on.
#[derive(Clone, Copy)]
pub(super) struct Input<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) base: u64,
}

impl Input<'_> {
    /// One past the last bit there is.
    fn end_bit(&self) -> u64 {
        (self.base + self.bytes.len() as u64) * 8
    }

    /// The 64 bits from `bit` on, zero past the end of the input (57 of them at least are
    /// the stream's, where there is that much input).
    fn peek(&self, bit: u64) -> u64 {
        let start = (bit / 8 - self.base) as usize;
        let mut word = [0u8; 8];
        if let Some(bytes) = self.bytes.get(start..) {
            let n = bytes.len().min(8);
            word[..n].copy_from_slice(&bytes[..n]);
        }
        u64::from_le_bytes(word) >> (bit % 8)
    }
}

/// Why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The output budget is used up.
    Budget,
    /// More input is needed.
    Input,
    /// The final block has ended.
    End,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Stored { left: u32 },
    Codes,
    Done,
}

/// The decoded bytes: the last [`WINDOW`] of them, then this step's.
pub(super) struct Window {
    buf: Vec<u8>,
    /// Where the next byte goes.
    at: usize,
    /// The decoded position of `buf[0]`.
    origin: u64,
}

/// Decodes one deflate stream (a gzip or zlib member's, or raw).
pub(super) struct Inflate {
    state: State,
    /// The next bit to read.
    bit: u64,
    /// The current block is the final one.
    last: bool,
    tables: Arc<Tables>,
    window: Window,
    /// The decoded position where this stream started: no distance reaches before it.
    start: u64,
    /// The decoded position of the next mark of the symbols' position.
    next_mark: u64,
}

/// A zlib-style error: the stream is not valid deflate.
pub(super) fn corrupt(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

impl Inflate {
    /// A decoder for a stream starting at bit `bit`, decoded position `pos`, that outputs
    /// at most `step` bytes a run.
    pub(super) fn new(bit: u64, pos: u64, step: usize) -> Inflate {
        let window = Window { buf: vec![0; WINDOW + step + SLACK], at: 0, origin: pos };
        Inflate {
            state: State::Header,
            bit,
            last: false,
            tables: Tables::fixed(),
            window,
            start: pos,
            next_mark: pos + MARK_SPACING as u64,
        }
    }

    /// Starts the next stream (another gzip member) at `bit`, keeping the buffer.
    pub(super) fn restart(&mut self, bit: u64) {
        self.state = State::Header;
        self.bit = bit;
        self.last = false;
        self.start = self.pos();
    }

    /// The next bit to read.
    pub(super) fn bit(&self) -> u64 {
        self.bit
    }

    /// The decoded position of the next byte out.
    pub(super) fn pos(&self) -> u64 {
        self.window.origin + self.window.at as u64
    }

    /// Decodes from `input` until `budget` bytes are out (give or take a match), more
    /// input is needed, or the stream ends. The output is in [`Inflate::output`].
    pub(super) fn run(&mut self, input: Input<'_>, budget: usize, marks: &mut Vec<Mark>) -> io::Result<(Stop, usize)> {
        let start = self.window.make_room(budget + SLACK);
        let limit = (start + budget).min(self.window.buf.len() - SLACK);
        let stop = loop {
            let stop = match self.state {
                State::Done => break Stop::End,
                State::Header => match self.header(input, marks)? {
                    true => continue,
                    false => Stop::Input,
                },
                State::Stored { left } => self.stored(input, left, limit),
                State::Codes => codes::run(self, input, limit, marks)?,
            };
            match stop {
                // A block ended: the next one, or the end of the stream.
                Stop::End if self.last => {
                    self.state = State::Done;
                    marks.push(Mark::End { bit: self.bit, pos: self.pos() });
                    break Stop::End;
                }
                Stop::End => self.state = State::Header,
                other => break other,
            }
            if self.window.at >= limit {
                break Stop::Budget;
            }
        };
        Ok((stop, start))
    }

    /// The bytes decoded since `start` (as returned by [`Inflate::run`]).
    pub(super) fn output(&self, start: usize) -> &[u8] {
        &self.window.buf[start..self.window.at]
    }

    /// The bytes of a stored block, as far as the input and the budget go.
    fn stored(&mut self, input: Input<'_>, left: u32, limit: usize) -> Stop {
        let from = (self.bit / 8 - input.base) as usize;
        let available = input.bytes.len().saturating_sub(from);
        let n = (left as usize).min(available).min(limit.saturating_sub(self.window.at));
        let at = self.window.at;
        self.window.buf[at..at + n].copy_from_slice(&input.bytes[from..from + n]);
        self.window.at += n;
        self.bit += 8 * n as u64;
        let left = left - n as u32;
        self.state = State::Stored { left };
        match left {
            0 => Stop::End,
            _ if n == available => Stop::Input,
            _ => Stop::Budget,
        }
    }

    /// Reads a block header whole, or nothing if the input ends within it: `false`.
    fn header(&mut self, input: Input<'_>, marks: &mut Vec<Mark>) -> io::Result<bool> {
        let mut bits = Bits { input, bit: self.bit };
        let Some(head) = bits.take(3) else { return Ok(false) };
        let (last, kind) = (head & 1 == 1, head >> 1);
        let pos = self.pos();
        match kind {
            0 => {
                let data = bits.bit.div_ceil(8);
                bits.bit = data * 8;
                let (Some(len), Some(nlen)) = (bits.take(16), bits.take(16)) else { return Ok(false) };
                if len != !nlen & 0xffff {
                    return Err(corrupt("invalid stored block lengths"));
                }
                marks.push(Mark::Stored { bit: self.bit, data: data + 4, len, pos });
                self.state = State::Stored { left: len };
            }
            1 | 2 => {
                let tables = match kind {
                    1 => Tables::fixed(),
                    _ => match dynamic_tables(&mut bits)? {
                        Some(tables) => Arc::new(tables),
                        None => return Ok(false),
                    },
                };
                marks.push(Mark::Header { bit: self.bit, pos });
                marks.push(Mark::Symbols { bit: bits.bit, pos, tables: Arc::clone(&tables) });
                self.tables = tables;
                self.state = State::Codes;
            }
            _ => return Err(corrupt("invalid block type")),
        }
        self.last = last;
        self.bit = bits.bit;
        Ok(true)
    }
}

impl Window {
    /// Makes room for `need` more bytes, keeping the last [`WINDOW`]: returns where the
    /// next byte goes.
    fn make_room(&mut self, need: usize) -> usize {
        if self.at + need > self.buf.len() && self.at > WINDOW {
            let keep = self.at - WINDOW;
            self.buf.copy_within(keep..self.at, 0);
            self.origin += keep as u64;
            self.at = WINDOW;
        }
        self.at
    }
}

/// Reads bits at an absolute position, refusing to read past the input.
struct Bits<'a> {
    input: Input<'a>,
    bit: u64,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Option<u32> {
        if self.bit + u64::from(n) > self.input.end_bit() {
            return None;
        }
        let value = self.input.peek(self.bit) as u32 & ((1u64 << n) - 1) as u32;
        self.bit += u64::from(n);
        Some(value)
    }

    /// The next symbol of a code-length code.
    fn symbol(&mut self, table: &huffman::Table<128>) -> Option<u32> {
        let entry = table.lookup(self.input.peek(self.bit));
        let n = huffman::bits(entry);
        let available = self.input.end_bit() - self.bit;
        (u64::from(n) <= available && huffman::kind(entry) != huffman::INVALID).then(|| {
            self.bit += u64::from(n);
            huffman::value(entry)
        })
    }
}

/// The order code-length code lengths are sent in (RFC 1951 §3.2.7).
const CODE_LENGTH_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// A dynamic block's codes, or `None` if the input ends within its header.
fn dynamic_tables(bits: &mut Bits<'_>) -> io::Result<Option<Tables>> {
    let (Some(hlit), Some(hdist), Some(hclen)) = (bits.take(5), bits.take(5), bits.take(4)) else {
        return Ok(None);
    };
    let (nlen, ndist, ncode) = (hlit as usize + 257, hdist as usize + 1, hclen as usize + 4);
    if nlen > 286 || ndist > 30 {
        return Err(corrupt("too many length or distance symbols"));
    }
    let mut code_lengths = [0u8; 19];
    for &symbol in &CODE_LENGTH_ORDER[..ncode] {
        let Some(len) = bits.take(3) else { return Ok(None) };
        code_lengths[symbol] = len as u8;
    }
    let table = huffman::code_length_table(&code_lengths).map_err(corrupt)?;
    let mut lengths = [0u8; 286 + 30];
    let mut n = 0;
    while n < nlen + ndist {
        let Some(symbol) = bits.symbol(&table) else {
            // An invalid code with the bits all there cannot happen: the code is complete.
            return Ok(None);
        };
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let Some(extra) = bits.take(2) else { return Ok(None) };
                let previous =
                    n.checked_sub(1).map(|p| lengths[p]).ok_or_else(|| corrupt("invalid bit length repeat"))?;
                (previous, 3 + extra as usize)
            }
            17 => match bits.take(3) {
                Some(extra) => (0, 3 + extra as usize),
                None => return Ok(None),
            },
            _ => match bits.take(7) {
                Some(extra) => (0, 11 + extra as usize),
                None => return Ok(None),
            },
        };
        if n + repeat > nlen + ndist {
            return Err(corrupt("invalid bit length repeat"));
        }
        lengths[n..n + repeat].fill(value);
        n += repeat;
    }
    if lengths[256] == 0 {
        return Err(corrupt("invalid code -- missing end-of-block"));
    }
    debug_assert!(u32::from(*lengths.iter().max().unwrap_or(&0)) <= MAX_CODE_BITS);
    Tables::new(&lengths[..nlen], &lengths[nlen..nlen + ndist]).map(Some).map_err(corrupt)
}

#[cfg(test)]
pub(super) mod tests;
