//! What became of a request, in fixed words: why a response went out without the widget
//! ([`Skip`]), what identification concluded and from which source ([`Identified`]).
//! Each has one string table, which the access line, the metrics and `explain` all use,
//! so a word means the same thing wherever it is read.

use std::fmt;

/// Why a response passed through without the widget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    Method,
    Path,
    NotNavigation,
    Status,
    NotHtml,
    Encoding,
    /// A charset the rewriter cannot handle (UTF-16, ISO-2022-JP, an unknown label),
    /// named when known.
    Charset(Option<&'static str>),
    /// `Cache-Control: no-transform`: intermediaries must not change the content (RFC 9111 §5.2.2.6).
    NoTransform,
    /// `Content-Disposition: attachment`: a download, not a page to show.
    Attachment,
    /// The body had no doctype, `<html>` or `<body>`: a fragment.
    Fragment,
    /// The rewriter gave up (e.g. its memory cap); the page passed through as the upstream
    /// sent it.
    RewriteFailed,
}

impl Skip {
    /// The reason's one word (a charset's name is left out).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Skip::Method => "method",
            Skip::Path => "path",
            Skip::NotNavigation => "not_navigation",
            Skip::Status => "status",
            Skip::NotHtml => "not_html",
            Skip::Encoding => "encoding",
            Skip::Charset(_) => "charset",
            Skip::NoTransform => "no_transform",
            Skip::Attachment => "attachment",
            Skip::Fragment => "fragment",
            Skip::RewriteFailed => "rewrite_failed",
        }
    }
}

/// In the access line: the word, and for a charset its name (`charset:UTF-16LE`).
impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Charset(Some(name)) => write!(f, "charset:{name}"),
            _ => f.write_str(self.as_str()),
        }
    }
}

/// Where an identity is looked for: the kinds of identity source, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `identity.gateway`: an SSO gateway in front asserts the visitor in plain headers.
    Gateway,
    /// `identity.jwt.header`: a bearer token, or a gateway's signed assertion.
    JwtHeader,
    /// `identity.jwt.cookie`: a session JWT in a cookie.
    JwtCookie,
    /// `identity.jwt.cookie_chunks`: that cookie split as `name.0`, `name.1`, ….
    JwtChunks,
    /// `identity.rails`: a Rails cookie-store session.
    Rails,
    /// `identity.flask`: a Flask session cookie.
    Flask,
    /// `identity.cookie_session`: an Express `cookie-session` cookie.
    CookieSession,
    /// `identity.lookup`: the site's own "who am I" endpoint.
    Lookup,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Gateway => "gateway",
            Source::JwtHeader => "jwt_header",
            Source::JwtCookie => "jwt_cookie",
            Source::JwtChunks => "jwt_chunks",
            Source::Rails => "rails",
            Source::Flask => "flask",
            Source::CookieSession => "cookie_session",
            Source::Lookup => "lookup",
        }
    }
}

/// Why a session that was present did not identify the visitor: rejected, failed to be
/// looked up, or not looked up at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A token, or a framework's session cookie, over 8 KiB (or what it unpacks to, over
    /// 64 KiB).
    TooLarge,
    /// Not in the format of its kind: not a JWT; a framework cookie of the wrong shape, or
    /// whose wrapping (envelope, base64, zlib, timestamp) does not decode.
    Malformed,
    AlgorithmNotAllowed,
    /// The signature, MAC or authentication tag does not verify with the key (or with any
    /// of them); a `cookie-session` cookie without its `.sig`.
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    MissingClaim,
    /// The token's `kid` names no configured key.
    UnknownKey,
    /// The token's header lists critical extensions (`crit`), none of which the proxy
    /// understands (RFC 7515 §4.1.11).
    Crit,
    /// A JOSE header parameter of `jwt.header_claims` (an ALB's `signer`) does not match.
    WrongHeader,
    /// Chunked cookies with one missing (`name.0`, `name.2`, no `name.1`).
    IncompleteChunks,
    /// A registered claim (`exp`, `nbf`, `sub`, …) has the wrong type.
    InvalidClaim,
    /// A Rails session sealed for another purpose: its `_rails.pur` is not
    /// `cookie.<the cookie's name>` (a cookie of another name, copied over).
    WrongPurpose,
    /// An authentic framework session that is not JSON: Marshal (Rails' `:marshal` and
    /// `:hybrid` serializers), MessagePack, or another serializer the proxy does not read.
    UnsupportedSerializer,
    /// An authentic framework session whose JSON is not an object (`[1, 2]`).
    NotAnObject,
    NoUserId,
    InvalidUserId,
    /// The lookup endpoint could not be reached, or the exchange broke off.
    LookupFailed,
    /// The lookup endpoint did not answer within `lookup.timeout`.
    LookupTimeout,
    /// The lookup endpoint answered with a status that is neither 200 nor "not signed in".
    LookupStatus,
    /// The lookup endpoint's answer is not what `claims` (JSON) or `select` (HTML) reads.
    LookupInvalid,
    /// A lookup for the session failed less than `lookup.error_ttl` ago: not asked again.
    Backoff,
    /// `lookup.max_concurrent` lookups were running: not asked.
    Busy,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::AlgorithmNotAllowed => "algorithm_not_allowed",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::MissingClaim => "missing_claim",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Crit => "crit",
            Rejection::WrongHeader => "wrong_header",
            Rejection::IncompleteChunks => "incomplete_chunks",
            Rejection::InvalidClaim => "invalid_claim",
            Rejection::WrongPurpose => "wrong_purpose",
            Rejection::UnsupportedSerializer => "unsupported_serializer",
            Rejection::NotAnObject => "not_an_object",
            Rejection::NoUserId => "no_user_id",
            Rejection::InvalidUserId => "invalid_user_id",
            Rejection::LookupFailed => "lookup_failed",
            Rejection::LookupTimeout => "lookup_timeout",
            Rejection::LookupStatus => "lookup_status",
            Rejection::LookupInvalid => "lookup_invalid",
            Rejection::Backoff => "backoff",
            Rejection::Busy => "busy",
        }
    }
}

