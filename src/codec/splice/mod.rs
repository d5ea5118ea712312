//! gzip and deflate pages spliced rather than encoded again: the client gets the
//! upstream's own compressed bits for as long as the rewritten page is the upstream's
//! page, byte for byte, and only the rest is encoded.
//!
//! The page is decoded by [`Scan`], which marks where every block and, every few KiB, a
//! symbol boundary is. The rewritten page is compared with the decoded one as it comes
//! out; while they are the same, the upstream's bits are handed on up to the last mark
//! the comparison has passed (up to the exact symbol boundary when the upstream pauses).
//! At the first byte that differs (the widget, usually just before `</body>`), the
//! upstream's block is ended at the symbol boundary before it with that block's own
//! end-of-block code, an empty stored block aligns the stream, and a raw deflater primed
//! with the last 32 KiB of the page encodes the rest (RFC 1951; the technique of zlib's
//! `gzappend`, within a block rather than at a block's start). Every block the upstream
//! marked final is handed on with its BFINAL bit cleared and the stream ends with a final
//! block of the splice's own; the trailer's CRC-32 (or Adler-32) and length are those of
//! the page as sent. Raw deflate (sent as "deflate" by servers that get it wrong) goes on
//! zlib-wrapped, as it did when it was encoded again.

mod output;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;

use super::DECODE_STEP;
use super::inflate::{Mark, WINDOW, boundary_before};
use super::scan::{Check, Scan, Wrap};
use output::{BitWriter, Encoding};

/// Decoded bytes of the page, kept to compare the rewritten page with and to prime the
/// deflater with.
struct Chunk {
    bytes: Bytes,
    /// The decoded position of the first byte.
    start: u64,
    /// Where its member began, and the member's check value before it.
    member_pos: u64,
    check_before: u32,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

/// A compressed page's decoder and encoder in one: see the module's doc.
pub(crate) struct Splice {
    scan: Scan,
    /// The marks of the stream ahead of the output, in stream order.
    marks: VecDeque<Mark>,
    /// The segment the output has reached: a mark moved up to where the output is.
    here: Mark,
    writer: BitWriter,
    /// Decoded bytes from [`WINDOW`] before `here` on.
    history: VecDeque<Chunk>,
    /// How much of the rewritten page is the same as the decoded page.
    same: u64,
    /// How much has been decoded.
    decoded: u64,
    /// Where the member `here` is in began.
    member_pos: u64,
    /// After the cut: the rest of the page, encoded.
    encoding: Option<Box<Encoding>>,
    /// A zlib header has gone before a raw deflate stream.
    wrapped_raw: bool,
}

impl Splice {
    pub(crate) fn new(wrap: Wrap) -> Splice {
        Splice {
            scan: Scan::new(wrap, DECODE_STEP, true),
            marks: VecDeque::new(),
            here: Mark::Wrapper { bit: 0, pos: 0 },
            writer: BitWriter::default(),
            history: VecDeque::new(),
            same: 0,
            decoded: 0,
            member_pos: 0,
            encoding: None,
            wrapped_raw: false,
        }
    }

    /// Decodes from `input` on (see [`invent_rewrite::Decode::step`]).
    fn step(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)> {
        let (taken, decoded) = self.scan.step(input)?;
        if self.scan.is_raw() && !self.wrapped_raw {
            // A zlib header (deflate, 32 KiB window, default level) for the raw stream.
            self.writer.bytes(&[0x78, 0x9c]);
            self.wrapped_raw = true;
        }
        if self.encoding.is_some() {
            self.scan.take_marks().for_each(drop);
        } else {
            self.marks.extend(self.scan.take_marks());
            if !decoded.bytes.is_empty() {
                self.history.push_back(Chunk {
                    bytes: decoded.bytes.clone(),
                    start: self.decoded,
                    member_pos: decoded.member_pos,
                    check_before: decoded.check_before,
                });
            }
        }
        self.decoded += decoded.bytes.len() as u64;
        Ok((taken, decoded.bytes))
    }

