//! The spliced stream as it is written: the upstream's bits, mostly whole bytes shared
//! with its chunks, and the few bits of the splice's own (a cleared BFINAL bit, an
//! end-of-block code, an empty block), packed LSB first as deflate packs them
//! (RFC 1951 §3.1.1).

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

/// Pieces shorter than this are copied rather than handed on as a frame of their own.
const MIN_SHARED: usize = 64;

/// Writes a deflate bit stream into byte chunks.
#[derive(Default)]
pub(super) struct BitWriter {
    /// Whole bytes of the splice's own, not handed on yet.
    own: BytesMut,
    /// Bits not making a whole byte yet: `count` of them, the low ones.
    acc: u64,
    count: u32,
}

impl BitWriter {
    /// How many bits past a byte boundary the stream is.
    pub(super) fn offset(&self) -> u32 {
        self.count
    }

    /// Appends the `n` low bits of `value`.
    pub(super) fn bits(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 32 && value >> n == 0);
        self.acc |= value << self.count;
        self.count += n;
        while self.count >= 8 {
            self.own.put_u8(self.acc as u8);
            self.acc >>= 8;
            self.count -= 8;
        }
    }

    /// Pads with zero bits to the next byte boundary.
    pub(super) fn align(&mut self) {
        if self.count > 0 {
            self.bits(0, 8 - self.count);
        }
    }

    /// An empty stored block, not final (a sync flush's marker): it pads the stream to a
    /// byte boundary between blocks.
    pub(super) fn empty_stored_block(&mut self) {
        self.stored_header(0);
    }

    /// A stored block's header (not final) for `len` bytes of data that follow.
    pub(super) fn stored_header(&mut self, len: u16) {
        self.bits(0, 3);
        self.align();
        self.own.put_u16_le(len);
        self.own.put_u16_le(!len);
    }

    /// An empty final block (fixed codes, just the end-of-block code), then padding.
    pub(super) fn empty_final_block(&mut self) {
        self.bits(0b011, 3);
        self.bits(0, 7);
        self.align();
    }

    /// Whole bytes of its own, at a byte boundary.
    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.count, 0);
        self.own.extend_from_slice(bytes);
    }

    /// Whole bytes shared with the upstream's, at a byte boundary: handed on as they are.
    pub(super) fn shared(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        debug_assert_eq!(self.count, 0);
        if bytes.len() < MIN_SHARED {
            return self.own.extend_from_slice(&bytes);
        }
        self.hand_on(out);
        out.push_back(bytes);
    }

    /// Hands on the bytes of its own written so far.
    pub(super) fn hand_on(&mut self, out: &mut VecDeque<Bytes>) {
        if !self.own.is_empty() {
            out.push_back(self.own.split().freeze());
        }
    }
}
