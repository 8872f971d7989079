//! An invitee whose link carried only the group's creation (it was not the first invited)
//! holds a log that does not make it a member yet: what happens when it is the one online first.

use super::group_live_tests::{group_of, history};
use super::groups::GroupRole;
use super::tests::{config, server, started, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitee_that_routes_before_it_holds_the_log_learns_it_from_a_member() {
    let server = server().await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&std::path::Path> = tmp.iter().map(|t| t.path()).collect();
    // dirs[2]'s link holds the creation alone: it is pending. The member learns the whole log
    // from the creator, which then goes offline for good.
    let (gid, _) = group_of(&dirs);
    let creator = started(config(dirs[0], &url, None)).await.unwrap();
    let member = started(config(dirs[1], &url, None)).await.unwrap();
    until(30, "the member holding the whole log", async || {
        member.group_list().await.unwrap()[0].members.len() == 3
    })
    .await;
    member.stop().await;
    creator.stop().await;
    let invitee = started(config(dirs[2], &url, None)).await.unwrap();
    until(
        20,
        "the pending invitee routing (it is alone)",
        async || invitee.group_routing(&gid),
    )
    .await;
    assert_eq!(
        invitee.group_list().await.unwrap()[0].role,
        GroupRole::Pending
    );
    let member = started(config(dirs[1], &url, None)).await.unwrap();
    until(
        30,
        "the invitee learning the log from the member",
        async || invitee.group_list().await.unwrap()[0].role == GroupRole::Member,
    )
    .await;
    // Now it routes for real: messages go both ways.
    member.group_send(&gid, "from the member").await.unwrap();
    invitee.group_send(&gid, "from the invitee").await.unwrap();
    until(30, "both holding both messages", async || {
        [dirs[1], dirs[2]]
            .iter()
            .all(|d| history(d, &gid).len() == 2)
    })
    .await;
    member.stop().await;
    invitee.stop().await;
}
