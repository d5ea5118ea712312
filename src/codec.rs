//! Content codings of pages (gzip, deflate, br, zstd): push-style streaming decoders and
//! encoders, fed chunk by chunk from the body and flushed after each chunk so nothing
//! waits for the end of the page.

use std::io::{self, Write};

use bytes::Bytes;

/// gzip and deflate level: 1, nginx's `gzip_comp_level` default, fast enough to compress
/// every page on the fly.
const FLATE_LEVEL: u32 = 1;
/// Brotli quality for dynamic content; window 2^20.
const BROTLI_QUALITY: u32 = 4;
const BROTLI_WINDOW: u32 = 20;
const ZSTD_LEVEL: i32 = 3;
/// Internal buffer of the brotli writers.
const BROTLI_BUFFER: usize = 16 * 1024;

/// A content coding the proxy can decode and encode again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    /// "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2); raw deflate from servers that get it
    /// wrong is read too.
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    /// The coding a `Content-Encoding`/`Accept-Encoding` token names, if supported.
    pub(crate) fn from_token(token: &str) -> Option<Coding> {
        const TOKENS: [(&str, Coding); 5] = [
            ("gzip", Coding::Gzip),
            ("x-gzip", Coding::Gzip),
            ("deflate", Coding::Deflate),
            ("br", Coding::Brotli),
            ("zstd", Coding::Zstd),
        ];
        let token = token.trim();
        TOKENS.iter().find(|(name, _)| token.eq_ignore_ascii_case(name)).map(|(_, coding)| *coding)
    }
}

type Out = Vec<u8>;

/// At most this many decoded bytes come out of one decoding step, however much the input
/// expands: a small compressed body cannot make the proxy hold a huge decoded one.
pub(crate) const DECODE_STEP: usize = 64 * 1024;

type BrotliState = brotli_decompressor::BrotliState<
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
>;

enum DecoderKind {
    /// gzip (members may follow each other), zlib or raw deflate.
    Flate {
        inflate: flate2::Decompress,
        gzip: bool,
        ended: bool,
    },
    /// Deflate before its first two bytes show whether it is zlib-wrapped.
    DeflateStart(Vec<u8>),
    Brotli {
        state: Box<BrotliState>,
        ended: bool,
    },
    Zstd {
        decoder: Box<zstd::stream::raw::Decoder<'static>>,
        frame_done: bool,
    },
}

/// Decodes a page's body in bounded steps.
pub(crate) struct Decoder {
    kind: DecoderKind,
    seen_input: bool,
    scratch: Vec<u8>,
}

