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
pub enum Coding {
    Gzip,
    /// "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2); raw deflate from servers that get it
    /// wrong is read too.
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    /// The coding a `Content-Encoding`/`Accept-Encoding` token names, if supported.
    pub fn from_token(token: &str) -> Option<Coding> {
        match token.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }

    /// The token as written in headers.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

type Out = Vec<u8>;

enum DecoderKind {
    Gzip(flate2::write::GzDecoder<Out>),
    /// Deflate before its first two bytes show whether it is zlib-wrapped.
    DeflateStart(Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Out>),
    RawDeflate(flate2::write::DeflateDecoder<Out>),
    Brotli(Box<brotli::DecompressorWriter<Out>>),
    Zstd(zstd::stream::write::Decoder<'static, Out>),
}

/// Decodes a page's body chunk by chunk.
pub struct Decoder(DecoderKind);

impl Decoder {
    pub fn new(coding: Coding) -> io::Result<Decoder> {
        Ok(Decoder(match coding {
            Coding::Gzip => DecoderKind::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            Coding::Deflate => DecoderKind::DeflateStart(Vec::new()),
            Coding::Brotli => DecoderKind::Brotli(Box::new(brotli::DecompressorWriter::new(Vec::new(), BROTLI_BUFFER))),
            Coding::Zstd => DecoderKind::Zstd(zstd::stream::write::Decoder::new(Vec::new())?),
        }))
    }

    /// Decodes `input` and returns what it yields so far. An error means corrupt input.
    pub fn push(&mut self, input: &[u8]) -> io::Result<Bytes> {
        if let DecoderKind::DeflateStart(start) = &mut self.0 {
            start.extend_from_slice(input);
            if start.len() < 2 {
                return Ok(Bytes::new());
            }
            let start = std::mem::take(start);
            self.0 = if is_zlib_header(&start) {
                DecoderKind::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
            } else {
                DecoderKind::RawDeflate(flate2::write::DeflateDecoder::new(Vec::new()))
            };
            return self.push(&start);
        }
        match &mut self.0 {
            DecoderKind::DeflateStart(_) => Ok(Bytes::new()),
            DecoderKind::Gzip(d) => drain_after(d, input, |d| d.get_mut()),
            DecoderKind::Zlib(d) => drain_after(d, input, |d| d.get_mut()),
            DecoderKind::RawDeflate(d) => drain_after(d, input, |d| d.get_mut()),
            DecoderKind::Brotli(d) => drain_after(d.as_mut(), input, |d| d.get_mut()),
            DecoderKind::Zstd(d) => drain_after(d, input, |d| d.get_mut()),
        }
    }

    /// The end of the input: whatever the decoder still held.
    pub fn finish(self) -> io::Result<Bytes> {
        let rest = match self.0 {
            DecoderKind::DeflateStart(start) if !start.is_empty() => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated deflate stream"));
            }
            DecoderKind::DeflateStart(_) => Vec::new(),
            DecoderKind::Gzip(d) => d.finish()?,
            DecoderKind::Zlib(d) => d.finish()?,
            DecoderKind::RawDeflate(d) => d.finish()?,
            DecoderKind::Brotli(mut d) => {
                d.close()?;
                std::mem::take(d.get_mut())
            }
            DecoderKind::Zstd(mut d) => {
                d.flush()?;
                std::mem::take(d.get_mut())
            }
        };
        Ok(Bytes::from(rest))
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
pub struct Encoder(EncoderKind);

impl Encoder {
    pub fn new(coding: Coding) -> io::Result<Encoder> {
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
    pub fn push(&mut self, input: &[u8]) -> io::Result<Bytes> {
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
    pub fn finish(mut self, input: &[u8]) -> io::Result<Bytes> {
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
        let mut decoder = Decoder::new(coding).unwrap();
        let mut decoded = Vec::new();
        for piece in encoded.chunks(3) {
            decoded.extend_from_slice(&decoder.push(piece).unwrap());
        }
        decoded.extend_from_slice(&decoder.finish().unwrap());
        decoded
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
            assert_eq!(&decoder.push(&first).unwrap()[..], b"<!DOCTYPE html><h1>first</h1>", "{coding:?}");
        }
    }

    #[test]
    fn raw_deflate_is_read_too() {
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(PAGE).unwrap();
        let raw = raw.finish().unwrap();
        let mut decoder = Decoder::new(Coding::Deflate).unwrap();
        let mut decoded = decoder.push(&raw).unwrap().to_vec();
        decoded.extend_from_slice(&decoder.finish().unwrap());
        assert_eq!(decoded, PAGE);
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let mut decoder = Decoder::new(Coding::Gzip).unwrap();
        assert!(decoder.push(b"\x1f\x8b\x08\x00garbage that is not deflate at all........").is_err());
    }
}
