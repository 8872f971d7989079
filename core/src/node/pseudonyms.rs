//! Stadium pseudonyms at the node (decision 0010): our presence secret (kept in the settings),
//! shared inside sessions with contacts we trust at level 2 or more, replaced when one of them
//! loses that trust; and the contacts we recognise behind pseudonymous records nearby.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use super::{Inner, NodeError, lock};
use crate::chat::wire::Frame;
use crate::contacts::{self, Capability, Trust};
use crate::crypto::random_bytes;
use crate::discovery::pseudonym::{self, SECRET_LEN};
use crate::identity::{Fingerprint, Identity};
use crate::store::{Store, settings};

/// Settings key of our presence secret (hex).
const SECRET_KEY: &str = "presence_secret";

type Secret = [u8; SECRET_LEN];

/// Our secret and what we know of our contacts'.
pub(super) struct Pseudonyms {
    secret: Mutex<Zeroizing<Secret>>,
    /// Secrets of contacts we trust at level 2 or more.
    contacts: Mutex<Vec<(Fingerprint, Secret)>>,
    /// Their pseudonyms around one day → the contact (computed when the day changes).
    by_pseudonym: Mutex<Option<(u32, HashMap<Fingerprint, Fingerprint>)>>,
}

fn presence_trust(t: Option<Trust>) -> bool {
    t.is_some_and(|t| t.allows(Capability::Presence))
}

impl Pseudonyms {
    /// Loads our secret (made on first use) and the contacts' secrets.
    pub(super) async fn load(store: &Store) -> Result<Self, NodeError> {
        let (secret, known) = store
            .call(|c| {
                let secret = match settings::get_setting(c, SECRET_KEY)?
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| Secret::try_from(b).ok())
                {
                    Some(s) => s,
                    None => {
                        let s = random_bytes::<SECRET_LEN>();
                        settings::set_setting(c, SECRET_KEY, &hex::encode(s))?;
                        s
                    }
                };
                let known = contacts::presence_secrets(c, Trust::Trusted);
                Ok((Zeroizing::new(secret), known))
            })
            .await?;
        let known = known?;
        Ok(Self {
            secret: Mutex::new(secret),
            contacts: Mutex::new(known),
            by_pseudonym: Mutex::new(None),
        })
    }

    /// The key that signs our stadium records on `day`.
    pub(super) fn ours(&self, day: u32) -> Arc<Identity> {
        Arc::new(pseudonym::pseudonym(&lock(&self.secret), day))
    }

    /// The contact behind `pseudonym` around `day`, if we trust it at level 2 or more and it
    /// shared its secret with us.
    pub(super) fn recognise(&self, pseudonym: &Fingerprint, day: u32) -> Option<Fingerprint> {
        let mut cache = lock(&self.by_pseudonym);
        if cache.as_ref().is_none_or(|(d, _)| *d != day) {
            let map = lock(&self.contacts)
                .iter()
                .flat_map(|(fp, s)| pseudonym::recent(s, day).map(|p| (p, *fp)))
                .collect();
            *cache = Some((day, map));
        }
        cache.as_ref().and_then(|(_, m)| m.get(pseudonym).copied())
    }
}

impl Inner {
    /// Gives a contact we trust at level 2 or more our presence secret (at each session start:
    /// a replaced secret reaches it the next time it connects).
    pub(super) async fn share_presence_secret(&self, link: &super::link::Link, trust: Trust) {
        if presence_trust(Some(trust)) {
            let secret = **lock(&self.pseudonyms.secret);
            let _ = link.send(&Frame::PresenceSecret(secret)).await;
        }
    }

    /// A contact sent its presence secret: keep it (a stranger's is dropped).
    pub(super) async fn on_presence_secret(&self, fp: Fingerprint, secret: Secret) {
        if let Err(e) = self
            .db(move |c| contacts::set_presence_secret(c, &fp, &secret).map_err(NodeError::from))
            .await
        {
            tracing::info!(error = %e, "could not store a presence secret");
        }
        self.reload_presence_secrets().await;
    }

    /// Re-reads which contacts we recognise (after a secret arrived or a trust level changed).
    pub(super) async fn reload_presence_secrets(&self) {
        let known = self
            .db(|c| contacts::presence_secrets(c, Trust::Trusted).map_err(NodeError::from))
            .await;
        if let Ok(known) = known {
            *lock(&self.pseudonyms.contacts) = known;
            *lock(&self.pseudonyms.by_pseudonym) = None;
        }
    }

    /// A contact's trust changed from `before` to `after`: a contact that loses level 2 must
    /// not recognise us any more, so our secret is replaced and given again to the contacts
    /// still trusted (those online now, the others when they next connect); one that reaches
    /// level 2 gets it now.
    pub(super) async fn presence_trust_changed(
        self: &Arc<Self>,
        fp: Fingerprint,
        before: Option<Trust>,
        after: Option<Trust>,
    ) {
        self.reload_presence_secrets().await;
        if presence_trust(before) && !presence_trust(after) {
            let fresh = random_bytes::<SECRET_LEN>();
            let stored = self
                .db(move |c| {
                    settings::set_setting(c, SECRET_KEY, &hex::encode(fresh))
                        .map_err(NodeError::from)
                })
                .await;
            if stored.is_err() {
                return;
            }
            *lock(&self.pseudonyms.secret) = Zeroizing::new(fresh);
            self.renew_stadium_pseudonym();
            let online: Vec<Fingerprint> = lock(&self.links).keys().copied().collect();
            for other in online {
                let t = self.db(move |c| contacts::trust_of(c, &other)).await;
                if let (Ok(Some(t)), Some(link)) = (t, self.link(&other)) {
                    self.share_presence_secret(&link, t).await;
                }
            }
        } else if !presence_trust(before)
            && let Some(t) = after.filter(|t| presence_trust(Some(*t)))
            && let Some(link) = self.link(&fp)
        {
            self.share_presence_secret(&link, t).await;
        }
    }
}
