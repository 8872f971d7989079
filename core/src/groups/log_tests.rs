use super::*;

fn id(n: u8) -> Identity {
    Identity::from_secret(&[n; 32], "peerns2-test")
}

fn group_of(creator: &Identity) -> Log {
    Log::create_with_id(GroupId([7; 16]), creator, "Team", 1)
}

fn add(log: &mut Log, signer: &Identity, op: LogOp) -> Result<(), LogError> {
    let e = log.sign_next(signer, op, 2);
    log.append(e)
}

#[test]
fn create_invite_promote_remove_leave_yield_the_state() {
    let (a, b, c) = (id(1), id(2), id(3));
    let mut log = group_of(&a);
    assert_eq!(log.state().name, "Team");
    assert!(log.state().is_admin(&a.fingerprint()));
    add(&mut log, &a, LogOp::Invite(b.fingerprint())).unwrap();
    add(&mut log, &a, LogOp::Invite(c.fingerprint())).unwrap();
    // A plain member may not invite or remove.
    assert_eq!(
        add(&mut log, &b, LogOp::Invite(id(4).fingerprint())),
        Err(LogError::NotAllowed)
    );
    add(&mut log, &a, LogOp::Promote(b.fingerprint())).unwrap();
    add(
        &mut log,
        &b,
        LogOp::Remove {
            member: c.fingerprint(),
            cutoff: 5,
        },
    )
    .unwrap();
    let s = log.state();
    assert!(!s.is_member(&c.fingerprint()));
    assert!(s.may_author(&c.fingerprint(), 5));
    assert!(!s.may_author(&c.fingerprint(), 6));
    // A former member cannot be invited again, nor leave twice.
    assert!(add(&mut log, &a, LogOp::Invite(c.fingerprint())).is_err());
    add(&mut log, &a, LogOp::Leave { cutoff: 0 }).unwrap();
    // The last admin left: b stays admin; had b not been one, the earliest member would be.
    assert!(log.state().is_admin(&b.fingerprint()));
    assert_eq!(
        add(&mut log, &c, LogOp::Leave { cutoff: 9 }),
        Err(LogError::NotAllowed)
    );
    // Replaying the entries gives the same log.
    assert_eq!(Log::from_entries(log.entries()).unwrap(), log);
}

#[test]
fn last_admin_leaving_promotes_the_earliest_member() {
    let (a, b, c) = (id(1), id(2), id(3));
    let mut log = group_of(&a);
    add(&mut log, &a, LogOp::Invite(c.fingerprint())).unwrap();
    add(&mut log, &a, LogOp::Invite(b.fingerprint())).unwrap();
    add(&mut log, &a, LogOp::Leave { cutoff: 0 }).unwrap();
    assert!(log.state().is_admin(&c.fingerprint()));
    assert!(!log.state().is_admin(&b.fingerprint()));
}

#[test]
fn tampered_reordered_or_foreign_entries_are_refused() {
    let (a, b) = (id(1), id(2));
    let mut log = group_of(&a);
    let e = log.sign_next(&a, LogOp::Invite(b.fingerprint()), 2);
    let mut bad = e.clone();
    bad.entry.op = LogOp::Invite(id(9).fingerprint());
    assert_eq!(log.clone().append(bad), Err(LogError::BadSignature));
    let mut stale = e.clone();
    stale.entry.prev = [1; 32];
    assert!(matches!(
        log.clone().append(stale),
        Err(LogError::NotOnHead { .. })
    ));
    let other = Log::create_with_id(GroupId([8; 16]), &a, "x", 1);
    let foreign = other.sign_next(&a, LogOp::Invite(b.fingerprint()), 2);
    assert_eq!(log.clone().append(foreign), Err(LogError::WrongGroup));
    // A forged create (signed by someone else than it names) and a second create.
    let mut forged = log.entries()[0].clone();
    forged.signer = b.public_key().to_bytes();
    assert_eq!(Log::from_create(forged), Err(LogError::BadSignature));
    let second = log.sign_next(&a, LogOp::Create { name: "y".into() }, 2);
    assert_eq!(log.append(second), Err(LogError::BadCreate));
    log.append(e).unwrap();
}

#[test]
fn entries_round_trip_and_fork_choice_is_deterministic() {
    let (a, b, c) = (id(1), id(2), id(3));
    let base = group_of(&a);
    for e in base.entries() {
        assert_eq!(SignedEntry::decode(&e.encode()).unwrap(), *e);
    }
    let mut x = base.clone();
    add(&mut x, &a, LogOp::Invite(b.fingerprint())).unwrap();
    let mut y = base.clone();
    add(&mut y, &a, LogOp::Invite(c.fingerprint())).unwrap();
    assert_ne!(
        x.beats(&y),
        y.beats(&x),
        "exactly one of two equal-length forks wins"
    );
    add(&mut y, &a, LogOp::Invite(b.fingerprint())).unwrap();
    assert!(y.beats(&x) && !x.beats(&y), "the longer log wins");
}

#[test]
fn an_open_room_log_is_the_same_everywhere_admits_everyone_and_never_grows() {
    let (a, b) = (id(1), id(2));
    let gid = GroupId([9; 16]);
    let (x, y) = (Log::open_room(gid), Log::open_room(gid));
    assert_eq!(x.head(), y.head(), "computed from the ID alone");
    assert_ne!(x.head(), Log::open_room(GroupId([8; 16])).head());
    assert!(x.is_open() && x.state().is_member(&a.fingerprint()));
    assert!(x.state().may_author(&b.fingerprint(), 1_000));
    assert!(x.state().admins.is_empty());
    let mut x = x;
    for op in [
        LogOp::Invite(b.fingerprint()),
        LogOp::Leave { cutoff: 0 },
        LogOp::Promote(a.fingerprint()),
    ] {
        let e = x.sign_next(&a, op, 2);
        assert!(matches!(x.append(e), Err(LogError::Invalid(_))));
    }
    assert_eq!(x.len(), 1);
    // Its first entry is not a signed create: it cannot seed a normal log.
    assert!(Log::from_entries(x.entries()).is_err());
}
