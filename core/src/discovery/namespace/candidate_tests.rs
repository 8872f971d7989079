//! A node that does not stand for router (a group's invitee that cannot route yet) only ever
//! joins one, and stands once told it may.

use std::sync::Arc;
use std::time::Instant;

use super::{Action, ConnId, Input, Namespace, NsConfig, RoleKind};
use crate::discovery::presence::VerifyCache;
use crate::identity::Identity;

const NS: &str = "peerns2-group-unit";

/// The router IDs `ns` claims and the router ID it connects to, from its actions.
fn claims_and_join(ns: &mut Namespace) -> (Vec<String>, Option<(ConnId, String)>) {
    let mut claims = vec![];
    let mut join = None;
    for a in ns.drain_actions() {
        match a {
            Action::Claim { id } if ns.level_of(&id).is_some() => claims.push(id),
            Action::Connect { conn, to, .. } if ns.level_of(&to).is_some() => {
                join = Some((conn, to));
            }
            _ => {}
        }
    }
    (claims, join)
}

#[test]
fn a_node_that_does_not_stand_joins_but_never_claims_until_it_may() {
    let now = Instant::now();
    let cfg = NsConfig::default();
    let (backoff, join_timeout) = (cfg.retry_backoff, cfg.join_timeout);
    let id = Arc::new(Identity::generate());
    let cache = Arc::new(VerifyCache::new(64));
    let mut ns = Namespace::new(cfg, NS, id, "node", cache, 7, now, 1_800_000_000_000);
    ns.set_candidate(false);
    ns.start(now);
    let disc = ns.disc_id().to_owned();
    ns.handle(Input::Claimed { id: disc }, now);
    let (claims, join) = claims_and_join(&mut ns);
    assert!(claims.is_empty(), "claimed {claims:?}");
    assert_eq!(join.expect("it looks for the router").1, ns.router_id(1));
    // Level 1 does not answer: a candidate would claim level 2; this one waits and looks
    // at level 1 again (the router that comes is there).
    let t = now + join_timeout;
    ns.handle_timeout(t);
    assert!(claims_and_join(&mut ns).0.is_empty());
    let t = t + backoff;
    ns.handle_timeout(t);
    let (claims, join) = claims_and_join(&mut ns);
    assert!(claims.is_empty(), "claimed {claims:?}");
    let (conn, to) = join.expect("it looks for the router again");
    assert_eq!(to, ns.router_id(1));
    // Nobody routes: it waits and looks again instead of claiming.
    let unavailable = true;
    ns.handle(Input::ConnectFailed { conn, unavailable }, t);
    assert!(claims_and_join(&mut ns).0.is_empty());
    let t = t + backoff;
    ns.handle_timeout(t);
    let (conn, _) = claims_and_join(&mut ns).1.expect("and again");
    // Once it may stand, the next election claims.
    ns.set_candidate(true);
    ns.handle(Input::ConnectFailed { conn, unavailable }, t);
    assert_eq!(claims_and_join(&mut ns).0, vec![ns.router_id(1)]);
    let level = ns.router_id(1);
    ns.handle(Input::Claimed { id: level }, t);
    assert_eq!(ns.role(), RoleKind::Router(1));
}
