//! Which encoding a page is rewritten in: the `Content-Type` charset, else a byte order
//! mark, else UTF-8 with lol_html switching on a `<meta charset>` or `http-equiv` tag.

use encoding_rs::Encoding;
use lol_html::AsciiCompatibleEncoding;

/// How many bytes decide a BOM.
pub(super) const BOM_LENGTH: usize = 3;

/// How the rewriter reads a page.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decoding {
    pub encoding: AsciiCompatibleEncoding,
    /// No charset in the header or BOM: a `<meta>` in the page may still set it.
    pub follow_meta: bool,
}

/// Chooses the page's encoding from the header's charset or the first bytes, or names the
/// encoding the rewriter cannot handle (UTF-16 by its BOM; any encoding that is not
/// ASCII-compatible).
pub(super) fn choose(header: Option<&'static Encoding>, first_bytes: &[u8]) -> Result<Decoding, &'static str> {
    let (encoding, follow_meta) = match header {
        Some(encoding) => (encoding, false),
        None => match Encoding::for_bom(first_bytes) {
            Some((encoding, _)) => (encoding, false),
            None => (encoding_rs::UTF_8, true),
        },
    };
    let encoding = AsciiCompatibleEncoding::new(encoding).ok_or(encoding.name())?;
    Ok(Decoding { encoding, follow_meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_wins_then_the_bom_then_meta() {
        let chosen = choose(Some(encoding_rs::SHIFT_JIS), b"\xEF\xBB\xBF<html>").expect("rewritable");
        assert_eq!((chosen.encoding.into(), chosen.follow_meta), (encoding_rs::SHIFT_JIS, false));
        let bom = choose(None, b"\xEF\xBB\xBF<html>").expect("rewritable");
        assert_eq!((bom.encoding.into(), bom.follow_meta), (encoding_rs::UTF_8, false));
        let plain = choose(None, b"<html>").expect("rewritable");
        assert_eq!((plain.encoding.into(), plain.follow_meta), (encoding_rs::UTF_8, true));
    }

    #[test]
    fn utf16_cannot_be_rewritten() {
        assert_eq!(choose(None, b"\xFF\xFE<\x00").expect_err("refused"), "UTF-16LE");
        assert_eq!(choose(None, b"\xFE\xFF\x00<").expect_err("refused"), "UTF-16BE");
    }
}
