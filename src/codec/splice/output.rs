//! What the splice writes: the deflate bit stream (the upstream's bits, mostly whole
//! bytes shared with its chunks, and the few bits of the splice's own: a cleared BFINAL
//! bit, an end-of-block code, an empty block; packed LSB first, RFC 1951 §3.1.1), and after
//! the cut the rest of the page, encoded by a raw deflater primed with the 32 KiB before
//! it, flushed only where the stream needs it (the upstream pauses, the page ends), then
//! the member's trailer.

use std::collections::VecDeque;
use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress, Status};

use super::super::FLATE_LEVEL;
use super::super::scan::Check;

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

/// Encodes the page from the cut on.
pub(super) struct Encoding {
    deflate: Compress,
    check: Check,
    /// The member's check value and length so far, for its trailer.
    value: u32,
    size: u64,
    /// Bytes taken since the last flush.
    unflushed: bool,
}

impl Encoding {
    /// A deflater that continues a member whose last decoded bytes are `dictionary`,
    /// whose check value so far is `value` over `size` bytes.
    pub(super) fn new(dictionary: &[u8], check: Check, value: u32, size: u64) -> io::Result<Encoding> {
        let mut deflate = Compress::new(Compression::new(FLATE_LEVEL), false);
        if !dictionary.is_empty() {
            deflate.set_dictionary(dictionary).map_err(io::Error::other)?;
        }
        Ok(Encoding { deflate, check, value, size, unflushed: false })
    }

    /// Encodes page bytes already counted in the check value.
    pub(super) fn encode(&mut self, bytes: &[u8], out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.unflushed |= !bytes.is_empty();
        self.run(bytes, FlushCompress::None, out)
    }

    /// Encodes the page's next bytes.
    pub(super) fn push(&mut self, bytes: &[u8], out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.value = self.check.update(self.value, bytes);
        self.size += bytes.len() as u64;
        self.unflushed |= !bytes.is_empty();
        self.run(bytes, FlushCompress::None, out)
    }

    /// Makes everything taken so far decodable by the client (a sync flush).
    pub(super) fn flush(&mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        if !self.unflushed {
            return Ok(());
        }
        self.unflushed = false;
        self.run(&[], FlushCompress::Sync, out)
    }

    /// Ends the deflate stream and writes the member's trailer.
    pub(super) fn finish(mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.run(&[], FlushCompress::Finish, out)?;
        let trailer: Vec<u8> = match self.check {
            Check::Crc32 => [self.value.to_le_bytes(), (self.size as u32).to_le_bytes()].concat(),
            Check::Adler32 => self.value.to_be_bytes().to_vec(),
        };
        out.push_back(Bytes::from(trailer));
        Ok(())
    }

    /// Runs the deflater over `input` with `flush`, handing on what it writes.
    fn run(&mut self, mut input: &[u8], flush: FlushCompress, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(input.len() / 2 + 256);
        loop {
            if buf.capacity() - buf.len() < 64 {
                buf.reserve(buf.capacity().max(256));
            }
            let before = self.deflate.total_in();
            let status = self.deflate.compress_vec(input, &mut buf, flush).map_err(io::Error::other)?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            let full = buf.len() == buf.capacity();
            match (flush, status) {
                (FlushCompress::Finish, Status::StreamEnd) => break,
                (FlushCompress::Finish, _) => continue,
                _ if input.is_empty() && !full => break,
                _ => {}
            }
        }
        if !buf.is_empty() {
            out.push_back(Bytes::from(buf));
        }
        Ok(())
    }
}
