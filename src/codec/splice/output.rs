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
use super::super::inflate::WINDOW;
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

    /// A block of `bytes` as literals with the fixed codes (RFC 1951 §3.2.6), `last` or
    /// not: codes 8 bits long for bytes up to 143, 9 bits after, then end-of-block's 7
    /// zero bits. Huffman codes go most significant bit first, hence the reversal.
    pub(super) fn literal_block(&mut self, bytes: &[u8], last: bool) {
        self.bits(u64::from(last) | 0b01 << 1, 3);
        for &byte in bytes {
            let (code, len) = match byte {
                0..=143 => (0x30 + u32::from(byte), 8),
                _ => (0x190 + u32::from(byte) - 144, 9),
            };
            self.bits(u64::from(code.reverse_bits() >> (32 - len)), len);
        }
        self.bits(0, 7);
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

/// Up to this many bytes after the cut are written as literals with the fixed codes; past
/// it, the rest is deflated. A deflater primed with 32 KiB costs about a million
/// instructions to set up (half a megabyte of tables zeroed, the dictionary hashed): ten
/// times the rest of a spliced page when what follows the cut is the widget and
/// `</body></html>`. Literals cost 8-9 bits a byte, so this bounds what the shortcut can
/// add to the page sent (about 300 bytes here, the widget's own bytes aside).
const LITERAL_LIMIT: usize = 512;

/// Encodes the page from the cut on.
pub(super) struct Encoding {
    mode: Mode,
    check: Check,
    /// The member's check value and length so far, for its trailer.
    value: u32,
    size: u64,
    /// Bytes taken since the last flush.
    unflushed: bool,
}

enum Mode {
    /// No deflater yet: the page's last [`WINDOW`] bytes before what is held, and the
    /// bytes taken and not written yet (at most [`LITERAL_LIMIT`]).
    Literal {
        dictionary: Vec<u8>,
        held: Vec<u8>,
    },
    Deflate(Box<Compress>),
}

impl Encoding {
    /// An encoder that continues a member whose last decoded bytes are `dictionary`,
    /// whose check value so far is `value` over `size` bytes.
    pub(super) fn new(dictionary: Vec<u8>, check: Check, value: u32, size: u64) -> Encoding {
        let mode = Mode::Literal { dictionary, held: Vec::new() };
        Encoding { mode, check, value, size, unflushed: false }
    }

    /// Encodes page bytes already counted in the check value.
    pub(super) fn encode(&mut self, bytes: &[u8], out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.take(bytes, out)
    }

    /// Encodes the page's next bytes.
    pub(super) fn push(&mut self, bytes: &[u8], out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.value = self.check.update(self.value, bytes);
        self.size += bytes.len() as u64;
        self.take(bytes, out)
    }

    fn take(&mut self, bytes: &[u8], out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.unflushed |= !bytes.is_empty();
        match &mut self.mode {
            Mode::Deflate(deflate) => run(deflate, bytes, FlushCompress::None, out),
            Mode::Literal { dictionary, held } => {
                held.extend_from_slice(bytes);
                if held.len() <= LITERAL_LIMIT {
                    return Ok(());
                }
                // The stream is at a byte boundary here: the cut and every literal
                // flush leave it so.
                let mut deflate = Box::new(Compress::new(Compression::new(FLATE_LEVEL), false));
                if !dictionary.is_empty() {
                    deflate.set_dictionary(dictionary).map_err(io::Error::other)?;
                }
                run(&mut deflate, held, FlushCompress::None, out)?;
                self.mode = Mode::Deflate(deflate);
                Ok(())
            }
        }
    }

    /// Makes everything taken so far decodable by the client (a sync flush, or the held
    /// literals in a block of their own and an empty stored block to align the stream).
    pub(super) fn flush(&mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        if !std::mem::take(&mut self.unflushed) {
            return Ok(());
        }
        match &mut self.mode {
            Mode::Deflate(deflate) => run(deflate, &[], FlushCompress::Sync, out),
            Mode::Literal { dictionary, held } => {
                let mut bits = BitWriter::default();
                bits.literal_block(held, false);
                bits.empty_stored_block();
                bits.hand_on(out);
                dictionary.append(held);
                let excess = dictionary.len().saturating_sub(WINDOW);
                dictionary.drain(..excess);
                Ok(())
            }
        }
    }

    /// Ends the deflate stream and writes the member's trailer.
    pub(super) fn finish(mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        match &mut self.mode {
            Mode::Deflate(deflate) => run(deflate, &[], FlushCompress::Finish, out)?,
            Mode::Literal { held, .. } => {
                let mut bits = BitWriter::default();
                bits.literal_block(held, true);
                bits.align();
                bits.hand_on(out);
            }
        }
        let trailer: Vec<u8> = match self.check {
            Check::Crc32 => [self.value.to_le_bytes(), (self.size as u32).to_le_bytes()].concat(),
            Check::Adler32 => self.value.to_be_bytes().to_vec(),
        };
        out.push_back(Bytes::from(trailer));
        Ok(())
    }
}

/// Runs the deflater over `input` with `flush`, handing on what it writes.
fn run(deflate: &mut Compress, mut input: &[u8], flush: FlushCompress, out: &mut VecDeque<Bytes>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(input.len() / 2 + 256);
    loop {
        if buf.capacity() - buf.len() < 64 {
            buf.reserve(buf.capacity().max(256));
        }
        let before = deflate.total_in();
        let status = deflate.compress_vec(input, &mut buf, flush).map_err(io::Error::other)?;
        input = &input[(deflate.total_in() - before) as usize..];
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
