//! 1:1 chat between contacts: the frames sent inside an authenticated session ([`wire`]) and
//! the conversations, ordered op streams and outbox in SQLite ([`store`]). Confidentiality and
//! integrity come from the session (Noise, end to end between the two identities); every op
//! also names its sender and recipient, which the receiver checks against the session, so an
//! op is bound to (conversation, message id, sender, kind) — see `docs/decisions/0006`.

pub mod call_wire;
pub mod file;
pub mod store;
pub mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_props;
