//! The meeting room for everyone nearby with real processes through the real PeerJS server
//! (`peer` 1.0.2): three people a few metres apart run `peerns meet`; they end in one room
//! (no invites), each sees every other's message exactly once, a late arrival gets what
//! was said, and the room goes on when the one routing it leaves.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerns_tests::{ServerKind, ServerOpts, TestServer, peerns_bin};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// What one `peerns meet` printed.
#[derive(Default)]
struct Seen {
    rooms: Vec<String>,
    /// Text → how often it was printed.
    messages: HashMap<String, usize>,
    queued: usize,
    router: bool,
}

struct Person {
    child: Child,
    stdin: ChildStdin,
    seen: Arc<Mutex<Seen>>,
}

impl Person {
    fn start(profile: &Path, url: &str, name: &str, lat: &str) -> Self {
        let mut child = Command::new(peerns_bin())
            .arg("--profile")
            .arg(profile)
            .args(["meet", "--signal", url, "--loopback", "--name", name])
            .args(["--lat", lat, "--lon", "2.29448", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start peerns meet");
        let stdin = child.stdin.take().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let out = seen.clone();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line).expect("a JSON line");
                let mut s = out.lock().unwrap();
                match v["event"].as_str() {
                    Some("room") => s.rooms.push(v["group"].as_str().unwrap().to_owned()),
                    Some("queued") => s.queued += 1,
                    Some("message") => {
                        *s.messages
                            .entry(v["text"].as_str().unwrap().to_owned())
                            .or_default() += 1;
                    }
                    Some("role") => s.router = v["role"] == "router",
                    other => panic!("unexpected event {other:?}"),
                }
            }
        });
        Self { child, stdin, seen }
    }

    fn room(&self) -> Option<String> {
        self.seen.lock().unwrap().rooms.last().cloned()
    }

    async fn say(&mut self, text: &str) {
        self.stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
    }

    fn printed(&self, text: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .messages
            .get(text)
            .copied()
            .unwrap_or(0)
    }
}

async fn until(secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_nearby_meet_without_invites_and_the_room_outlives_its_router() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let lats = ["48.85837", "48.85841", "48.85845"];
    let mut ada = Person::start(tmp[0].path(), &url, "ada", lats[0]);
    until(60, "ada's room", || ada.room().is_some()).await;
    let room = ada.room().unwrap();
    let mut bob = Person::start(tmp[1].path(), &url, "bob", lats[1]);
    until(60, "bob's room", || bob.room().is_some()).await;
    assert_eq!(bob.room(), Some(room.clone()), "bob joined ada's room");

    ada.say("hello from ada").await;
    bob.say("bob here").await;
    until(60, "ada and bob to see each other's message", || {
        ada.printed("bob here") == 1 && bob.printed("hello from ada") == 1
    })
    .await;

    // A late arrival gets what was said, and speaks.
    let mut cy = Person::start(tmp[2].path(), &url, "cy", lats[2]);
    until(60, "cy's room", || cy.room().is_some()).await;
    assert_eq!(cy.room(), Some(room.clone()), "cy joined the same room");
    until(60, "cy's backfill", || {
        cy.printed("hello from ada") == 1 && cy.printed("bob here") == 1
    })
    .await;
    cy.say("cy arrived").await;
    until(60, "everyone to see cy's message", || {
        ada.printed("cy arrived") == 1 && bob.printed("cy arrived") == 1
    })
    .await;

    // The one routing the room leaves; the others go on talking.
    let mut people = vec![ada, bob, cy];
    until(30, "someone to route the room", || {
        people.iter().any(|p| p.seen.lock().unwrap().router)
    })
    .await;
    let r = people
        .iter()
        .position(|p| p.seen.lock().unwrap().router)
        .unwrap();
    let mut gone = people.remove(r);
    gone.child.kill().await.unwrap();
    people[0].say("still here?").await;
    until(60, "the room to carry on without its router", || {
        people[1].printed("still here?") == 1
    })
    .await;
    for p in &people {
        let s = p.seen.lock().unwrap();
        assert!(
            s.messages.values().all(|n| *n == 1),
            "a message printed twice: {:?}",
            s.messages
        );
        assert_eq!(
            s.rooms,
            std::slice::from_ref(&room),
            "one room for everyone"
        );
    }
}
