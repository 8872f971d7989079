//! Groups between real nodes: embedded signaling server, loopback WebRTC, profiles on disk.

use std::time::Duration;

use super::groups as offline;
use super::tests::{befriend, config, server, started, until};
use super::*;
use crate::groups::GroupId;

/// Every stored message as (author, seq, text), in display order.
pub(super) fn history(dir: &std::path::Path, gid: &GroupId) -> Vec<(Fingerprint, u64, String)> {
    let p = Profile::open_desktop(dir).unwrap();
    offline::history(&p, gid, usize::MAX >> 1)
        .unwrap()
        .into_iter()
        .map(|m| (m.author, m.seq, m.text))
        .collect()
}

/// A group made offline by the first profile with every other one invited and joined.
pub(super) fn group_of(dirs: &[&std::path::Path]) -> (GroupId, Vec<Fingerprint>) {
    let admin = Profile::open_desktop(dirs[0]).unwrap();
    let gid = offline::create(&admin, "live").unwrap();
    let mut fps = vec![admin.identity().fingerprint()];
    for d in &dirs[1..] {
        let p = Profile::open_desktop(d).unwrap();
        let fp = p.identity().fingerprint();
        let link = offline::invite(&admin, &gid, &fp).unwrap();
        offline::join(&p, &link).unwrap();
        fps.push(fp);
    }
    (gid, fps)
}

