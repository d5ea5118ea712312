//! invent-rewrite: the page side of invent-proxy. A streaming HTTP body that inserts the
//! Invent assistant widget into a whole HTML page as it passes, and leaves every other
//! byte exactly as the upstream sent it.
//!
//! - [`RewriteBody`] ([`body`]) takes the upstream's body, reads just far enough to know
//!   whether it is a whole page ([`RewriteBody::sniff`], with [`doctype`]'s scan of the
//!   prolog), decodes it if it is compressed ([`Transcode`], codecs supplied by the
//!   caller), chooses its charset ([`charset`]), and streams it through lol_html
//!   ([`handlers`]) into [`output`].
//! - The fast path ([`skim`]) reads the page with lol_html's own tokenizer states and
//!   sends lol_html only the constructs that can matter to the widget.
//! - [`Widget`] is the markup, built from plain values, with the [`Visitor`]'s identity
//!   and the page's CSP nonce ([`csp`]).
//!
//! Nothing here knows about configuration files, HTTP clients or the command line: the
//! caller says what to insert ([`Injection`]) and reads what happened from the body.
#![forbid(unsafe_code)]

mod body;
mod charset;
pub mod csp;
mod doctype;
mod handlers;
mod output;
mod skim;
mod transcode;
mod widget;

pub use body::{BoxError, RewriteBody, SNIFF_DEADLINE, SNIFF_LIMIT, SNIFF_RAW_LIMIT, Sniffed};
pub use handlers::{Injection, Inserted, NonceSource, Place, REWRITER_MAX_MEMORY, selectors_ready};
pub use transcode::{Decode, Encode, Recode, Transcode};
pub use widget::{ELEMENT_ID, Position, Syntax, Visitor, Widget, element_id, escape_attribute};
