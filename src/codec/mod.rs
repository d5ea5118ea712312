//! Content codings of pages (gzip, deflate, br, zstd): push-style streaming decoders and
//! encoders, fed chunk by chunk from the body. A gzip or deflate page for a client that
//! takes it is spliced ([`splice`]): the upstream's compressed bytes go on as they are up
//! to where the widget goes, and only the rest is encoded. A brotli or zstd page is
//! decoded and encoded again, flushed only where the stream needs it.

mod decode;
mod encode;
mod inflate;
mod scan;
mod splice;
#[cfg(test)]
mod tests;

use std::io;

use invent_rewrite::Transcode;

pub(crate) use decode::Decoder;
use encode::Recoded;
use scan::Wrap;
use splice::Splice;

/// gzip and deflate level of what the splice encodes: 1, nginx's `gzip_comp_level`
/// default, fast enough to compress on the fly.
const FLATE_LEVEL: u32 = 1;

/// At most this many decoded bytes come out of one decoding step, however much the input
/// expands: a small compressed body cannot make the proxy hold a huge decoded one.
pub(crate) const DECODE_STEP: usize = 64 * 1024;

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

/// How a page in `coding` is read and sent on: spliced (gzip, deflate) or decoded and
/// encoded again (br, zstd) for a client that `accepts` the coding, else decoded only (the
/// client gets identity).
pub fn transcode(coding: Coding, accepts: bool) -> io::Result<Transcode> {
    Ok(match (coding, accepts) {
        (Coding::Gzip, true) => Transcode::Recode(Box::new(Splice::new(Wrap::Gzip))),
        (Coding::Deflate, true) => Transcode::Recode(Box::new(Splice::new(Wrap::Deflate))),
        (_, true) => Transcode::Recode(Box::new(Recoded::new(coding)?)),
        (_, false) => Transcode::Decode(Box::new(Decoder::new(coding)?)),
    })
}
