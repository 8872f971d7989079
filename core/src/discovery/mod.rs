//! Discovery: finding peers through namespaces with no server of our own (router election,
//! signed presence registry, failover) and stadium mode's geohash cells.

pub mod driver;
pub mod geo;
pub mod msg;
#[cfg(test)]
mod msg_props;
pub mod namespace;
pub mod presence;
pub mod pseudonym;
pub mod public_ip;
pub mod sim;
#[cfg(test)]
mod sim_backoff_tests;
#[cfg(test)]
mod sim_props;
#[cfg(test)]
mod sim_tests;
pub(crate) mod wire;

pub use wire::WireError;
