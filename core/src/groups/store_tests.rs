//! The group tables on a real (temporary) profile database.

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::groups::engine::{Engine, EngineConfig, GroupAction};
use crate::groups::log::{LogOp, SignedEntry};
use crate::groups::message::Body;
use crate::identity::Identity;
use crate::store::Store;

fn db() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("peerns.db")).unwrap();
    (dir, store)
}

fn events(e: &mut Engine<MemHistory>) -> Vec<GroupEvent> {
    e.drain_actions()
        .into_iter()
        .filter_map(|a| match a {
            GroupAction::Event(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

/// Runs `f` in a transaction of `c`, committed if it succeeds.
fn in_tx(
    c: &mut rusqlite::Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    f(&tx)?;
    Ok(tx.commit()?)
}

#[test]
fn a_group_survives_a_restart_with_log_history_and_outbox() {
    let (_dir, store) = db();
    let me = Arc::new(Identity::generate());
    let other = Identity::generate();
    let mut log = Log::create(&me, "Crew", 1);
    let e = log.sign_next(&me, LogOp::Invite(other.fingerprint()), 2);
    log.append(e).unwrap();
    store
        .with_conn(|c| {
            let tx = c.transaction()?;
            save_group(&tx, &log, 5)?;
            tx.commit()?;
            Ok(())
        })
        .unwrap();
    let mut engine = Engine::new(
        EngineConfig::default(),
        me.clone(),
        log.clone(),
        MemHistory::default(),
    );
    let now = Instant::now();
    for n in 0..5 {
        engine
            .send_message(Body::Text(format!("m{n}")), n, now)
            .unwrap();
    }
    engine.handle(crate::groups::engine::GroupInput::BecameRouter, now);
    let evs = events(&mut engine);
    store
        .with_conn(|c| in_tx(c, |tx| persist(tx, engine.log(), &evs, 9)))
        .unwrap();
    let gid = log.group();
    let (loaded, history, acked, groups) = store
        .with_conn(|c| {
            Ok((
                load_log(c, &gid)?,
                load_history(c, &gid)?,
                acked(c, &gid)?,
                list(c)?,
            ))
        })
        .unwrap();
    assert_eq!(loaded.as_ref(), Some(&log));
    assert_eq!(history.ordered(), engine.history().ordered());
    assert_eq!(
        acked,
        Some(5),
        "as router our messages are stored where they must be"
    );
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "Crew");
    // A restarted engine from the stored state continues the same stream.
    let mut again = Engine::new(EngineConfig::default(), me, loaded.unwrap(), history);
    let next = again.send_message(Body::Text("m5".into()), 6, now).unwrap();
    assert_eq!(next.msg.seq, 6);
}

#[test]
fn proposals_are_stored_replaced_and_go_with_their_group() {
    let (_dir, store) = db();
    let me = Arc::new(Identity::generate());
    let (x, y) = (Identity::generate(), Identity::generate());
    let mut log = Log::create(&me, "Crew", 1);
    for fp in [x.fingerprint(), y.fingerprint()] {
        let e = log.sign_next(&me, LogOp::Invite(fp), 2);
        log.append(e).unwrap();
    }
    let gid = log.group();
    let remove = |who: &Identity| {
        log.sign_next(
            &me,
            LogOp::Remove {
                member: who.fingerprint(),
                cutoff: 0,
            },
            3,
        )
    };
    let both = vec![remove(&x), remove(&y)];
    let save = |ps: Vec<SignedEntry>| {
        store
            .with_conn(|c| {
                in_tx(c, |tx| {
                    save_group(tx, &log, 1)?;
                    persist(tx, &log, &[GroupEvent::Proposals(ps)], 9)
                })
            })
            .unwrap();
    };
    let load = || store.with_conn(|c| load_proposals(c, &gid)).unwrap();
    save(both.clone());
    assert_eq!(load(), both);
    save(vec![both[1].clone()]);
    assert_eq!(load(), vec![both[1].clone()]);
    store.with_conn(|c| delete(c, &gid)).unwrap();
    assert!(load().is_empty());
}

#[test]
fn messages_are_unique_per_author_and_seq_and_page_in_display_order() {
    let (_dir, store) = db();
    let a = Arc::new(Identity::generate());
    let b = Arc::new(Identity::generate());
    let mut log = Log::create(&a, "g", 1);
    let e = log.sign_next(&a, LogOp::Invite(b.fingerprint()), 2);
    log.append(e).unwrap();
    let gid = log.group();
    let now = Instant::now();
    let mut ea = Engine::new(
        EngineConfig::default(),
        a,
        log.clone(),
        MemHistory::default(),
    );
    let mut eb = Engine::new(
        EngineConfig::default(),
        b,
        log.clone(),
        MemHistory::default(),
    );
    let mut all = vec![];
    for n in 0..30 {
        let e = if n % 3 == 0 { &mut eb } else { &mut ea };
        all.push(e.send_message(Body::Text(format!("{n}")), n, now).unwrap());
    }
    all.sort_by_key(SignedMessage::order_key);
    store
        .with_conn(|c| {
            let tx = c.transaction()?;
            save_group(&tx, &log, 1)?;
            for m in &all {
                assert!(insert_message(&tx, &gid, m, 1)?);
            }
            assert!(
                !insert_message(&tx, &gid, &all[3], 2)?,
                "a duplicate is ignored"
            );
            tx.commit()?;
            Ok(())
        })
        .unwrap();
    // Pages from the newest backwards, each in display order, together the whole history.
    let mut pages = vec![];
    let mut before = None;
    loop {
        let page = store
            .with_conn(|c| history_page(c, &gid, before, 7))
            .unwrap();
        let Some(first) = page.first() else { break };
        before = Some(first.order_key());
        pages.push(page);
    }
    assert_eq!(pages.len(), 5);
    let joined: Vec<SignedMessage> = pages.into_iter().rev().flatten().collect();
    assert_eq!(joined, all);
    // Purging and deleting.
    let evs = [GroupEvent::Purged {
        author: all[0].author_fp(),
        cutoff: 1,
    }];
    store
        .with_conn(|c| in_tx(c, |tx| persist(tx, &log, &evs, 3)))
        .unwrap();
    let left = store.with_conn(|c| load_history(c, &gid)).unwrap();
    assert_eq!(
        left.len(),
        30 - (all
            .iter()
            .filter(|m| m.author_fp() == all[0].author_fp())
            .count()
            - 1)
    );
    store.with_conn(|c| delete(c, &gid)).unwrap();
    assert_eq!(store.with_conn(|c| load_history(c, &gid)).unwrap().len(), 0);
    assert_eq!(store.with_conn(|c| load_log(c, &gid)).unwrap(), None);
}

#[test]
fn a_tampered_stored_log_is_refused_on_load() {
    let (_dir, store) = db();
    let me = Identity::generate();
    let log = Log::create(&me, "g", 1);
    let gid = log.group();
    store
        .with_conn(|c| {
            let tx = c.transaction()?;
            save_group(&tx, &log, 1)?;
            tx.commit()?;
            c.execute(
                "UPDATE group_log SET entry = ?1 WHERE gid = ?2",
                rusqlite::params![
                    Log::create(&me, "other", 1).entries()[0].encode(),
                    gid.to_hex()
                ],
            )?;
            Ok(())
        })
        .unwrap();
    assert!(store.with_conn(|c| load_log(c, &gid)).is_err());
}

#[test]
fn group_files_are_recorded_once_resumed_while_unfinished_and_finished() {
    use crate::chat::file::Manifest;
    use crate::groups::files::{self, GroupFileState};
    let (_dir, store) = db();
    let me = Arc::new(Identity::generate());
    let log = Log::create(&me, "Crew", 1);
    let gid = log.group();
    let author = me.fingerprint();
    let manifest = |id: u8| Manifest {
        id: [id; 16],
        name: format!("f{id}.bin"),
        size: 100_000,
        mime: "application/octet-stream".into(),
        hash: [id; 32],
        chunk_size: 60 * 1024,
    };
    store
        .with_conn(|c| {
            let tx = c.transaction()?;
            save_group(&tx, &log, 5)?;
            tx.commit()?;
            // Ours (done), and one of someone else's being fetched; a second record is ignored.
            assert!(files::add(
                c,
                &gid,
                &author,
                &manifest(1),
                GroupFileState::Done,
                Some("/x/f1.bin"),
                6
            )?);
            assert!(files::add(
                c,
                &gid,
                &author,
                &manifest(2),
                GroupFileState::Transferring,
                None,
                7
            )?);
            assert!(!files::add(
                c,
                &gid,
                &author,
                &manifest(2),
                GroupFileState::Done,
                Some("/y"),
                8
            )?);
            let ours = files::get(c, &gid, &[1; 16])?.unwrap();
            assert_eq!(
                (ours.state, ours.next_index, ours.path.as_deref()),
                (GroupFileState::Done, 2, Some("/x/f1.bin"))
            );
            files::set_progress(c, &gid, &[2; 16], 1, 9)?;
            let open = files::unfinished(c, &gid)?;
            assert_eq!(open.len(), 1);
            assert_eq!(
                (open[0].manifest.clone(), open[0].author, open[0].next_index),
                (manifest(2), author, 1)
            );
            files::finish(c, &gid, &[2; 16], Some("/x/f2.bin"), 10)?;
            assert!(files::unfinished(c, &gid)?.is_empty());
            let done = files::get(c, &gid, &[2; 16])?.unwrap();
            assert_eq!((done.state, done.next_index), (GroupFileState::Done, 2));
            assert_eq!(files::get(c, &gid, &[3; 16])?, None);
            Ok(())
        })
        .unwrap();
}