    /// Takes the rewritten page's next bytes.
    fn push(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        for part in page {
            if let Some(encoding) = &mut self.encoding {
                encoding.push(&part, out)?;
                continue;
            }
            if let Some(differs) = self.compare(&part) {
                self.cut(&part[differs..], out)?;
            }
        }
        if self.encoding.is_none() {
            self.forward_to_mark(out)?;
        }
        Ok(())
    }

    /// Makes what the client has decodable up to what the page has produced: the
    /// upstream paused.
    fn flush(&mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        match &mut self.encoding {
            Some(encoding) => encoding.flush(out),
            None => {
                if let Some(target) = self.boundary_before(self.same)? {
                    self.forward_to(target, out);
                }
                self.writer.hand_on(out);
                Ok(())
            }
        }
    }

    /// The last of the page: the rest of the stream and its trailer.
    fn finish(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.push(page, out)?;
        if self.encoding.is_none() && self.same < self.decoded {
            // The rewritten page ends before the upstream's did.
            self.cut(&[], out)?;
        }
        match self.encoding.take() {
            Some(encoding) => (*encoding).finish(out),
            None => {
                self.forward_to_end(out);
                self.writer.hand_on(out);
                Ok(())
            }
        }
    }

    /// Compares `part`, the rewritten page's bytes from `same` on, with the decoded page:
    /// where in `part` the first byte that differs is (or the decoded page ends).
    fn compare(&mut self, part: &[u8]) -> Option<usize> {
        let mut done = 0;
        while done < part.len() {
            let Some(chunk) = self.history.iter().rev().find(|c| c.start <= self.same && self.same < c.end()) else {
                // The rewritten page goes on past what has been decoded.
                return Some(done);
            };
            let decoded = &chunk.bytes[(self.same - chunk.start) as usize..];
            let n = decoded.len().min(part.len() - done);
            let equal = if decoded[..n] == part[done..done + n] {
                n
            } else {
                decoded.iter().zip(&part[done..]).take_while(|(a, b)| a == b).count()
            };
            self.same += equal as u64;
            done += equal;
            if equal < n {
                return Some(done);
            }
        }
        None
    }

    /// The first byte of the rewritten page at `same` differs from the upstream's: ends
    /// the upstream's stream at the last symbol boundary before it and encodes the rest,
    /// `rest` first.
    fn cut(&mut self, rest: &[u8], out: &mut VecDeque<Bytes>) -> io::Result<()> {
        let at = self.same;
        let (index, target) = self.cut_point(at)?;
        let member_pos = self.member_pos_at(index);
        let ends_block = match self.candidate(index) {
            Some(Mark::Symbols { tables, .. }) => Some(tables.end_of_block),
            _ => None,
        };
        self.forward_to(target, out);
        if let Some((code, len)) = ends_block {
            self.writer.bits(u64::from(code), len);
        }
        if self.writer.offset() > 0 {
            self.writer.empty_stored_block();
        }
        self.writer.hand_on(out);
        let (from, to) = (target.1, at);
        let dictionary = self.decoded_bytes(from.saturating_sub(WINDOW as u64).max(member_pos), from);
        let check = self.scan.check();
        let value = self.check_at(at, member_pos, check);
        let mut encoding = Box::new(Encoding::new(dictionary, check, value, at - member_pos));
        encoding.encode(&self.decoded_bytes(from, to), out)?;
        encoding.push(rest, out)?;
        self.encoding = Some(encoding);
        self.marks.clear();
        self.history.clear();
        self.scan.let_go();
        Ok(())
    }

    /// The marks from `here` on: `here` is 0.
    fn candidate(&self, index: usize) -> Option<&Mark> {
        match index {
            0 => Some(&self.here),
            _ => self.marks.get(index - 1),
        }
    }

    /// Whether the stream can be cut at (or within) `mark`.
    fn cuttable(mark: &Mark) -> bool {
        matches!(mark, Mark::Symbols { .. } | Mark::Stored { .. } | Mark::End { .. } | Mark::Begin { .. })
    }

