//! Encoders for the codings that are encoded again (brotli, zstd), and the decoder and
//! encoder paired for the rewriter. Bytes are flushed only where the stream needs it:
//! when the upstream pauses (so the client can render what has come) and at the end, not
//! after every piece of output, which made the encoded page a fifth larger.

use std::collections::VecDeque;
use std::io::{self, Write};

use bytes::Bytes;

use super::{Coding, Decoder};

/// Brotli quality for dynamic content; window 2^20.
const BROTLI_QUALITY: u32 = 4;
const BROTLI_WINDOW: u32 = 20;
const ZSTD_LEVEL: i32 = 3;
/// Internal buffer of the brotli writers.
const BROTLI_BUFFER: usize = 16 * 1024;

type Out = Vec<u8>;

enum EncoderKind {
    Brotli(Box<brotli::CompressorWriter<Out>>),
    Zstd(zstd::stream::write::Encoder<'static, Out>),
}

/// Encodes the rewritten page in the upstream's coding.
pub(super) struct Encoder {
    kind: EncoderKind,
    /// Input taken since the last flush.
    unflushed: bool,
}

impl Encoder {
    /// An encoder for brotli or zstd (gzip and deflate are spliced instead).
    pub(super) fn new(coding: Coding) -> io::Result<Encoder> {
        let kind = match coding {
            Coding::Brotli => EncoderKind::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Coding::Zstd => EncoderKind::Zstd(zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?),
            Coding::Gzip | Coding::Deflate => {
                return Err(io::Error::other("gzip and deflate pages are spliced, not encoded again"));
            }
        };
        Ok(Encoder { kind, unflushed: false })
    }

    /// Encodes `input`: returns what the encoder has written so far (maybe nothing).
    pub(super) fn push(&mut self, input: &[u8]) -> io::Result<Bytes> {
        self.unflushed |= !input.is_empty();
        match &mut self.kind {
            EncoderKind::Brotli(e) => drain_after(e.as_mut(), input, false, |e| e.get_mut()),
            EncoderKind::Zstd(e) => drain_after(e, input, false, |e| e.get_mut()),
        }
    }

    /// Makes everything taken so far decodable by the client.
    pub(super) fn flush(&mut self) -> io::Result<Bytes> {
        if !std::mem::take(&mut self.unflushed) {
            return Ok(Bytes::new());
        }
        match &mut self.kind {
            EncoderKind::Brotli(e) => drain_after(e.as_mut(), &[], true, |e| e.get_mut()),
            EncoderKind::Zstd(e) => drain_after(e, &[], true, |e| e.get_mut()),
        }
    }

    /// Ends the stream.
    pub(super) fn finish(self) -> io::Result<Bytes> {
        Ok(Bytes::from(match self.kind {
            EncoderKind::Brotli(e) => e.into_inner(),
            EncoderKind::Zstd(e) => e.finish()?,
        }))
    }
}

/// Writes `input` (and flushes, if asked), and takes what the writer produced into its `Vec`.
fn drain_after<W: Write>(
    writer: &mut W,
    input: &[u8],
    flush: bool,
    out: impl Fn(&mut W) -> &mut Out,
) -> io::Result<Bytes> {
    writer.write_all(input)?;
    if flush {
        writer.flush()?;
    }
    Ok(Bytes::from(std::mem::take(out(writer))))
}

/// A decoder and an encoder of the same coding: the page is decoded, rewritten, and
/// encoded again.
pub(super) struct Recoded {
    decoder: Decoder,
    /// `None` once it has ended the stream.
    encoder: Option<Encoder>,
}

impl Recoded {
    pub(super) fn new(coding: Coding) -> io::Result<Recoded> {
        Ok(Recoded { decoder: Decoder::new(coding)?, encoder: Some(Encoder::new(coding)?) })
    }

    fn encoder(&mut self) -> io::Result<&mut Encoder> {
        self.encoder.as_mut().ok_or_else(|| io::Error::other("the encoded page has ended"))
    }
}

impl invent_rewrite::Decode for Recoded {
    fn step(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)> {
        self.decoder.step(input)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.decoder.finish()
    }
}

impl invent_rewrite::Encode for Recoded {
    fn push(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        for part in page {
            out.push_back(self.encoder()?.push(&part)?);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        out.push_back(self.encoder()?.flush()?);
        Ok(())
    }

    fn finish(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.push(page, out)?;
        if let Some(encoder) = self.encoder.take() {
            out.push_back(encoder.finish()?);
        }
        Ok(())
    }
}
