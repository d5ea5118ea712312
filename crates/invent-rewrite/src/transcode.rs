//! A compressed page on its way through the rewrite: decoded before lol_html reads it, and
//! encoded again after, by codecs the caller supplies (the proxy's own splice gzip and
//! deflate, and encode brotli and zstd again).

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;

/// Decodes a page's content coding in bounded steps.
pub trait Decode: Send {
    /// Decodes from the start of `input`: how many input bytes it took, and what it
    /// decoded — at most a bounded step's worth, however much the input expands. With
    /// empty `input` it hands out output it still holds. `(0, empty)` with input left
    /// would mean no progress: that must be an error.
    fn step(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)>;

    /// The end of the input: an error unless the compressed stream ended properly, so a
    /// cut page never looks complete.
    fn finish(&mut self) -> io::Result<()>;
}

/// Encodes the rewritten page in the page's content coding, piece by piece.
pub trait Encode: Send {
    /// Takes the rewritten page's next bytes, in order, and adds to `out` what can be sent
    /// of the encoded page: nothing need be decodable yet.
    fn push(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()>;

    /// The upstream paused: adds to `out` what makes everything pushed so far decodable
    /// by the client.
    fn flush(&mut self, out: &mut VecDeque<Bytes>) -> io::Result<()>;

    /// Takes the page's last bytes and ends the encoded page.
    fn finish(&mut self, page: Vec<Bytes>, out: &mut VecDeque<Bytes>) -> io::Result<()>;
}

/// A codec that decodes the page and encodes the rewritten one: one value, so the encoder
/// can use what the decoder saw (the splice sends the upstream's own compressed bytes
/// where the page is unchanged).
pub trait Recode: Decode + Encode {}

impl<T: Decode + Encode> Recode for T {}

/// How a compressed page is read and sent on: decoded and encoded again if the client
/// accepts the coding, else decoded only (the client gets identity). The default passes
/// bytes as they are.
#[derive(Default)]
pub enum Transcode {
    #[default]
    Identity,
    Decode(Box<dyn Decode>),
    Recode(Box<dyn Recode>),
}