    /// The last place at or before decoded position `at` where the stream can be cut: the
    /// mark's index (as [`Splice::candidate`]'s) and the bit and decoded position there.
    fn cut_point(&self, at: u64) -> io::Result<(usize, (u64, u64))> {
        let (index, mark) = (0..=self.marks.len())
            .rev()
            .find_map(|i| self.candidate(i).filter(|m| Self::cuttable(m) && m.pos() <= at).map(|m| (i, m)))
            .ok_or_else(|| io::Error::other("the splice found no place to cut the stream"))?;
        let target = match mark {
            Mark::Symbols { bit, pos, tables } => boundary_before(self.scan.held(), (*bit, *pos), tables, at)?,
            Mark::Stored { data, len, pos, .. } => {
                let end = at.min(pos + u64::from(*len));
                (data * 8 + (end - pos) * 8, end)
            }
            mark => (mark.bit(), mark.pos()),
        };
        Ok((index, target))
    }

    /// The exact place to hand the upstream's bits on to, for a page the same up to `at`.
    fn boundary_before(&self, at: u64) -> io::Result<Option<(u64, u64)>> {
        if !self.marks.iter().chain([&self.here]).any(|m| Self::cuttable(m) && m.pos() <= at) {
            return Ok(None);
        }
        self.cut_point(at).map(|(_, target)| Some(target))
    }

    /// Where the member of candidate `index` began.
    fn member_pos_at(&self, index: usize) -> u64 {
        (0..=index)
            .rev()
            .find_map(|i| match self.candidate(i) {
                Some(Mark::Begin { pos, .. }) => Some(*pos),
                _ => None,
            })
            .unwrap_or(self.member_pos)
    }

    /// The member's check value over its decoded bytes up to decoded position `at`.
    fn check_at(&self, at: u64, member_pos: u64, check: Check) -> u32 {
        let chunk = self.history.iter().find(|c| c.member_pos == member_pos && c.start <= at && at <= c.end());
        match chunk {
            Some(chunk) => check.update(chunk.check_before, &chunk.bytes[..(at - chunk.start) as usize]),
            None => check.initial(),
        }
    }

    /// The decoded bytes from `from` to `to`, copied out of the history.
    fn decoded_bytes(&self, from: u64, to: u64) -> Vec<u8> {
        let mut bytes = Vec::with_capacity((to - from) as usize);
        for chunk in self.history.iter().filter(|c| c.end() > from && c.start < to) {
            let start = from.max(chunk.start) - chunk.start;
            let end = to.min(chunk.end()) - chunk.start;
            bytes.extend_from_slice(&chunk.bytes[start as usize..end as usize]);
        }
        bytes
    }

    /// Hands the upstream's bits on up to the last mark the page is the same up to.
    fn forward_to_mark(&mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        let same = self.same;
        let last = self.marks.iter().rposition(|m| Self::cuttable(m) && m.pos() <= same);
        if let Some(mark) = last.and_then(|i| self.marks.get(i)) {
            let target = (mark.bit(), mark.pos());
            self.forward_to(target, out);
        }
        self.writer.hand_on(out);
        Ok(())
    }

    /// Hands the upstream's bits on up to `target` (a stream bit and the decoded position
    /// there), passing the marks before it.
    fn forward_to(&mut self, (bit, pos): (u64, u64), out: &mut VecDeque<Bytes>) {
        loop {
            let next = self.marks.front().map(Mark::bit).filter(|&b| b < bit);
            self.copy_segment(next.unwrap_or(bit), out);
            if next.is_none() {
                break;
            }
            if let Some(mark) = self.marks.pop_front() {
                self.enter(mark);
            }
        }
        self.here = match self.marks.front() {
            // At the next mark's start: nothing of this segment is left to cut in.
            Some(next) if next.bit() == bit => Mark::Wrapper { bit, pos },
            _ => moved(&self.here, bit, pos),
        };
        let keep = self.here.pos().saturating_sub(WINDOW as u64);
        while self.history.front().is_some_and(|c| c.end() <= keep) {
            self.history.pop_front();
        }
    }

    /// Hands on all the rest of the stream, to its end.
    fn forward_to_end(&mut self, out: &mut VecDeque<Bytes>) {
        while let Some(mark) = self.marks.pop_front() {
            self.copy_segment(mark.bit(), out);
            self.enter(mark);
        }
        if let Mark::Trailer { byte, len, .. } = self.here {
            self.copy_upstream((byte * 8, (byte + len) * 8), out);
        }
        if self.wrapped_raw {
            self.writer.bytes(&self.scan.value().to_be_bytes());
        }
        debug_assert_eq!(self.writer.offset(), 0);
    }

