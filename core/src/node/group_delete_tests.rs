//! Deleting a group from a phone: what it leaves behind (nothing), and what the others hear.

use std::time::Duration;

use super::group_live_tests::{group_file_bytes, online_group};
use super::groups as offline;
use super::tests::{config, server, started, until};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_group_leaves_nothing_behind_and_the_others_hear_we_left() {
    let server = server().await;
    let (tmp, gid, nodes) = online_group(&server.url(), 3).await;
    // The router deletes the group (its leave is appended by itself, then it is gone); another
    // member shared a file it holds.
    let leaver = (0..3)
        .find(|i| nodes[*i].group_routing(&gid))
        .expect("a router");
    let author = (leaver + 1) % 3;
    let src = tmp[author].path().join("notes.txt");
    std::fs::write(&src, vec![9u8; 300_000]).unwrap();
    let f = nodes[author]
        .group_send_file(&gid, src.to_str().unwrap())
        .await
        .unwrap()
        .file
        .expect("a file message");
    until(
        30,
        "the file reaching the member that deletes",
        async || {
            group_file_bytes(&nodes[leaver], &gid, &f.id)
                .await
                .is_some()
        },
    )
    .await;
    let folder = tmp[leaver]
        .path()
        .join("files")
        .join("groups")
        .join(gid.to_hex());
    assert!(folder.is_dir());
    let me = nodes[leaver].inner.fingerprint;

    nodes[leaver].group_delete(&gid).await.unwrap();
    let leaving = &nodes[leaver];
    assert!(!folder.exists(), "its files are deleted");
    assert!(leaving.group_list().await.unwrap().is_empty());
    assert!(!leaving.running_groups().contains(&gid));
    assert!(matches!(
        leaving.group_history(&gid, None, 10).await,
        Err(NodeError::InvalidInput(e)) if e == "unknown group"
    ));
    assert!(matches!(
        leaving.group_send(&gid, "still here?").await,
        Err(NodeError::InvalidInput(_))
    ));
    let mut nodes = nodes;
    let gone = nodes.remove(leaver);
    // It left before it forgot: the others no longer list it as a member.
    for n in &nodes {
        until(30, "the others hearing the member left", async || {
            let list = n.group_list().await.unwrap();
            list.iter()
                .any(|g| g.gid == gid && !g.members.contains_key(&me) && g.members.len() == 2)
        })
        .await;
    }
    // And they go on without it.
    nodes[0].group_send(&gid, "after").await.unwrap();
    until(30, "the others chatting on", async || {
        let h = nodes[1].group_history(&gid, None, 10).await.unwrap();
        h.messages.iter().any(|m| m.text == "after")
    })
    .await;
    // Nothing of it comes back on the next start.
    let dir = tmp[leaver].path().to_owned();
    gone.stop().await;
    let again = started(config(&dir, &server.url(), None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(again.group_list().await.unwrap().is_empty());
    assert!(!folder.exists());
    again.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_joined_by_a_link_and_never_reached_can_be_deleted() {
    let server = server().await;
    let (admin_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gid = {
        let admin = Profile::open_desktop(admin_dir.path()).unwrap();
        let me = Profile::open_desktop(dir.path()).unwrap();
        let gid = offline::create(&admin, "never met").unwrap();
        // Invite someone else first: our link then carries only the creation, so we stay pending.
        let other = Profile::open_desktop(tempfile::tempdir().unwrap().path())
            .unwrap()
            .identity()
            .fingerprint();
        offline::invite(&admin, &gid, &other).unwrap();
        let link = offline::invite(&admin, &gid, &me.identity().fingerprint()).unwrap();
        offline::join(&me, &link).unwrap();
        gid
    };
    let node = started(config(dir.path(), &server.url(), None))
        .await
        .unwrap();
    let list = node.group_list().await.unwrap();
    assert_eq!(list[0].role, offline::GroupRole::Pending);
    assert!(node.running_groups().contains(&gid));
    node.group_delete(&gid).await.unwrap();
    assert!(node.group_list().await.unwrap().is_empty());
    assert!(!node.running_groups().contains(&gid));
    // Deleting it again: no such group.
    assert!(matches!(
        node.group_delete(&gid).await,
        Err(NodeError::InvalidInput(e)) if e == "unknown group"
    ));
    node.stop().await;
}
