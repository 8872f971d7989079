//! The sender's side of a transfer's end. The receiver says `FileDone` once, on the link it has
//! when the transfer ends; a link that closed first lost it. So the sender asks, on every new
//! link, how each of its unfinished files to that contact stands (`FileResume` from the
//! sender), and dials the receivers of files that may have ended unheard — for a bounded time,
//! and not again soon after asking without an answer (an older build ignores the question, a
//! receiver that removed us refuses it).

use std::collections::HashMap;
use std::time::Duration;

use super::limits::DEFAULT_EXPIRY;
use super::{Inner, lock, unix_ms};
use crate::chat::file;
use crate::chat::wire::{Frame, Id};
use crate::identity::Fingerprint;
use crate::node::link::Link;

/// After asking on a link and hearing nothing of it since (no progress, no end), a transfer
/// makes us dial its receiver again only this much later.
pub(crate) const ASK_AGAIN: Duration = Duration::from_secs(3600);
/// A transfer without progress for this long makes us dial its receiver no more (it is still
/// asked about on links made for other reasons): a day longer than a receiver waits before it
/// drops a stalled transfer, so that end is heard too.
const DIAL_FOR: Duration = DEFAULT_EXPIRY.saturating_add(Duration::from_secs(24 * 3600));

/// When we last asked about each of our unfinished transfers without hearing of it since.
pub(crate) type AskedMap = HashMap<Id, u64>;

impl Inner {
    /// Asks `link`'s peer where each of our unfinished files to it stands: we send
    /// `FileResume` with the chunks acknowledged so far; a receiver that has the file whole, or
    /// refused it, says `FileDone` again, one still receiving asks for chunks itself.
    pub(crate) async fn ask_outgoing(&self, link: &Link) {
        let conv = link.fp;
        let Ok(list) = self
            .db(move |c| file::outgoing_unfinished(c, Some(&conv), 0))
            .await
        else {
            return;
        };
        let mut sent = vec![];
        for t in list {
            let (id, index) = (t.manifest.id, t.next_index);
            if link.send(&Frame::FileResume { id, index }).await.is_ok() {
                sent.push(id);
            }
        }
        let now = unix_ms();
        let mut asked = lock(&self.asked);
        let fresh = now.saturating_sub(ASK_AGAIN.as_millis() as u64);
        asked.retain(|_, at| *at >= fresh);
        asked.extend(sent.into_iter().map(|id| (id, now)));
    }

    /// Receivers of our unfinished files worth a link at `now_ms`: files that made progress
    /// within [`DIAL_FOR`], not asked about within [`ASK_AGAIN`] without news since.
    pub(crate) async fn receivers_to_ask(&self, now_ms: u64) -> Vec<Fingerprint> {
        let since = now_ms.saturating_sub(DIAL_FOR.as_millis() as u64);
        let Ok(list) = self
            .db(move |c| file::outgoing_unfinished(c, None, since))
            .await
        else {
            return vec![];
        };
        let asked = lock(&self.asked);
        let recent = now_ms.saturating_sub(ASK_AGAIN.as_millis() as u64);
        let mut fps: Vec<Fingerprint> = vec![];
        for t in list {
            if asked.get(&t.manifest.id).is_none_or(|at| *at < recent) && !fps.contains(&t.conv) {
                fps.push(t.conv);
            }
        }
        fps
    }
}
