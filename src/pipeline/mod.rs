//! The request pipeline: every request from its arrival to its access line.
//!
//! [`Live`] holds the running config's [`Sites`]; a request is first checked at the edge
//! ([`edge`]: its one authority, RFC rules) and routed to its site's [`Proxy`], which runs
//! the phases — plan ([`rules`]) → forward ∥ identify → respond — with the request's
//! [`context`] (its access line in the making) travelling in the response body ([`body`]).
//! A caller may ask for what the pipeline decided for one request ([`record`]: how
//! `explain` tells it).

mod body;
mod context;
mod edge;
mod proxy;
mod record;
mod rules;
mod sites;
mod upgrade;

pub(crate) use context::Peer;
pub(crate) use proxy::Proxy;
pub(crate) use record::{Answer, Record, Recorder, Routed, Stage};
pub(crate) use sites::{Live, Sites};

/// Why a site could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("cannot set up the upstream client: {0}")]
    Client(#[source] std::io::Error),
    #[error(transparent)]
    Identity(#[from] crate::identity::StartError),
}
