//! Links idle in the background close; a contact still reaches us, and the foreground brings
//! the links back. Real nodes, embedded signaling server, loopback WebRTC.

use std::time::Duration;

use super::tests::{alice_and_bob, befriend, server, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_links_close_in_the_background_and_come_back_in_the_foreground() {
    let server = server().await;
    let (_da, _db, a, b) = alice_and_bob(&server.url()).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    until(10, "the link", async || b.is_connected(&fa)).await;

    // In the foreground nothing closes, however short the limit.
    b.set_background_link_idle(Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(b.is_connected(&fa) && a.is_connected(&fb));

    // The screen turns off: the idle link closes (looked at on a 0.3 s grid with this limit).
    b.set_app_active(false);
    until(15, "the idle link to close", async || {
        !a.is_connected(&fb) && !b.is_connected(&fa)
    })
    .await;

    // A message still reaches the phone in the background: the sender dials it.
    a.send_message(&fb, "wake up").await.unwrap();
    until(15, "the message at bob", async || {
        let got = b.messages(&fa, 10).await.unwrap();
        got.iter().any(|m| m.text() == Some("wake up"))
    })
    .await;
    // ... and the link it came on closes again once idle.
    until(15, "the link to close again", async || !b.is_connected(&fa)).await;

    // Back in the foreground, the phone dials the contacts it let go.
    b.set_app_active(true);
    until(10, "the link back", async || b.is_connected(&fa)).await;
    // And keeps them: the foreground never closes idle links.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(b.is_connected(&fa));

    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}
