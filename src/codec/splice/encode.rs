//! The rest of a spliced page, after the cut: a raw deflater primed with the 32 KiB of
//! the page before it, flushed only where the stream needs it (the upstream pauses, the
//! page ends), then the member's trailer.

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

use super::super::FLATE_LEVEL;
use super::super::scan::Check;

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
    pub(super) fn finish(mut self: Box<Self>, out: &mut VecDeque<Bytes>) -> io::Result<()> {
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