/// What identification concluded for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identified {
    /// No identity configured, or no session in the request.
    None,
    /// A source verified the visitor; `cached`: known from an earlier request.
    Verified { source: Source, cached: bool },
    /// The session is not signed in: the lookup endpoint says so, or a framework session
    /// verified and holds no user id.
    SignedOut { source: Source, cached: bool },
    /// A session was there and did not identify the visitor.
    Rejected { source: Source, reason: Rejection },
    /// The lookup endpoint could not tell (down, slow, an unexpected answer): anonymous for
    /// this page, and not asked again for the session for `lookup.error_ttl`.
    Failed { source: Source, reason: Rejection },
    /// The lookup was not asked (back-off after a failure, or too many at once).
    Skipped { source: Source, reason: Rejection },
}

impl Identified {
    /// The outcome's word: `none`, `verified`, `signed_out`, `rejected`.
    pub fn outcome(self) -> &'static str {
        match self {
            Identified::None => "none",
            Identified::Verified { .. } => "verified",
            Identified::SignedOut { .. } => "signed_out",
            Identified::Rejected { .. } => "rejected",
            Identified::Failed { .. } => "failed",
            Identified::Skipped { .. } => "skipped",
        }
    }

    /// The source that concluded, if one did.
    pub fn source(self) -> Option<Source> {
        match self {
            Identified::None => None,
            Identified::Verified { source, .. }
            | Identified::SignedOut { source, .. }
            | Identified::Rejected { source, .. }
            | Identified::Failed { source, .. }
            | Identified::Skipped { source, .. } => Some(source),
        }
    }

    /// The detail: `cached` for an answer known from an earlier request, the reason of a
    /// rejection, else empty.
    pub fn reason(self) -> &'static str {
        match self {
            Identified::Verified { cached: true, .. } | Identified::SignedOut { cached: true, .. } => "cached",
            Identified::Rejected { reason, .. }
            | Identified::Failed { reason, .. }
            | Identified::Skipped { reason, .. } => reason.as_str(),
            _ => "",
        }
    }
}

/// In the access line: the outcome, then `:` and its detail if it has one
/// (`verified:cached`, `rejected:expired`).
impl fmt::Display for Identified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            "" => f.write_str(self.outcome()),
            reason => write!(f, "{}:{reason}", self.outcome()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_line_and_the_metrics_use_the_same_words() {
        let cached = Identified::Verified { source: Source::Lookup, cached: true };
        assert_eq!(
            (cached.to_string(), cached.outcome(), cached.reason()),
            ("verified:cached".into(), "verified", "cached")
        );
        let expired = Identified::Rejected { source: Source::JwtCookie, reason: Rejection::Expired };
        assert_eq!(expired.to_string(), "rejected:expired");
        assert_eq!(expired.source().map(Source::as_str), Some("jwt_cookie"));
        assert_eq!(Identified::None.to_string(), "none");
        assert_eq!(Skip::Charset(Some("UTF-16LE")).to_string(), "charset:UTF-16LE");
        assert_eq!(Skip::Charset(None).to_string(), "charset");
    }
}