fn corrupt(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

impl Decoder {
    pub(crate) fn new(coding: Coding) -> io::Result<Decoder> {
        let kind = match coding {
            Coding::Gzip => DecoderKind::Flate { inflate: flate2::Decompress::new_gzip(15), gzip: true, ended: false },
            Coding::Deflate => DecoderKind::DeflateStart(Vec::new()),
            Coding::Brotli => {
                let alloc = brotli_decompressor::StandardAlloc::default;
                DecoderKind::Brotli { state: Box::new(BrotliState::new(alloc(), alloc(), alloc())), ended: false }
            }
            Coding::Zstd => {
                DecoderKind::Zstd { decoder: Box::new(zstd::stream::raw::Decoder::new()?), frame_done: false }
            }
        };
        Ok(Decoder { kind, seen_input: false, scratch: Vec::new() })
    }

    /// Decodes from the start of `input`: returns how many input bytes it took and at most
    /// [`DECODE_STEP`] decoded bytes. With empty `input` it hands out output it still
    /// holds. `(0, empty)` with input left would mean no progress: that is an error.
    pub(crate) fn step(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)> {
        self.seen_input |= !input.is_empty();
        if let DecoderKind::DeflateStart(start) = &mut self.kind {
            start.extend_from_slice(input);
            if start.len() < 2 {
                return Ok((input.len(), Bytes::new()));
            }
            let zlib = is_zlib_header(start);
            let start = std::mem::take(start);
            self.kind = DecoderKind::Flate { inflate: flate2::Decompress::new(zlib), gzip: false, ended: false };
            // The bytes kept back are decoded now; the caller's input counts as taken.
            let (_, out) = self.step_all(&start)?;
            return Ok((input.len(), out));
        }
        let (used, out) = self.step_once(input)?;
        if used == 0 && out.is_empty() && !input.is_empty() {
            return Err(corrupt("compressed input makes no progress"));
        }
        Ok((used, out))
    }

    /// Decodes all of a small `input` (the deflate start, at most a few bytes).
    fn step_all(&mut self, mut input: &[u8]) -> io::Result<(usize, Bytes)> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (used, piece) = self.step_once(input)?;
            if used == 0 && piece.is_empty() {
                break;
            }
            out.extend_from_slice(&piece);
            input = &input[used..];
        }
        Ok((0, Bytes::from(out)))
    }

    fn step_once(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)> {
        match &mut self.kind {
            DecoderKind::DeflateStart(_) => Ok((0, Bytes::new())),
            DecoderKind::Flate { inflate, gzip, ended } => {
                if *ended {
                    // Another gzip member may follow (RFC 1952 §2.2); anything else after
                    // the end is ignored, as browsers do.
                    if *gzip && input.starts_with(&[0x1f, 0x8b]) {
                        *inflate = flate2::Decompress::new_gzip(15);
                        *ended = false;
                    } else {
                        return Ok((input.len(), Bytes::new()));
                    }
                }
                let before = inflate.total_in();
                let mut out = Vec::with_capacity(DECODE_STEP);
                let status = inflate
                    .decompress_vec(input, &mut out, flate2::FlushDecompress::None)
                    .map_err(|e| corrupt(&e.to_string()))?;
                *ended = status == flate2::Status::StreamEnd;
                Ok(((inflate.total_in() - before) as usize, Bytes::from(out)))
            }
            DecoderKind::Brotli { state, ended } => {
                if *ended {
                    return Ok((input.len(), Bytes::new()));
                }
                self.scratch.resize(DECODE_STEP, 0);
                let (mut available_in, mut input_offset) = (input.len(), 0);
                let (mut available_out, mut output_offset, mut total_out) = (DECODE_STEP, 0, 0);
                let result = brotli_decompressor::BrotliDecompressStream(
                    &mut available_in,
                    &mut input_offset,
                    input,
                    &mut available_out,
                    &mut output_offset,
                    &mut self.scratch,
                    &mut total_out,
                    state,
                );
                match result {
                    brotli_decompressor::BrotliResult::ResultFailure => return Err(corrupt("corrupt brotli stream")),
                    brotli_decompressor::BrotliResult::ResultSuccess => *ended = true,
                    _ => {}
                }
                Ok((input_offset, Bytes::copy_from_slice(&self.scratch[..output_offset])))
            }
            DecoderKind::Zstd { decoder, frame_done } => {
                use zstd::stream::raw::Operation;
                self.scratch.resize(DECODE_STEP, 0);
                let status = decoder.run_on_buffers(input, &mut self.scratch)?;
                // `remaining == 0` marks the end of a frame; it stays so until new input
                // starts another one.
                *frame_done = status.remaining == 0 || (*frame_done && status.bytes_read == 0);
                Ok((status.bytes_read, Bytes::copy_from_slice(&self.scratch[..status.bytes_written])))
            }
        }
    }

    /// The end of the input: an error unless the compressed stream ended properly (a cut
    /// page must not look complete).
    pub(crate) fn finish(self) -> io::Result<()> {
        let complete = match &self.kind {
            DecoderKind::DeflateStart(start) => start.is_empty(),
            DecoderKind::Flate { ended, .. } | DecoderKind::Brotli { ended, .. } => *ended,
            DecoderKind::Zstd { frame_done, .. } => *frame_done,
        };
        if complete || !self.seen_input { Ok(()) } else { Err(corrupt("truncated compressed stream")) }
    }
}

impl invent_rewrite::Decode for Decoder {
    fn step(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)> {
        Decoder::step(self, input)
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        Decoder::finish(*self)
    }
}

