//! A gzip (RFC 1952), zlib (RFC 1950) or raw deflate body decoded by [`inflate`], step by
//! bounded step, with its headers read, its check values verified as zlib verifies them,
//! and marks of where everything is for the splice. The compressed bytes it has read are
//! held, contiguous, until the splice hands them on or lets them go.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use super::inflate::{Inflate, Input, Mark, Stop, corrupt};

/// The wrapper around the deflate data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wrap {
    Gzip,
    /// "deflate": zlib-wrapped, or raw from servers that get it wrong (the first two bytes
    /// tell).
    Deflate,
}

/// Where in the body the scan is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Deflate, until two bytes show whether it is zlib-wrapped.
    Sniff,
    Gzip(GzipHeader),
    Zlib,
    Deflate,
    /// A member's trailer of `len` bytes.
    Trailer {
        len: usize,
    },
    /// After a gzip member: another one, or the end.
    Between,
    /// Whatever comes after the end, ignored as browsers do.
    Ignoring,
}

/// What one step decoded, and the member it belongs to.
pub(super) struct Decoded {
    pub(super) bytes: Bytes,
    /// The decoded position where the bytes' member began, and its check value before them.
    pub(super) member_pos: u64,
    pub(super) check_before: u32,
}

/// The running check value of a member's decoded bytes: gzip's, or zlib's (which raw
/// deflate gets too, when the splice sends it on zlib-wrapped).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    Crc32,
    Adler32,
}

impl Check {
    pub(super) fn initial(self) -> u32 {
        if self == Check::Adler32 { 1 } else { 0 }
    }

    pub(super) fn update(self, value: u32, bytes: &[u8]) -> u32 {
        match self {
            Check::Crc32 => zlib_rs::crc32::crc32(value, bytes),
            Check::Adler32 => zlib_rs::adler32::adler32(value, bytes),
        }
    }
}

/// Decodes a compressed body, keeping marks of its structure.
pub(super) struct Scan {
    phase: Phase,
    inflate: Inflate,
    /// The compressed bytes from stream byte `base` on, as far as they have come.
    held: BytesMut,
    base: u64,
    /// The next byte a wrapper phase reads.
    byte: u64,
    check: Check,
    value: u32,
    /// Where the current member's decoded bytes began.
    member_pos: u64,
    marks: Vec<Mark>,
    /// Keep the bytes read until [`Scan::release`] (the splice), or let them go at once.
    keep: bool,
    seen_input: bool,
    step: usize,
    /// Raw deflate: no wrapper, no trailer to check.
    raw: bool,
}

impl Scan {
    /// A scan of a `wrap` body, `step` decoded bytes at most a step.
    pub(super) fn new(wrap: Wrap, step: usize, keep: bool) -> Scan {
        let (phase, check) = match wrap {
            Wrap::Gzip => (Phase::Gzip(GzipHeader::default()), Check::Crc32),
            Wrap::Deflate => (Phase::Sniff, Check::Adler32),
        };
        Scan {
            phase,
            inflate: Inflate::new(0, 0, step),
            held: BytesMut::new(),
            base: 0,
            byte: 0,
            check,
            value: check.initial(),
            member_pos: 0,
            marks: Vec::new(),
            keep,
            seen_input: false,
            step,
            raw: false,
        }
    }

    /// The check of this body's members.
    pub(super) fn check(&self) -> Check {
        self.check
    }

    /// The current member's check value over what has been decoded of it.
    pub(super) fn value(&self) -> u32 {
        self.value
    }

    /// Whether the body is raw deflate (known once its first two bytes are in).
    pub(super) fn is_raw(&self) -> bool {
        self.raw
    }

    /// Decodes from `input` onwards: how many of its bytes were taken (the rest must come
    /// again) and what was decoded, from one member and at most a step of it.
    pub(super) fn step(&mut self, input: &[u8]) -> io::Result<(usize, Decoded)> {
        self.seen_input |= !input.is_empty();
        let decoded = |scan: &Scan, bytes| Decoded { bytes, member_pos: scan.member_pos, check_before: scan.value };
        if self.phase == Phase::Ignoring {
            return Ok((input.len(), decoded(self, Bytes::new())));
        }
        let end_before = self.base + self.held.len() as u64;
        self.held.extend_from_slice(input);
        let mut out = decoded(self, Bytes::new());
        let stop = loop {
            let Some(next) = self.wrapper()? else { break Stop::Input };
            if next == Phase::Ignoring || !out.bytes.is_empty() {
                break Stop::End;
            }
            if next != Phase::Deflate {
                continue;
            }
            let input = Input { bytes: &self.held, base: self.base };
            let (stop, start) = self.inflate.run(input, self.step, &mut self.marks)?;
            out = decoded(self, Bytes::copy_from_slice(self.inflate.output(start)));
            self.value = self.check.update(self.value, &out.bytes);
            if stop != Stop::End {
                break stop;
            }
            self.member_ended();
        };
        // Bytes past where the scan stopped (for the budget, or at a member's end) come again.
        let read_to = self.read_bit().div_ceil(8).max(end_before);
        let taken = match stop {
            Stop::Input => input.len(),
            _ => (read_to - end_before) as usize,
        };
        self.held.truncate((end_before + taken as u64 - self.base) as usize);
        if !self.keep {
            let read = self.read_bit() / 8;
            self.release(read, read);
        }
        Ok((taken, out))
    }

