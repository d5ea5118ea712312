//! The fast path of a rewrite: lol_html sees only the parts of a page that can matter to
//! the widget; the rest goes to the client untouched, found at memchr speed.
//!
//! lol_html stays the rewriter of record. The skimmer reads the page with lol_html's own
//! tokenizer states ([`lexer`]) and sends each construct one of two ways:
//! - **fed** to lol_html: `<html>`, `<head>`, `<body>`, `<meta>`, their end tags, a
//!   `<script src>` with its content, inline SVG and MathML, and any end tag that would
//!   close an element lol_html has seen;
//! - **passed** to the output: text, comments, doctypes, other tags, raw text elements.
//!
//! Most tags of a page are ordinary ones, read whole in one tight loop ([`ordinary`]);
//! the lexer reads the rest. Both read a tag's attributes with one reader
//! ([`attributes`]).
//!
//! For the page to come out byte for byte as if lol_html had seen all of it, lol_html must
//! be in the same state whenever it is fed. Its tokenizer is always back in the data state
//! between constructs; what it tracks across them is the stack of open elements, which the
//! skimmer mirrors: before lol_html is fed, it is first fed (unseen by the client) the start
//! tags of the elements that were opened while it was not looking. On anything the skimmer
//! is not sure of — an existing `invent-assistant`, `<plaintext>`, MathML's
//! `annotation-xml`, SVG `<font>`, an element stack or a tag name past its limits — every
//! byte from there on goes to lol_html.
//!
//! Its tests check that both paths give the same bytes, over random pages cut into random
//! chunks.

mod attributes;
mod lexer;
mod names;
mod ordinary;
#[cfg(test)]
mod tests;

use lexer::{Event, Lexer, State, TextType};
use names::{Key, Kind, Namespaces, OpenElements};

/// Where the skimmer's bytes go.
pub(super) trait Route {
    /// To the client as they are.
    fn pass(&mut self, bytes: &[u8]);
    /// Through lol_html.
    fn feed(&mut self, bytes: &[u8]);
    /// Through lol_html, which must see them, but not to the client.
    fn feed_unseen(&mut self, bytes: &[u8]);
}

/// How the construct being read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Pass,
    /// Not decided yet: its bytes so far are held.
    Hold,
    /// An SVG or MathML subtree, held until it closes: passed if it is self-contained,
    /// else fed (after the sync it would have had at its start).
    HoldTree,
    Feed,
    /// Everything, from here to the end of the page, goes through lol_html.
    Full,
}

/// Open elements beyond this, and lol_html sees everything (it has its own memory cap).
const MAX_OPEN_ELEMENTS: usize = 512;
/// A construct held back longer than this while undecided goes through lol_html.
const MAX_HELD: usize = 16 * 1024;

/// Where, in the current chunk, the current run starts and the held construct starts.
#[derive(Debug, Default)]
struct Cut {
    start: usize,
    hold_from: usize,
}

/// A foreign subtree being held.
#[derive(Debug, Default)]
struct Tree {
    /// The sync lol_html needs before the subtree, should it be fed: written only then, or
    /// before an end tag in the subtree closes an element opened before it (until one does,
    /// the elements below `base` are those at its start).
    sync: Vec<u8>,
    sync_written: bool,
    /// Open elements at its start: it is self-contained if it closes them all again and
    /// closes none of those before it.
    base: usize,
    clean: bool,
}

/// The fast path's state over one page.
#[derive(Debug)]
pub(super) struct Skimmer {
    lexer: Lexer,
    way: Way,
    /// The bytes of an undecided construct from earlier chunks.
    held: Vec<u8>,
    open: OpenElements,
    /// How many of `open` lol_html has seen (the rest were opened while it was not fed).
    synced: usize,
    namespaces: Namespaces,
    /// The current start tag switches a foreign element to HTML unless self-closing.
    integration_point: bool,
    /// The current tag's name key and kind.
    key: Key,
    kind: Kind,
    /// The open element the current end tag closes.
    closes: Option<usize>,
    tree: Tree,
    /// The start tags of a sync (kept to reuse its allocation).
    unseen: Vec<u8>,
}

impl Default for Skimmer {
    fn default() -> Self {
        Skimmer {
            lexer: Lexer::default(),
            way: Way::Pass,
            held: Vec::new(),
            open: OpenElements::default(),
            synced: 0,
            namespaces: Namespaces::default(),
            integration_point: false,
            key: 0,
            kind: Kind::Other,
            closes: None,
            tree: Tree::default(),
            unseen: Vec::new(),
        }
    }
}

