//! Decoders of the four codings, in bounded steps: flate2 (zlib-rs) for gzip and deflate
//! (a page that is not spliced), brotli-decompressor, zstd.

use std::io;

use bytes::Bytes;

use super::scan::is_zlib_header as zlib_header;
use super::{Coding, DECODE_STEP};

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
    pub(crate) fn finish(&self) -> io::Result<()> {
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

    fn finish(&mut self) -> io::Result<()> {
        Decoder::finish(self)
    }
}

/// RFC 1950: a zlib header (else raw deflate).
fn is_zlib_header(start: &[u8]) -> bool {
    zlib_header(start[0], start[1])
}