    /// The stream bit the scan has read up to.
    pub(super) fn read_bit(&self) -> u64 {
        match self.phase {
            Phase::Deflate => self.inflate.bit(),
            _ => self.byte * 8,
        }
    }

    /// The compressed bytes from `byte` on, as far as they have come (`byte` must not be
    /// before what is still held).
    pub(super) fn held(&self) -> Input<'_> {
        Input { bytes: &self.held, base: self.base }
    }

    /// Lets the bytes before stream byte `to` go, handing back those from byte `from` on.
    pub(super) fn release(&mut self, from: u64, to: u64) -> Bytes {
        let to = to.saturating_sub(self.base).min(self.held.len() as u64) as usize;
        let from = from.saturating_sub(self.base).min(to as u64) as usize;
        self.base += to as u64;
        let mut front = self.held.split_to(to);
        front.advance(from);
        front.freeze()
    }

    /// Stops keeping the bytes read: the splice needs no more of them.
    pub(super) fn let_go(&mut self) {
        self.keep = false;
        let read = self.read_bit() / 8;
        self.release(read, read);
    }

    /// The marks made since the last call.
    pub(super) fn take_marks(&mut self) -> std::vec::Drain<'_, Mark> {
        self.marks.drain(..)
    }

    /// The end of the input: an error unless the body ended properly (a cut page must not
    /// look complete).
    pub(super) fn finish(&self) -> io::Result<()> {
        let ended = matches!(self.phase, Phase::Between | Phase::Ignoring);
        if ended || !self.seen_input { Ok(()) } else { Err(corrupt("truncated compressed stream")) }
    }

    /// The member's deflate data has ended: its trailer comes next, if it has one.
    fn member_ended(&mut self) {
        self.byte = self.inflate.bit().div_ceil(8);
        let pos = self.inflate.pos();
        self.phase = match self.check {
            _ if self.raw => Phase::Ignoring,
            Check::Crc32 => Phase::Trailer { len: 8 },
            Check::Adler32 => Phase::Trailer { len: 4 },
        };
        self.marks.push(match self.phase {
            Phase::Trailer { len } => Mark::Trailer { byte: self.byte, len: len as u64, pos },
            _ => Mark::Ignored { byte: self.byte, pos },
        });
    }

    /// The bytes at the wrapper's read position, as many as have come.
    fn wrapper_bytes(&self) -> &[u8] {
        self.held.get((self.byte - self.base) as usize..).unwrap_or_default()
    }

    /// Reads wrapper bytes where the phase is the wrapper's: the phase it leads to, or
    /// `None` if more input is needed.
    fn wrapper(&mut self) -> io::Result<Option<Phase>> {
        if matches!(self.phase, Phase::Deflate | Phase::Ignoring) {
            return Ok(Some(self.phase));
        }
        let bytes = self.wrapper_bytes();
        let pos = self.inflate.pos();
        let next = match self.phase {
            Phase::Deflate | Phase::Ignoring => self.phase,
            Phase::Sniff => match bytes {
                [cmf, flg, ..] if is_zlib_header(*cmf, *flg) => Phase::Zlib,
                [_, _, ..] => {
                    self.raw = true;
                    self.start_deflate(0);
                    Phase::Deflate
                }
                _ => return Ok(None),
            },
            Phase::Zlib => {
                let [_, flg, ..] = *bytes else { return Ok(None) };
                if flg & 0x20 != 0 {
                    return Err(corrupt("a preset dictionary is needed"));
                }
                self.start_deflate(2);
                Phase::Deflate
            }
            Phase::Gzip(mut header) => {
                let (used, done) = header.read(bytes)?;
                self.byte += used as u64;
                self.phase = Phase::Gzip(header);
                if !done {
                    return Ok(None);
                }
                self.start_deflate(self.byte);
                Phase::Deflate
            }
            Phase::Trailer { len } => {
                let Some(trailer) = bytes.get(..len) else { return Ok(None) };
                self.verify(trailer, pos)?;
                self.byte += len as u64;
                self.after_trailer(pos)
            }
            Phase::Between => match bytes {
                [0x1f, 0x8b, ..] => {
                    self.marks.push(Mark::Wrapper { bit: self.byte * 8, pos });
                    self.member_pos = pos;
                    self.value = self.check.initial();
                    Phase::Gzip(GzipHeader::default())
                }
                [] | [0x1f] => return Ok(None),
                _ => self.ignore_rest(pos),
            },
        };
        self.phase = next;
        Ok(Some(next))
    }

    /// Starts a member's deflate data at stream byte `byte`.
    fn start_deflate(&mut self, byte: u64) {
        self.marks.push(Mark::Begin { bit: byte * 8, pos: self.inflate.pos() });
        self.inflate.restart(byte * 8);
    }

    fn after_trailer(&mut self, pos: u64) -> Phase {
        match self.check {
            Check::Crc32 => Phase::Between,
            _ => self.ignore_rest(pos),
        }
    }

    fn ignore_rest(&mut self, pos: u64) -> Phase {
        self.marks.push(Mark::Ignored { byte: self.byte, pos });
        Phase::Ignoring
    }

    /// Checks a member's trailer against what was decoded (zlib's words on a mismatch).
    fn verify(&self, trailer: &[u8], pos: u64) -> io::Result<()> {
        let word = |bytes: &[u8]| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let (check, length) = match self.check {
            Check::Crc32 => (word(&trailer[..4]), Some(word(&trailer[4..8]))),
            _ => (u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]), None),
        };
        if check != self.value {
            return Err(corrupt("incorrect data check"));
        }
        if length.is_some_and(|length| length != (pos - self.member_pos) as u32) {
            return Err(corrupt("incorrect length check"));
        }
        Ok(())
    }
}