impl Skimmer {
    /// Sends a chunk of the page its ways.
    pub(super) fn route(&mut self, chunk: &[u8], to: &mut impl Route) {
        if self.way == Way::Full {
            return to.feed(chunk);
        }
        let mut cut = Cut::default();
        let mut at = 0;
        loop {
            if self.way == Way::Pass && self.between_constructs() {
                self.pass_ordinary_tags(chunk, &mut at);
            }
            let Some(event) = self.lexer.next(chunk, &mut at) else { break };
            self.opened(&mut cut);
            match event {
                Event::NotTag | Event::Closed => self.apply(Way::Pass, chunk, &mut cut, at, to),
                Event::Name => {
                    let wanted = self.at_name();
                    self.apply(wanted, chunk, &mut cut, at, to);
                }
                Event::TagEnd => {
                    // Decided before the element is pushed: a sync must not include it.
                    let wanted = if self.lexer.end_tag { Way::Pass } else { self.at_start_tag_end() };
                    self.apply(wanted, chunk, &mut cut, at, to);
                    self.at_tag_end();
                }
            }
            if self.way == Way::Full {
                return to.feed(&chunk[cut.start..]);
            }
            if self.between_constructs() {
                self.after_construct(chunk, &mut cut, at, to);
            }
        }
        self.at_chunk_end(chunk, cut, to);
    }

    /// The end of the page: an undecided construct goes as it is (lol_html would have
    /// written an unfinished tag out unchanged too).
    pub(super) fn finish(&mut self, to: &mut impl Route) {
        match self.way {
            Way::Hold => self.apply(Way::Pass, &[], &mut Cut::default(), 0, to),
            Way::HoldTree => self.feed_tree(&[], &mut Cut::default(), 0, to),
            _ => {}
        }
    }

    /// Whether everything so far went through lol_html and everything to come will.
    #[cfg(test)]
    pub(super) fn is_full(&self) -> bool {
        self.way == Way::Full
    }

    /// lol_html's tokenizer is in the data state, outside foreign content.
    fn between_constructs(&self) -> bool {
        self.lexer.state == State::Data && self.namespaces.in_html_document()
    }

    /// What the construct read so far asks for, given how it goes now.
    fn apply(&mut self, wanted: Way, chunk: &[u8], cut: &mut Cut, at: usize, to: &mut impl Route) {
        match (self.way, wanted) {
            (Way::Hold, Way::Pass) => {
                self.release_held(Way::Pass, to);
                self.way = Way::Pass;
            }
            (Way::Hold, Way::HoldTree) => {
                self.tree.sync_written = false;
                self.tree.base = self.open.len();
                self.tree.clean = true;
                self.way = Way::HoldTree;
            }
            (Way::Hold, Way::Feed | Way::Full) => {
                to.pass(&chunk[cut.start..cut.hold_from]);
                cut.start = cut.hold_from;
                self.sync(to);
                self.release_held(Way::Feed, to);
                self.way = wanted;
            }
            (Way::HoldTree, Way::Full) => {
                self.feed_tree(chunk, cut, at, to);
                self.way = Way::Full;
            }
            (Way::HoldTree, Way::Feed) => {
                self.write_tree_sync();
                self.tree.clean = false;
            }
            (Way::Feed, Way::Full) => self.way = Way::Full,
            _ => {}
        }
    }

    /// Back in the data state outside foreign content: the construct is over.
    fn after_construct(&mut self, chunk: &[u8], cut: &mut Cut, at: usize, to: &mut impl Route) {
        match self.way {
            Way::Feed => {
                to.feed(&chunk[cut.start..at]);
                cut.start = at;
            }
            Way::HoldTree if self.tree.clean && self.open.len() == self.tree.base => self.release_held(Way::Pass, to),
            Way::HoldTree => self.feed_tree(chunk, cut, at, to),
            _ => return,
        }
        self.way = Way::Pass;
    }

    /// The held subtree goes through lol_html, up to `at`, after the sync it needed at its
    /// start; what follows is fed too until the subtree is over.
    fn feed_tree(&mut self, chunk: &[u8], cut: &mut Cut, at: usize, to: &mut impl Route) {
        self.write_tree_sync();
        to.pass(&chunk[cut.start..cut.hold_from.min(at)]);
        to.feed_unseen(&self.tree.sync);
        self.release_held(Way::Feed, to);
        to.feed(&chunk[cut.hold_from.min(at)..at]);
        cut.start = at;
        self.synced = self.open.len();
        self.way = Way::Feed;
    }

    /// The start tags lol_html would have needed before the held subtree.
    fn write_tree_sync(&mut self) {
        if !self.tree.sync_written {
            self.tree.sync.clear();
            self.open.start_tags(self.synced..self.tree.base, &mut self.tree.sync);
            self.tree.sync_written = true;
        }
    }

    /// A `<` in the data state: what it starts is held until it is clear how it goes.
    fn opened(&mut self, cut: &mut Cut) {
        if let Some(at) = self.lexer.opened_at.take()
            && self.way == Way::Pass
        {
            cut.hold_from = at;
            self.way = Way::Hold;
        }
    }