    /// The output passes the start of `mark`.
    fn enter(&mut self, mark: Mark) {
        self.here = match mark {
            Mark::End { bit, pos } => {
                // The stream's own end goes out: no cut can come before it any more, and
                // the padding after the upstream's last block is dropped.
                self.writer.empty_final_block();
                Mark::Ignored { byte: bit.div_ceil(8), pos }
            }
            Mark::Begin { pos, .. } => {
                self.member_pos = pos;
                mark
            }
            _ => mark,
        };
    }

    /// Hands on the current segment's bits from where the output is up to bit `to`.
    fn copy_segment(&mut self, to: u64, out: &mut VecDeque<Bytes>) {
        let from = self.here.bit();
        if to <= from {
            return;
        }
        match self.here {
            Mark::Wrapper { .. } | Mark::Symbols { .. } | Mark::Trailer { .. } => self.copy_upstream((from, to), out),
            Mark::Header { .. } => {
                // BFINAL: never final, the splice ends the stream itself.
                self.writer.bits(0, 1);
                self.copy_upstream((from + 1, to), out);
            }
            Mark::Stored { data, .. } => {
                let from = from.max(data * 8);
                self.writer.stored_header(((to - from) / 8) as u16);
                self.copy_upstream((from, to), out);
            }
            // Padding after the final block, and what follows the body: dropped.
            Mark::Begin { .. } | Mark::End { .. } | Mark::Ignored { .. } => {}
        }
    }

    /// Hands on the upstream's bits `from..to` as they are, whole bytes shared with its
    /// chunks; the stream is at `from`'s offset past a byte boundary.
    fn copy_upstream(&mut self, (from, to): (u64, u64), out: &mut VecDeque<Bytes>) {
        let input = self.scan.held();
        let byte = |bit: u64| input.bytes.get((bit / 8).saturating_sub(input.base) as usize).copied().unwrap_or(0);
        let mut from = from;
        let offset = self.writer.offset();
        if offset > 0 {
            let n = (8 - offset).min((to - from) as u32);
            self.writer.bits(u64::from(byte(from) >> offset) & ((1 << n) - 1), n);
            from += u64::from(n);
        }
        if from >= to {
            return;
        }
        let tail = (to % 8) as u32;
        let last = u64::from(byte(to)) & ((1 << tail) - 1);
        if to / 8 > from / 8 {
            let whole = self.scan.release(from / 8, to / 8);
            self.writer.shared(whole, out);
        }
        if tail > 0 {
            self.writer.bits(last, tail);
        }
    }
}

/// `mark` moved up to bit `bit`, decoded position `pos` within its segment: the output
/// has reached there.
fn moved(mark: &Mark, bit: u64, pos: u64) -> Mark {
    match mark {
        Mark::Symbols { tables, .. } => Mark::Symbols { bit, pos, tables: std::sync::Arc::clone(tables) },
        Mark::Stored { bit: start, data, len, pos: at } if bit > *start => {
            let done = (bit - data * 8) / 8;
            Mark::Stored { bit, data: data + done, len: len - done as u32, pos: at + done }
        }
        // A header partly handed on: the rest of it as it is.
        Mark::Header { bit: start, .. } if bit > *start => Mark::Wrapper { bit, pos },
        Mark::Wrapper { .. } => Mark::Wrapper { bit, pos },
        Mark::Trailer { byte, len, .. } => Mark::Trailer { byte: bit / 8, len: len - (bit / 8 - byte), pos },
        // Nothing is handed on within these: the output stays at their start.
        other => other.clone(),
    }
}

impl invent_rewrite::Decode for Splice {
    fn step(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)> {
        Splice::step(self, input)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.scan.finish()
    }
}

impl invent_rewrite::Encode for Splice {
    fn push(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        Splice::push(self, page, out)
    }

    fn flush(&mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        Splice::flush(self, out)
    }

    fn finish(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        Splice::finish(self, page, out)
    }
}
