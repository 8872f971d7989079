//! A group's task: waits for commands, namespace events, link checks and the engine's timers,
//! and flushes what each produced.

use std::time::Instant;

use tokio::sync::mpsc;

use super::member_links::link_check_tick;
use super::{Cmd, Inner, Live};
use crate::discovery::driver::NamespaceHandle;
use crate::discovery::namespace::NsEvent;

/// Runs group task `live` until it stops, leaves the group or cannot store what it holds.
pub(super) async fn run(
    mut live: Live,
    mut rx: mpsc::Receiver<Cmd>,
    ns: NamespaceHandle,
    mut ns_events: mpsc::UnboundedReceiver<NsEvent>,
) {
    let mut tick = link_check_tick(true);
    let done = loop {
        let timer = [live.engine.poll_timeout(), live.call_timeout()]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match timer {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut stop = None;
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break None };
                stop = live.on_cmds(cmd, &mut rx);
            }
            ev = ns_events.recv() => match ev {
                Some(ev) => live.on_ns(ev),
                None => break None,
            },
            // Only a router with members about has links to check: otherwise the task sleeps.
            _ = tick.tick(), if live.checks_links() => live.on_tick(),
            _ = sleep => {
                live.engine.handle_timeout(Instant::now());
                live.on_call_timeout();
            }
        }
        if let Some(active) = live.app_active.take() {
            ns.set_active(active);
            tick = link_check_tick(active);
        }
        live.release_held();
        if !live.flush().await {
            live.forget_running();
            // Unless it was being stopped (left, or a room moved).
            if stop.is_none()
                && let Some(inner) = live.inner.upgrade()
            {
                Inner::restart_group_later(&inner, live.gid);
            }
            break stop;
        }
        if stop.is_some() {
            break stop;
        }
        if live.engine.departed() {
            // Not a member any more: out of the election too.
            live.forget_running();
            break None;
        }
    };
    ns.leave().await;
    if let Some(done) = done {
        let _ = done.send(());
    }
}
