//! Certificates from an ACME CA (RFC 8555) with the TLS-ALPN-01 challenge, or DNS-01 from our
//! own zones ([`dns01`]), for a hosting provider's many domains.
//!
//! One certificate per mail domain (its `autoconfig.`, `autodiscover.` and, with MTA-STS,
//! `mta-sts.` names): one failing domain never blocks the others, and CAs cap names per
//! certificate; `names_per_certificate` puts several domains on one ([`bundle`]). Renewals
//! follow the CA's renewal windows where it offers them ([`ari`]), else two thirds of the
//! lifetime. One scheduler task orders them all through rustls-acme's low-level client,
//! within the CA's new-order budget ([`budget`], `orders_per_3h`), a few at a time, in the order
//! [`queue`] keeps: names a TLS handshake asked for first (on demand), then due renewals, then
//! new domains in settings order. Failed orders wait with backoff; a CA that rate-limits or is
//! unreachable pauses every order. Certificates live in `cache_dir` ([`cache`]): at start each
//! one's validity is read (not its key), and a handshake loads the key into a bounded
//! in-memory cache, so memory does not grow with the number of certificates on disk. A file cut
//! or holding another key is never served: reported (by the scan, or by the handshake that loads
//! it) and ordered next. Every exchange with the CA gives up after 30 s ([`order::ca`]); the
//! account is made in a task of its own, so a CA that does not answer holds up nothing else.
//!
//! A handshake for a configured name without a certificate fails at once (no certificate is
//! offered) and moves that name to the front of the queue: an order takes seconds to minutes,
//! longer than clients wait, and may be held back by the budget; Thunderbird falls back to
//! plain HTTP, which mailconf answers. Names that are not configured order nothing.

pub mod ari;
pub mod budget;
pub mod bundle;
pub mod cache;
pub mod clock;
pub mod dns01;
pub mod domains;
mod index;
mod order;
mod queue;
mod resolver;
mod scheduler;
pub mod status;

pub use index::names_for;
pub use resolver::{Acme, server_config};