/// RFC 1950: compression method 8, window ≤ 32K, and a header checksum divisible by 31.
fn is_zlib_header(start: &[u8]) -> bool {
    let (cmf, flg) = (start[0], start[1]);
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

enum EncoderKind {
    Gzip(flate2::write::GzEncoder<Out>),
    Zlib(flate2::write::ZlibEncoder<Out>),
    Brotli(Box<brotli::CompressorWriter<Out>>),
    Zstd(zstd::stream::write::Encoder<'static, Out>),
}

/// Encodes the rewritten page chunk by chunk, each chunk flushed so it can be decoded at
/// once by the browser.
pub(crate) struct Encoder(EncoderKind);

impl Encoder {
    pub(crate) fn new(coding: Coding) -> io::Result<Encoder> {
        let flate = flate2::Compression::new(FLATE_LEVEL);
        Ok(Encoder(match coding {
            Coding::Gzip => EncoderKind::Gzip(flate2::write::GzEncoder::new(Vec::new(), flate)),
            Coding::Deflate => EncoderKind::Zlib(flate2::write::ZlibEncoder::new(Vec::new(), flate)),
            Coding::Brotli => EncoderKind::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Coding::Zstd => EncoderKind::Zstd(zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?),
        }))
    }

    /// Encodes `input` and returns the bytes that decode to all of it.
    pub(crate) fn push(&mut self, input: &[u8]) -> io::Result<Bytes> {
        if input.is_empty() {
            return Ok(Bytes::new());
        }
        match &mut self.0 {
            EncoderKind::Gzip(e) => drain_after(e, input, |e| e.get_mut()),
            EncoderKind::Zlib(e) => drain_after(e, input, |e| e.get_mut()),
            EncoderKind::Brotli(e) => drain_after(e.as_mut(), input, |e| e.get_mut()),
            EncoderKind::Zstd(e) => drain_after(e, input, |e| e.get_mut()),
        }
    }

    /// Encodes the last `input` and ends the stream.
    pub(crate) fn finish(mut self, input: &[u8]) -> io::Result<Bytes> {
        let mut out = self.push(input)?.to_vec();
        let end = match self.0 {
            EncoderKind::Gzip(e) => e.finish()?,
            EncoderKind::Zlib(e) => e.finish()?,
            EncoderKind::Brotli(e) => e.into_inner(),
            EncoderKind::Zstd(e) => e.finish()?,
        };
        out.extend_from_slice(&end);
        Ok(Bytes::from(out))
    }
}

impl invent_rewrite::Encode for Encoder {
    fn push(&mut self, input: &[u8]) -> io::Result<Bytes> {
        Encoder::push(self, input)
    }

    fn finish(self: Box<Self>, input: &[u8]) -> io::Result<Bytes> {
        Encoder::finish(*self, input)
    }
}

/// Writes `input`, flushes, and takes what the writer produced into its `Vec`.
fn drain_after<W: Write>(writer: &mut W, input: &[u8], out: impl Fn(&mut W) -> &mut Out) -> io::Result<Bytes> {
    writer.write_all(input)?;
    writer.flush()?;
    Ok(Bytes::from(std::mem::take(out(writer))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] = b"<!DOCTYPE html><html><body><p>Hello, compressed world! \xc3\xa9</p></body></html>";

    fn round_trip(coding: Coding, chunk: usize) -> Vec<u8> {
        let mut encoder = Encoder::new(coding).unwrap();
        let mut encoded = Vec::new();
        for piece in PAGE.chunks(chunk) {
            encoded.extend_from_slice(&encoder.push(piece).unwrap());
        }
        encoded.extend_from_slice(&encoder.finish(b"<!-- end -->").unwrap());
        decode_all(coding, &encoded, 3).unwrap()
    }

    /// Decodes `encoded` fed in `chunk`-byte pieces, step by step, as the body does.
    fn decode_all(coding: Coding, encoded: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        let mut decoder = Decoder::new(coding)?;
        let mut decoded = Vec::new();
        for piece in encoded.chunks(chunk) {
            let mut rest = piece;
            loop {
                let (used, out) = decoder.step(rest)?;
                assert!(out.len() <= DECODE_STEP);
                decoded.extend_from_slice(&out);
                rest = &rest[used..];
                if rest.is_empty() && out.is_empty() {
                    break;
                }
            }
        }
        loop {
            let (_, out) = decoder.step(&[])?;
            if out.is_empty() {
                break;
            }
            decoded.extend_from_slice(&out);
        }
        decoder.finish()?;
        Ok(decoded)
    }

    #[test]
    fn every_coding_round_trips_in_any_chunking() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            for chunk in [1, 7, PAGE.len()] {
                assert_eq!(round_trip(coding, chunk), [PAGE, b"<!-- end -->"].concat(), "{coding:?} by {chunk}");
            }
        }
    }

    #[test]
    fn each_flushed_chunk_decodes_on_its_own() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            let mut encoder = Encoder::new(coding).unwrap();
            let mut decoder = Decoder::new(coding).unwrap();
            let first = encoder.push(b"<!DOCTYPE html><h1>first</h1>").unwrap();
            let (_, decoded) = decoder.step(&first).unwrap();
            let (_, more) = decoder.step(&[]).unwrap();
            assert_eq!([&decoded[..], &more[..]].concat(), b"<!DOCTYPE html><h1>first</h1>", "{coding:?}");
        }
    }

    #[test]
    fn raw_deflate_is_read_too() {
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(PAGE).unwrap();
        let raw = raw.finish().unwrap();
        assert_eq!(decode_all(Coding::Deflate, &raw, 5).unwrap(), PAGE);
    }

    #[test]
    fn corrupt_and_truncated_input_are_errors() {
        assert!(decode_all(Coding::Gzip, b"\x1f\x8b\x08\x00garbage that is not deflate at all........", 64).is_err());
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            let mut encoder = Encoder::new(coding).unwrap();
            let mut encoded = encoder.push(PAGE).unwrap().to_vec();
            encoded.extend_from_slice(&encoder.finish(b"").unwrap());
            let cut = &encoded[..encoded.len() - 3];
            assert!(decode_all(coding, cut, 7).is_err(), "{coding:?}: a cut stream must not look complete");
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let member = |text: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        let body = [member(b"<p>one</p>"), member(b"<p>two</p>")].concat();
        assert_eq!(decode_all(Coding::Gzip, &body, 4).unwrap(), b"<p>one</p><p>two</p>");
    }

    #[test]
    fn a_decompression_bomb_comes_out_in_bounded_steps() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
            let mut encoder = Encoder::new(coding).unwrap();
            let mut bomb = encoder.push(&zeros).unwrap().to_vec();
            bomb.extend_from_slice(&encoder.finish(b"").unwrap());
            assert!(bomb.len() < zeros.len() / 100, "{coding:?}");
            assert_eq!(decode_all(coding, &bomb, bomb.len()).unwrap().len(), zeros.len(), "{coding:?}");
        }
    }
}