/// RFC 1950: compression method 8, window ≤ 32K, and a header checksum divisible by 31.
pub(super) fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// A gzip member's header (RFC 1952 §2.3.1), read as its bytes come: the fixed ten bytes,
/// then the optional extra field, name, comment and header CRC.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct GzipHeader {
    fixed: [u8; 10],
    /// Bytes of the fixed part read, then of the current field.
    have: usize,
    flags: u8,
    field: Field,
    /// The CRC-32 of the header so far, for FHCRC.
    crc: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Field {
    #[default]
    Fixed,
    ExtraLength([u8; 2]),
    Extra(usize),
    Name,
    Comment,
    HeaderCrc([u8; 2]),
    Done,
}

/// The longest file name or comment a gzip header may have here: the header is held until
/// it ends (zlib takes any; no server sends more than a path).
const MAX_TEXT_FIELD: usize = 64 * 1024;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

impl GzipHeader {
    /// Reads from `bytes`: how many it took, and whether the header is complete.
    fn read(&mut self, bytes: &[u8]) -> io::Result<(usize, bool)> {
        let mut used = 0;
        while self.field != Field::Done {
            let Some(&byte) = bytes.get(used) else { return Ok((used, false)) };
            used += 1;
            if !matches!(self.field, Field::HeaderCrc(_)) {
                self.crc = zlib_rs::crc32::crc32(self.crc, &[byte]);
            }
            self.field = self.next(byte)?;
        }
        Ok((used, true))
    }

    /// The field after `byte` of the current one.
    fn next(&mut self, byte: u8) -> io::Result<Field> {
        Ok(match self.field {
            Field::Fixed => {
                self.fixed[self.have] = byte;
                self.have += 1;
                if self.have < 10 {
                    return Ok(Field::Fixed);
                }
                if self.fixed[..2] != [0x1f, 0x8b] {
                    return Err(corrupt("incorrect header check"));
                }
                if self.fixed[2] != 8 {
                    return Err(corrupt("unknown compression method"));
                }
                self.flags = self.fixed[3];
                if self.flags & 0xe0 != 0 {
                    return Err(corrupt("unknown header flags set"));
                }
                self.after(FEXTRA)
            }
            Field::ExtraLength(_) if self.have == 0 => {
                self.have = 1;
                Field::ExtraLength([byte, 0])
            }
            Field::ExtraLength([_, low]) => match usize::from(u16::from_le_bytes([low, byte])) {
                0 => self.after(FNAME),
                len => Field::Extra(len),
            },
            Field::Extra(1) => self.after(FNAME),
            Field::Extra(left) => Field::Extra(left - 1),
            Field::Name if byte == 0 => self.after(FCOMMENT),
            Field::Comment if byte == 0 => self.after(FHCRC),
            _ if self.have >= MAX_TEXT_FIELD => return Err(corrupt("gzip header name or comment too long")),
            field @ (Field::Name | Field::Comment) => {
                self.have += 1;
                field
            }
            Field::HeaderCrc([_, _]) if self.have == 0 => {
                self.have = 1;
                Field::HeaderCrc([byte, 0])
            }
            Field::HeaderCrc([low, _]) => {
                if u16::from_le_bytes([low, byte]) != self.crc as u16 {
                    return Err(corrupt("header crc mismatch"));
                }
                Field::Done
            }
            Field::Done => Field::Done,
        })
    }

    /// The first optional field from `flag` on that the header has.
    fn after(&mut self, flag: u8) -> Field {
        self.have = 0;
        [FEXTRA, FNAME, FCOMMENT, FHCRC].into_iter().skip_while(|&f| f != flag).find(|&f| self.flags & f != 0).map_or(
            Field::Done,
            |f| match f {
                FEXTRA => Field::ExtraLength([0, 0]),
                FNAME => Field::Name,
                FCOMMENT => Field::Comment,
                _ => Field::HeaderCrc([0, 0]),
            },
        )
    }
}
