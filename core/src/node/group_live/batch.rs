//! Batching in a group's task. Out: after a turn, a group's frames go per peer, in order,
//! with the messages that follow one another gathered into one [`MsgBatch`] when the peer's
//! session has [`FEATURE_GROUP_BATCH`] (a router relaying a burst, or an outbox opening its
//! window, sends one frame instead of dozens; the receiver takes them exactly as separate
//! `Msg` frames), and one acknowledgement per peer and turn. In: messages queued one after
//! another from the same peer are taken as one batch, their signatures checked at once.

use tokio::sync::{mpsc, oneshot};

use crate::chat::wire::Frame;
use crate::groups::GroupId;
use crate::groups::message::SignedMessage;
use crate::groups::wire::{GroupFrame, MsgBatch};
use crate::identity::Fingerprint;
use crate::node::Inner;
use crate::session::{FEATURE_GROUP_BATCH, FEATURE_GROUPS};

use super::{BATCH, Cmd, Live};

impl Live {
    /// Handles `first` and what else is queued (at most [`BATCH`]), until a stop. Messages
    /// that follow one another from the same peer are taken as one batch (their signatures
    /// checked at once), whether they came in one frame or several.
    pub(super) fn on_cmds(
        &mut self,
        first: Cmd,
        rx: &mut mpsc::Receiver<Cmd>,
    ) -> Option<oneshot::Sender<()>> {
        let mut run: Option<(Fingerprint, Vec<SignedMessage>)> = None;
        let mut next = Some(first);
        let mut n = 1;
        let stop = loop {
            let cmd = match next.take() {
                Some(cmd) => cmd,
                None if n < BATCH => match rx.try_recv() {
                    Ok(cmd) => {
                        n += 1;
                        cmd
                    }
                    Err(_) => break None,
                },
                None => break None,
            };
            let (peer, msgs) = match cmd {
                Cmd::Frame(peer, frame) if matches!(*frame, GroupFrame::Msg(_)) => {
                    let GroupFrame::Msg(m) = *frame else {
                        unreachable!("matched above")
                    };
                    (peer, vec![m])
                }
                Cmd::Batch(peer, msgs) => (peer, msgs),
                other => {
                    if let Some((peer, msgs)) = run.take() {
                        self.on_cmd(Cmd::Batch(peer, msgs));
                    }
                    let stop = self.on_cmd(other);
                    if stop.is_some() {
                        break stop;
                    }
                    continue;
                }
            };
            match &mut run {
                Some((p, run_msgs)) if *p == peer => run_msgs.extend(msgs),
                _ => {
                    if let Some((p, run_msgs)) = run.replace((peer, msgs)) {
                        self.on_cmd(Cmd::Batch(p, run_msgs));
                    }
                }
            }
        };
        if let Some((peer, msgs)) = run {
            self.on_cmd(Cmd::Batch(peer, msgs));
        }
        stop
    }
}

/// The frames of one turn, by peer in the order peers first appeared.
#[derive(Default)]
pub(super) struct Outgoing(Vec<(Fingerprint, Vec<GroupFrame>)>);

impl Outgoing {
    /// Queues `frame` for `peer`. Acknowledgements are cumulative: a later one replaces an
    /// earlier one of the same turn (a batch of messages is acknowledged once).
    pub(super) fn push(&mut self, peer: Fingerprint, frame: GroupFrame) {
        let Some((_, frames)) = self.0.iter_mut().find(|(p, _)| *p == peer) else {
            self.0.push((peer, vec![frame]));
            return;
        };
        if let GroupFrame::Ack { seq, .. } = frame
            && let Some(GroupFrame::Ack { seq: earlier, .. }) = frames
                .iter_mut()
                .find(|f| matches!(f, GroupFrame::Ack { .. }))
        {
            *earlier = (*earlier).max(seq);
            return;
        }
        frames.push(frame);
    }

    /// Sends everything on the peers' links (a peer without a group-capable link gets
    /// nothing: the engines' anti-entropy repairs what it missed).
    pub(super) async fn send(self, inner: &Inner, group: GroupId) {
        for (peer, frames) in self.0 {
            let Some(link) = inner.link(&peer) else {
                continue;
            };
            if link.features & FEATURE_GROUPS == 0 {
                continue;
            }
            let batching = link.features & FEATURE_GROUP_BATCH != 0;
            let mut run: Vec<SignedMessage> = vec![];
            let mut run_bytes = 0;
            for frame in frames {
                match frame {
                    GroupFrame::Msg(m) if batching => {
                        if !MsgBatch::fits(run.len(), run_bytes, &m) {
                            send_run(&link, group, std::mem::take(&mut run)).await;
                            run_bytes = 0;
                        }
                        run_bytes += m.encoded_len();
                        run.push(m);
                    }
                    other => {
                        send_run(&link, group, std::mem::take(&mut run)).await;
                        run_bytes = 0;
                        let _ = link.send(&Frame::Group(other.encode())).await;
                    }
                }
            }
            send_run(&link, group, run).await;
        }
    }
}

/// Sends gathered messages: one alone as a `Msg`, more as a batch.
async fn send_run(link: &crate::node::link::Link, group: GroupId, mut msgs: Vec<SignedMessage>) {
    let bytes = match msgs.len() {
        0 => return,
        1 => GroupFrame::Msg(msgs.remove(0)).encode(),
        _ => MsgBatch { group, msgs }.encode(),
    };
    let _ = link.send(&Frame::Group(bytes)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_of_a_turn_collapse_into_the_highest() {
        let (a, b, g) = (Fingerprint([1; 32]), Fingerprint([2; 32]), GroupId([3; 16]));
        let mut out = Outgoing::default();
        out.push(a, GroupFrame::Ack { group: g, seq: 3 });
        out.push(b, GroupFrame::Ack { group: g, seq: 9 });
        out.push(a, GroupFrame::LogWant { group: g, from: 1 });
        out.push(a, GroupFrame::Ack { group: g, seq: 5 });
        out.push(a, GroupFrame::Ack { group: g, seq: 4 });
        assert_eq!(
            out.0,
            vec![
                (
                    a,
                    vec![
                        GroupFrame::Ack { group: g, seq: 5 },
                        GroupFrame::LogWant { group: g, from: 1 },
                    ]
                ),
                (b, vec![GroupFrame::Ack { group: g, seq: 9 }]),
            ]
        );
    }
}