    fn at_chunk_end(&mut self, chunk: &[u8], mut cut: Cut, to: &mut impl Route) {
        self.opened(&mut cut);
        match self.way {
            Way::Pass => to.pass(&chunk[cut.start..]),
            Way::Feed | Way::Full => to.feed(&chunk[cut.start..]),
            Way::Hold | Way::HoldTree => {
                to.pass(&chunk[cut.start..cut.hold_from]);
                self.held.extend_from_slice(&chunk[cut.hold_from..]);
                if self.held.len() > MAX_HELD {
                    match self.way {
                        Way::Hold => self.apply(Way::Full, &[], &mut Cut::default(), 0, to),
                        _ => self.feed_tree(&[], &mut Cut::default(), 0, to),
                    }
                }
            }
        }
    }

    /// The held bytes of a construct from earlier chunks go `way` (passed or fed).
    fn release_held(&mut self, way: Way, to: &mut impl Route) {
        match way {
            Way::Pass => to.pass(&self.held),
            _ => to.feed(&self.held),
        }
        self.held.clear();
    }

    /// Shows lol_html, unseen, the elements opened while it was not fed: its stack of open
    /// elements becomes the page's.
    fn sync(&mut self, to: &mut impl Route) {
        self.unseen.clear();
        self.open.start_tags(self.synced..self.open.len(), &mut self.unseen);
        to.feed_unseen(&self.unseen);
        self.synced = self.open.len();
    }

    /// A tag name is complete: the tree builder's view of it, and how the tag goes.
    fn at_name(&mut self) -> Way {
        let name = &self.lexer.name;
        if name.len() > MAX_HELD {
            return Way::Full;
        }
        self.key = names::key(name);
        let kind = Kind::of(self.key);
        self.kind = kind;
        if self.lexer.end_tag {
            return self.at_end_tag_name(kind);
        }
        self.integration_point = false;
        let html = match kind {
            Kind::Svg | Kind::Math => {
                self.namespaces.enter_foreign(kind);
                false
            }
            _ if self.namespaces.in_html() => true,
            _ => {
                match self.namespaces.foreign_start_tag(self.key, name) {
                    names::Foreign::Stay => {}
                    names::Foreign::Leave => self.namespaces.leave(),
                    names::Foreign::IntegrationPoint => self.integration_point = true,
                    names::Foreign::Unsure => return Way::Full,
                }
                false
            }
        };
        self.lexer.pending_text = if html { kind.text_type() } else { TextType::Data };
        self.lexer.cdata_allowed = !self.namespaces.in_html();
        match kind {
            Kind::Widget | Kind::PlainText => Way::Full,
            Kind::Svg | Kind::Math => Way::HoldTree,
            Kind::Page | Kind::Meta => Way::Feed,
            // A `<script>` (in any namespace: lol_html's `script[src]` matches there too) and
            // raw text elements are decided at the end of the tag.
            Kind::Script => Way::Hold,
            _ if self.lexer.pending_text != TextType::Data => Way::Hold,
            _ if self.open.len() >= MAX_OPEN_ELEMENTS => Way::Full,
            _ => Way::Pass,
        }
    }

    fn at_end_tag_name(&mut self, kind: Kind) -> Way {
        let name = &self.lexer.name;
        if !self.namespaces.end_tag(self.key, name) {
            return Way::Full;
        }
        self.lexer.cdata_allowed = !self.namespaces.in_html();
        // Closing an element lol_html has seen (or, in a held subtree, one opened before
        // it): lol_html must see it close.
        let seen = if self.way == Way::HoldTree { self.tree.base } else { self.synced };
        self.closes = self.open.find(self.key, name);
        match (kind, self.closes) {
            (Kind::Page, _) => Way::Feed,
            (_, Some(i)) if i < seen => Way::Feed,
            _ => Way::Pass,
        }
    }

    /// A start tag is complete. One that ends right after `=` (`<style a=>`) and would
    /// switch to raw text leaves lol_html reading raw text or markup depending on its
    /// parser's mode at the time: the rest of the page goes to lol_html. A script with a
    /// `src` (the widget's?) goes through lol_html.
    fn at_start_tag_end(&self) -> Way {
        if self.lexer.pending_text != TextType::Data && self.lexer.state == State::Data {
            Way::Full
        } else if self.kind == Kind::Script && self.lexer.src.seen {
            Way::Feed
        } else {
            Way::Pass
        }
    }

    /// A tag is complete: the element stack as lol_html keeps it.
    fn at_tag_end(&mut self) {
        let name = &self.lexer.name;
        if self.lexer.end_tag {
            if let Some(i) = self.closes {
                self.open.pop_to(i);
            }
        } else {
            if self.integration_point && !self.lexer.self_closing {
                self.namespaces.enter_html();
                self.lexer.cdata_allowed = false;
            }
            let pushed = if self.namespaces.in_html() { !self.kind.is_void() } else { !self.lexer.self_closing };
            if pushed {
                self.open.push(self.key, name);
            }
        }
        if self.way == Way::Feed {
            self.synced = self.open.len();
        }
        self.synced = self.synced.min(self.open.len());
    }
}