/// Sends once we are a member: an invitee whose link does not carry the whole log is one
/// once the router's log arrives.
async fn send(node: &Node, gid: &GroupId, text: &str) {
    for _ in 0..300 {
        match node.group_send(gid, text).await {
            Ok(_) => return,
            Err(NodeError::NotAllowed(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("send failed: {e}"),
        }
    }
    panic!("never became a member");
}

async fn all_hold(dirs: &[&std::path::Path], gid: &GroupId, n: usize) -> bool {
    let first = history(dirs[0], gid);
    first.len() == n && dirs[1..].iter().all(|d| history(d, gid) == first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_chat_through_a_router_that_fails_over_and_comes_back() {
    let server = server().await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let (gid, _fps) = group_of(&dirs);
    let mut nodes = vec![];
    for d in &dirs {
        nodes.push(Some(started(config(d, &url, None)).await.unwrap()));
    }
    for (i, n) in nodes.iter().flatten().enumerate() {
        for k in 0..5 {
            send(n, &gid, &format!("m{i}-{k}")).await;
        }
    }
    until(30, "every member holding 15 messages", async || {
        all_hold(&dirs, &gid, 15).await
    })
    .await;
    // Exactly one routes.
    let routing: Vec<usize> = (0..3)
        .filter(|i| nodes[*i].as_ref().unwrap().group_routing(&gid))
        .collect();
    assert_eq!(routing.len(), 1, "one router");
    let r = routing[0];
    // The router stops; the others go on and the router catches up when it is back.
    nodes[r].take().unwrap().stop().await;
    for (i, n) in nodes.iter().enumerate() {
        if let Some(n) = n {
            for k in 0..3 {
                send(n, &gid, &format!("after{i}-{k}")).await;
            }
        }
    }
    let others: Vec<&std::path::Path> = (0..3).filter(|i| *i != r).map(|i| dirs[i]).collect();
    until(30, "the others holding 21 messages", async || {
        all_hold(&others, &gid, 21).await
    })
    .await;
    nodes[r] = Some(started(config(dirs[r], &url, None)).await.unwrap());
    until(30, "the returning router catching up", async || {
        all_hold(&dirs, &gid, 21).await
    })
    .await;
    for n in nodes.into_iter().flatten() {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_receives_nothing_new() {
    let server = server().await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let (gid, fps) = group_of(&dirs);
    let mut nodes = vec![];
    for d in &dirs {
        nodes.push(started(config(d, &url, None)).await.unwrap());
    }
    nodes[1].group_send(&gid, "before").await.unwrap();
    until(30, "everyone holding the first message", async || {
        all_hold(&dirs, &gid, 1).await
    })
    .await;
    let mut gone = nodes[2].group_events();
    nodes[0].group_remove(&gid, &fps[2]).await.unwrap();
    // The removed member hears of its removal.
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(u) = gone.recv().await {
            if matches!(u, GroupUpdate::Departed { .. }) {
                return;
            }
        }
    })
    .await
    .expect("the removed member was told");
    nodes[1].group_send(&gid, "after").await.unwrap();
    until(20, "the remaining members holding both", async || {
        all_hold(&dirs[..2], &gid, 2).await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts: Vec<String> = history(dirs[2], &gid).into_iter().map(|m| m.2).collect();
    assert_eq!(texts, ["before"]);
    // Its group stopped: nothing can be sent either.
    assert!(nodes[2].group_send(&gid, "let me in").await.is_err());
    assert!(!nodes[2].running_groups().contains(&gid));
    for n in nodes {
        n.stop().await;
    }
}

/// A removal made offline (`peerns group remove` with the node down) while the removed member
/// is offline too: once everyone is back, the others hold it and the removed member learns
/// of it from whoever routes, and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_made_offline_reaches_everyone_when_they_come_back() {
    let server = server().await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let (gid, fps) = group_of(&dirs);
    {
        let admin = Profile::open_desktop(dirs[0]).unwrap();
        offline::remove(&admin, &gid, &fps[2]).unwrap();
    }
    // The removed member comes first (it may take the router slot), then the others.
    let gone = started(config(dirs[2], &url, None)).await.unwrap();
    let mut gone_events = gone.group_events();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut nodes = vec![];
    for d in &dirs[..2] {
        nodes.push(started(config(d, &url, None)).await.unwrap());
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(u) = gone_events.recv().await {
            if matches!(u, GroupUpdate::Departed { .. }) {
                return;
            }
        }
    })
    .await
    .expect("the removed member learnt of its removal");
    // Its task stops right after it reports the departure.
    until(10, "the removed member's group to stop", async || {
        !gone.running_groups().contains(&gid)
    })
    .await;
    send(&nodes[1], &gid, "after").await;
    until(30, "the remaining members holding it", async || {
        all_hold(&dirs[..2], &gid, 1).await
    })
    .await;
    let members = |d: &std::path::Path| {
        let p = Profile::open_desktop(d).unwrap();
        offline::list(&p).unwrap()[0].members.len()
    };
    assert_eq!(members(dirs[1]), 2, "the member holds the removal");
    assert!(history(dirs[2], &gid).is_empty());
    gone.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

/// Group messages from others become notifications (one per batch, the group's name as
/// title, its ID as the conversation, the author as we name the contact), none for our own and
/// none while the group's chat is open in the foreground.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_messages_from_others_notify_unless_the_group_is_open() {
    use super::platform::{Notification, NotificationCategory};
    use super::tests::Recorder;
    let server = server().await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let (gid, fps) = group_of(&dirs);
    let notes = std::sync::Arc::new(Recorder::default());
    let mut cfg = config(dirs[1], &url, None);
    cfg.platform.notifier = Some(notes.clone());
    let a = started(config(dirs[0], &url, Some("ann"))).await.unwrap();
    let b = started(cfg).await.unwrap();
    send(&b, &gid, "mine").await;
    send(&a, &gid, "hello group").await;
    until(30, "a notification", async || !lock(&notes.0).is_empty()).await;
    assert_eq!(
        lock(&notes.0).drain(..).collect::<Vec<_>>(),
        [Notification {
            category: NotificationCategory::GroupMessage,
            title: "live".into(),
            body: format!("{}: hello group", fps[0].short()),
            conversation: Some(gid.to_hex()),
        }]
    );
    // Once ann is b's contact, she is named as b names her.
    befriend(&a, &b).await;
    lock(&notes.0).clear();
    send(&a, &gid, "named now").await;
    until(30, "a second notification", async || {
        !lock(&notes.0).is_empty()
    })
    .await;
    assert_eq!(
        lock(&notes.0).drain(..).next().unwrap().body,
        "ann: named now"
    );
    // With the group open on screen: only the event.
    b.set_open_chat(Some(&gid.to_hex())).unwrap();
    let mut events = b.group_events();
    a.group_send(&gid, "seen").await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(u) = events.recv().await {
            if matches!(&u, GroupUpdate::Message { message, .. } if message.text == "seen") {
                return;
            }
        }
    })
    .await
    .expect("the message arrived");
    assert!(lock(&notes.0).is_empty(), "{:?}", lock(&notes.0));
    assert!(b.set_open_chat(Some("not hex")).is_err());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_sent_as_a_message_joins_only_a_contact_who_trusts_the_sender() {
    let server = server().await;
    let url = server.url();
    let (_da, _db, a, b) = super::tests::alice_and_bob(&url).await;
    super::tests::befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let fb_key: Fingerprint = fb.parse().unwrap();
    let mut updates = b.group_events();
    let gid = a.group_create("book club").await.unwrap();

    // Bob knows Alice only at level 1 (an accepted request gives 2): the link arrives as a
    // message and nothing is joined.
    b.set_trust(&fa, Trust::Known).await.unwrap();
    let sent = a.group_send_invite(&gid, &fb_key).await.unwrap();
    until(10, "the invite message", async || {
        b.messages(&fa, 10)
            .await
            .unwrap()
            .iter()
            .any(|m| m.id == sent.id)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.running_groups().contains(&gid));

    // At level 2 the next invite joins the group, once, and Bob can talk in it.
    b.set_trust(&fa, Trust::Trusted).await.unwrap();
    a.group_send_invite(&gid, &fb_key).await.unwrap();
    let by = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(GroupUpdate::Invited { group, by }) = updates.recv().await
                && group == gid
            {
                return by;
            }
        }
    })
    .await
    .expect("joined by the invite");
    assert_eq!(by.to_hex(), fa);
    assert!(b.running_groups().contains(&gid));
    send(&b, &gid, "thanks for the invite").await;
    until(20, "Bob's message at Alice", async || {
        a.group_history(&gid, None, 10)
            .await
            .is_ok_and(|h| h.messages.iter().any(|m| m.text == "thanks for the invite"))
    })
    .await;
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// `n` members online in a group made offline (see [`group_of`]), each having sent one
/// message that every one holds (so everyone is linked through the router).
pub(super) async fn online_group(
    url: &str,
    n: usize,
) -> (Vec<tempfile::TempDir>, GroupId, Vec<Node>) {
    let tmp: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let (gid, _fps) = group_of(&dirs);
    let mut nodes = vec![];
    for d in &dirs {
        nodes.push(started(config(d, url, None)).await.unwrap());
    }
    for (i, node) in nodes.iter().enumerate() {
        send(node, &gid, &format!("hi{i}")).await;
    }
    until(30, "every member holding everyone's message", async || {
        all_hold(&dirs, &gid, n).await
    })
    .await;
    (tmp, gid, nodes)
}

/// The bytes of the group file `file` on the node, once it is whole here.
pub(super) async fn group_file_bytes(node: &Node, gid: &GroupId, file: &str) -> Option<Vec<u8>> {
    let f = node.group_file(gid, file).await.unwrap()?;
    (f.state == crate::groups::files::GroupFileState::Done)
        .then(|| std::fs::read(f.path.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_first_of_the_routing_that_began_before_it() {
    let server = server().await;
    let (_tmp, gid, nodes) = online_group(&server.url(), 2).await;
    for node in &nodes {
        let mut events = node.group_events();
        let routes = node.group_routing(&gid);
        match events.try_recv() {
            Ok(GroupUpdate::Role { group, router }) => assert!(group == gid && router && routes),
            other => assert!(!routes, "a router subscribing heard {other:?} first"),
        }
    }
    assert!(
        nodes.iter().any(|n| n.group_routing(&gid)),
        "someone routes"
    );
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_shared_in_a_group_reaches_every_member_and_one_offline_when_it_returns() {
    let server = server().await;
    let url = server.url();
    // Three online and linked; the fourth comes later.
    let late_dir = tempfile::tempdir().unwrap();
    let (mut tmp, gid, nodes) = online_group(&url, 3).await;
    {
        let p = Profile::open_desktop(late_dir.path()).unwrap();
        let link = nodes[0]
            .group_invite(&gid, &p.identity().fingerprint())
            .await
            .unwrap();
        offline::join(&p, &link).unwrap();
    }
    tmp.push(late_dir);
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    // A member that does not route shares ~2.3 MiB (not a whole number of chunks).
    let author = (0..3).find(|i| !nodes[*i].group_routing(&gid)).unwrap();
    let data: Vec<u8> = (0..2_400_000u32).map(|i| (i * 7 + i / 999) as u8).collect();
    let src = tmp[author].path().join("photo.jpg");
    std::fs::write(&src, &data).unwrap();
    let mut events = nodes[(author + 1) % 3].group_events();
    let m = nodes[author]
        .group_send_file(&gid, src.to_str().unwrap())
        .await
        .unwrap();
    let f = m.file.clone().expect("a file message");
    assert_eq!(
        (f.name.as_str(), f.size, f.mime.as_str()),
        ("photo.jpg", 2_400_000, "image/jpeg")
    );
    for n in &nodes {
        until(60, "every member holding the file", async || {
            group_file_bytes(n, &gid, &f.id).await.as_ref() == Some(&data)
        })
        .await;
    }
    // The receivers were told, with the path.
    let done = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(GroupUpdate::FileDone { file, path, .. }) = events.recv().await
                && file == f.id
            {
                return path;
            }
        }
    })
    .await
    .unwrap();
    assert!(done.is_some_and(|p| p.ends_with("photo.jpg")));
    // The history shows the file message the same way everywhere.
    let p = Profile::open_desktop(dirs[0]).unwrap();
    let msgs = offline::history(&p, &gid, 10).unwrap();
    assert!(
        msgs.iter()
            .any(|m| m.file.as_ref() == Some(&f) && m.text.is_empty())
    );
    drop(p);
    // The app's folder moved (an iOS update or restore): the paths stored before are stale,
    // the files are found all the same, to show and to serve.
    for n in &nodes {
        let moved = "UPDATE group_files SET path = '/gone/elsewhere/photo.jpg'";
        n.inner
            .db(move |c| {
                c.execute_batch(moved)
                    .map_err(crate::store::StoreError::from)
            })
            .await
            .unwrap();
    }
    assert_eq!(
        group_file_bytes(&nodes[0], &gid, &f.id).await,
        Some(data.clone())
    );
    // The fourth member was offline throughout: it gets the message by backfill, then the file.
    let late = started(config(dirs[3], &url, None)).await.unwrap();
    until(60, "the late member holding the file", async || {
        group_file_bytes(&late, &gid, &f.id).await.as_ref() == Some(&data)
    })
    .await;
    late.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_whose_bytes_were_altered_is_never_shown() {
    let server = server().await;
    let url = server.url();
    let (tmp, gid, nodes) = online_group(&url, 3).await;
    let author = (0..3).find(|i| !nodes[*i].group_routing(&gid)).unwrap();
    let router = (0..3).find(|i| nodes[*i].group_routing(&gid)).unwrap();
    let other = (0..3).find(|i| *i != router && *i != author).unwrap();
    let mut events: Vec<_> = nodes.iter().map(|n| n.group_events()).collect();
    // The author's copy changes after it signed the manifest: what it serves no longer
    // matches the signed hash (as if a holder altered the bytes on the way). The router may
    // fetch the file before the test changes it (a race the test cannot win every time on a
    // busy machine): it then holds the signed bytes, as it must, and a new file is tried.
    let mut refused = None;
    for attempt in 0..3u8 {
        let src = tmp[author].path().join(format!("notes-{attempt}.txt"));
        let signed = vec![b'a' + attempt; 1 << 20];
        std::fs::write(&src, &signed).unwrap();
        let m = nodes[author]
            .group_send_file(&gid, src.to_str().unwrap())
            .await
            .unwrap();
        let f = m.file.unwrap();
        let held = nodes[author]
            .group_file(&gid, &f.id)
            .await
            .unwrap()
            .unwrap();
        std::fs::write(held.path.unwrap(), vec![b'z'; 1 << 20]).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match events[router].recv().await {
                    Some(GroupUpdate::FileDone { file, path, .. }) if file == f.id => return path,
                    Some(_) => {}
                    None => panic!("the node stopped"),
                }
            }
        })
        .await
        .expect("the router's transfer ended");
        match done {
            // Fetched before the change: what is shown is what was signed.
            Some(path) => assert_eq!(std::fs::read(path).unwrap(), signed),
            None => {
                refused = Some(f);
                break;
            }
        }
    }
    // The router found the hash wrong and, with nobody else holding the file, gave it up.
    let f = refused.expect("the router fetched every file before it was altered");
    let info = nodes[router]
        .group_file(&gid, &f.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.state, crate::groups::files::GroupFileState::Refused);
    assert_eq!(info.path, None);
    // The other member got the altered bytes through the router (or nothing): never shown.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let info = nodes[other].group_file(&gid, &f.id).await.unwrap().unwrap();
    assert_ne!(info.state, crate::groups::files::GroupFileState::Done);
    assert_eq!(info.path, None);
    while let Ok(u) = events[other].try_recv() {
        assert!(
            !matches!(&u, GroupUpdate::FileDone { file, path: Some(_), .. } if *file == f.id),
            "the altered file was shown: {u:?}"
        );
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_files_than_are_fetched_at_once_all_arrive_in_turn() {
    let server = server().await;
    let url = server.url();
    let (tmp, gid, nodes) = online_group(&url, 3).await;
    // Nine at once: at most four are fetched at a time, the others when a fetch ends (without
    // that turn-taking, five would never start).
    let mut shared = vec![];
    for k in 0..9u32 {
        let src = tmp[1].path().join(format!("f{k}.bin"));
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * (k + 3)) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let m = nodes[1]
            .group_send_file(&gid, src.to_str().unwrap())
            .await
            .unwrap();
        shared.push((m.file.unwrap().id, data));
    }
    for n in [&nodes[0], &nodes[2]] {
        for (id, data) in &shared {
            until(60, "every file at every member", async || {
                group_file_bytes(n, &gid, id).await.as_ref() == Some(data)
            })
            .await;
        }
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_queued_without_waiting_keep_their_order_everywhere() {
    let server = server().await;
    let (tmp, gid, nodes) = online_group(&server.url(), 3).await;
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    // Two members queue 150 texts each, all before awaiting any of them.
    let mut queued = vec![];
    for (i, node) in nodes[1..].iter().enumerate() {
        for n in 0..150 {
            queued.push(node.group_queue(&gid, &format!("q{i}-{n}")).await.unwrap());
        }
    }
    for q in queued {
        q.stored().await.unwrap();
    }
    until(60, "every member holding the 303 messages", async || {
        all_hold(&dirs, &gid, 303).await
    })
    .await;
    let h = history(dirs[0], &gid);
    for (i, node) in nodes[1..].iter().enumerate() {
        let me = node.inner.fingerprint;
        let mine: Vec<(u64, String)> = h
            .iter()
            .filter(|(a, _, t)| *a == me && t.starts_with('q'))
            .map(|(_, s, t)| (*s, t.clone()))
            .collect();
        // Seq 1 was "hi"; the queued ones follow in the order queued.
        let want: Vec<(u64, String)> = (0..150).map(|n| (n + 2, format!("q{i}-{n}"))).collect();
        assert_eq!(mine, want);
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_in_the_background_stay_linked_and_keep_receiving() {
    let server = server().await;
    let (tmp, gid, nodes) = online_group(&server.url(), 3).await;
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let router = nodes
        .iter()
        .find(|n| n.group_routing(&gid))
        .expect("someone routes");
    let router_fp = router.inner.fingerprint.to_hex();
    let mut events: Vec<_> = nodes.iter().map(|n| n.subscribe()).collect();
    // The screens turn off: members announce their state every 10 s, past the router's 6 s
    // limit for a member gone from the namespace; they are still there, so it waits. Links
    // idle in the background close after half a second here, but not the group's.
    for n in &nodes {
        n.set_background_link_idle(Duration::from_millis(500));
        n.set_app_active(false);
    }
    tokio::time::sleep(Duration::from_secs(14)).await;
    for (i, rx) in events.iter_mut().enumerate() {
        while let Ok(ev) = rx.try_recv() {
            if let NodeEvent::PeerDisconnected { fingerprint, .. } = &ev {
                assert!(
                    *fingerprint != router_fp && nodes[i].inner.fingerprint.to_hex() != router_fp,
                    "node {i}: a link with the router closed in the background: {ev:?}"
                );
            }
        }
    }
    send(router, &gid, "still here").await;
    until(
        20,
        "every member holding the router's message",
        async || all_hold(&dirs, &gid, 4).await,
    )
    .await;
    for node in nodes {
        node.stop().await;
    }
}

/// A removal whose cutoff is below messages a member holds deletes them there, and the app
/// hears of it (an open chat drops them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_purged_by_a_removal_are_announced() {
    let server = server().await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let (gid, fps) = group_of(&dirs);
    // Every member holds the whole log, so two of them chat without the admin.
    let admin = Profile::open_desktop(dirs[0]).unwrap();
    let log = admin
        .store()
        .with_conn(|c| crate::groups::store::load_log(c, &gid))
        .unwrap()
        .unwrap();
    drop(admin);
    for d in &dirs[1..] {
        let p = Profile::open_desktop(d).unwrap();
        p.store()
            .with_conn(|c| {
                let tx = c.transaction()?;
                crate::groups::store::save_group(&tx, &log, 1)?;
                tx.commit()?;
                Ok(())
            })
            .unwrap();
    }
    let mut pair = vec![];
    for d in &dirs[1..] {
        pair.push(started(config(d, &url, None)).await.unwrap());
    }
    pair[1].group_send(&gid, "seen").await.unwrap();
    until(30, "the other member holding it", async || {
        history(dirs[1], &gid).len() == 1
    })
    .await;
    for n in pair {
        n.stop().await;
    }
    // The admin, who never saw it, removes its author offline (cutoff 0).
    {
        let admin = Profile::open_desktop(dirs[0]).unwrap();
        offline::remove(&admin, &gid, &fps[2]).unwrap();
    }
    let admin = started(config(dirs[0], &url, None)).await.unwrap();
    let member = started(config(dirs[1], &url, None)).await.unwrap();
    let mut events = member.group_events();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(u) = events.recv().await {
            if let GroupUpdate::Purged { author, cutoff, .. } = u {
                assert_eq!((author, cutoff), (fps[2], 0));
                return;
            }
        }
    })
    .await
    .expect("the purge was announced");
    assert!(history(dirs[1], &gid).is_empty());
    admin.stop().await;
    member.stop().await;
}

/// Events that cannot be stored (a full disk) do not go out: the sender is told, its group
/// starts again from what is stored, and its next message takes the seq the lost one would
/// have had (sent, the lost one would have been held by the others and not by us, and our next
/// one dropped everywhere as its duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_stored_does_not_go_out() {
    let server = server().await;
    let (tmp, gid, nodes) = online_group(&server.url(), 3).await;
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    let full = "CREATE TEMP TRIGGER full BEFORE INSERT ON group_messages
                BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;";
    let node = &nodes[1];
    let on = |sql: &'static str| {
        node.inner
            .db(move |c| c.execute_batch(sql).map_err(crate::store::StoreError::from))
    };
    on(full).await.unwrap();
    assert!(node.group_send(&gid, "lost").await.is_err());
    on("DROP TRIGGER temp.full").await.unwrap();
    let mut sent = false;
    for _ in 0..300 {
        if node.group_send(&gid, "kept").await.is_ok() {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "the group never ran again");
    until(30, "every member holding the message", async || {
        all_hold(&dirs, &gid, 4).await
    })
    .await;
    let me = node.inner.fingerprint;
    let mine: Vec<(u64, String)> = history(dirs[0], &gid)
        .into_iter()
        .filter(|(a, _, _)| *a == me)
        .map(|(_, s, t)| (s, t))
        .collect();
    assert_eq!(mine, [(1, "hi1".to_owned()), (2, "kept".to_owned())]);
    for node in nodes {
        node.stop().await;
    }
}

/// Group files count against the quota of unfinished incoming bytes, with files from contacts
/// (a group downloads its members' files by itself: one member could fill the phone): a file
/// over it is recorded as refused and not fetched; one that fits arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_over_the_quota_of_unfinished_bytes_is_not_fetched() {
    use crate::groups::files::GroupFileState;
    let server = server().await;
    let (tmp, gid, nodes) = online_group(&server.url(), 2).await;
    nodes[1].set_incoming_quota(1 << 20, 1 << 20).await.unwrap();
    let share = async |name: &str, size: usize| {
        let src = tmp[0].path().join(name);
        std::fs::write(&src, vec![5u8; size]).unwrap();
        let m = nodes[0]
            .group_send_file(&gid, src.to_str().unwrap())
            .await
            .unwrap();
        m.file.expect("a file message").id
    };
    let state = async |file: &str| {
        let f = nodes[1].group_file(&gid, file).await.unwrap();
        f.map(|f| f.state)
    };
    let big = share("big.bin", 2_000_000).await;
    until(30, "the big file refused", async || {
        state(&big).await == Some(GroupFileState::Refused)
    })
    .await;
    let small = share("small.bin", 100_000).await;
    until(30, "the small file whole", async || {
        state(&small).await == Some(GroupFileState::Done)
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}
