//! Group chat with real processes through the real PeerJS server (`peer` 1.0.2): four members
//! run `peerns group chat`; the router is SIGKILLed and started again three times while
//! everyone sends. Afterwards every member's `peerns group history --json` is the same and
//! holds every message a member reported as queued (stored) exactly once, and no chat printed
//! a message twice. An outsider holding someone else's invite is refused. Then a member shares
//! a 3 MB file with `/file PATH` and every other member's chat reports it arrived, identical. (A removed member
//! receiving nothing new is tested between real nodes in
//! `core/src/node/group_live_tests.rs`.)

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerns_core::store::Profile;
use peerns_tests::{ServerKind, ServerOpts, TestServer, peerns_cmd as peerns};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};

const MEMBERS: usize = 4;

/// Runs an offline command; its JSON output, or `None` if it failed.
async fn offline(profile: &Path, args: &[&str]) -> Option<Value> {
    let out = peerns(profile, args).output().await.unwrap();
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn fingerprint(profile: &Path) -> String {
    Profile::open_desktop(profile)
        .unwrap()
        .identity()
        .fingerprint()
        .to_hex()
}

/// (ID, text) of every message, in display order.
async fn history(profile: &Path, gid: &str) -> Vec<(String, String)> {
    let v = offline(profile, &["group", "history", gid, "--json"])
        .await
        .expect("group history");
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap().to_owned();
            (s("id"), s("text"))
        })
        .collect()
}

/// What one `group chat` process printed.
#[derive(Default)]
struct Seen {
    queued: Vec<String>,
    messages: Vec<String>,
    router: bool,
    /// Group files that arrived: (file ID, path).
    files: Vec<(String, String)>,
}

struct Member {
    dir: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    seen: Arc<Mutex<Seen>>,
    /// Messages printed by every run, and queued by every run.
    printed: Vec<String>,
    queued: Vec<String>,
}

impl Member {
    fn start(&mut self, url: &str, gid: &str) {
        let mut child = peerns(
            &self.dir,
            &[
                "group",
                "chat",
                "--signal",
                url,
                "--loopback",
                gid,
                "--json",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerns group chat");
        self.stdin = child.stdin.take();
        let seen = Arc::new(Mutex::new(Seen::default()));
        self.seen = seen.clone();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line).expect("a JSON line");
                let mut s = seen.lock().unwrap();
                match v["event"].as_str() {
                    Some("queued") => s.queued.push(v["id"].as_str().unwrap().to_owned()),
                    Some("message") => s.messages.push(v["id"].as_str().unwrap().to_owned()),
                    Some("role") => s.router = v["role"] == "router",
                    Some("file") => s.files.push((
                        v["file"].as_str().unwrap().to_owned(),
                        v["path"].as_str().expect("a verified file").to_owned(),
                    )),
                    Some("file_progress") => {}
                    other => panic!("unexpected event {other:?}"),
                }
            }
        });
        self.child = Some(child);
    }

    /// Stops the process (SIGKILL or SIGTERM) and keeps what it printed.
    async fn stop(&mut self, kill: bool) {
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            if kill {
                c.start_kill().unwrap();
            } else {
                let pid = c.id().unwrap() as i32;
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = std::mem::take(&mut *self.seen.lock().unwrap());
        self.printed.extend(s.messages);
        self.queued.extend(s.queued);
    }

    async fn say(&mut self, text: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(format!("{text}\n").as_bytes()).await;
        }
    }

    fn router(&self) -> bool {
        self.child.is_some() && self.seen.lock().unwrap().router
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_chat_survives_router_kills_and_refuses_outsiders() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..MEMBERS + 1)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    for t in &tmp {
        Profile::open_desktop(t.path()).unwrap();
    }
    let admin = tmp[0].path();
    let gid = offline(admin, &["group", "create", "crew", "--json"])
        .await
        .unwrap()["group"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut links = vec![];
    for t in &tmp[1..MEMBERS] {
        let fp = fingerprint(t.path());
        let v = offline(admin, &["group", "invite", &gid, &fp, "--json"])
            .await
            .unwrap();
        let link = v["invite"].as_str().unwrap().to_owned();
        let joined = offline(t.path(), &["group", "join", &link, "--json"])
            .await
            .expect("the invitee joins");
        assert_eq!(joined["group"], gid.as_str());
        links.push(link);
    }
    // An outsider holding someone else's invite is refused.
    let outsider = tmp[MEMBERS].path();
    assert!(
        offline(outsider, &["group", "join", &links[0], "--json"])
            .await
            .is_none()
    );
    assert!(
        offline(outsider, &["group", "list", "--json"])
            .await
            .unwrap()["groups"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let mut members: Vec<Member> = tmp[..MEMBERS]
        .iter()
        .map(|t| Member {
            dir: t.path().to_owned(),
            child: None,
            stdin: None,
            seen: Default::default(),
            printed: vec![],
            queued: vec![],
        })
        .collect();
    for m in &mut members {
        m.start(&url, &gid);
    }
    // Everyone sends every 250 ms; the router is killed (and started again) every ~5 s.
    let mut kills = 0;
    for round in 0..80 {
        for (i, m) in members.iter_mut().enumerate() {
            m.say(&format!("m{i}-{round}")).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if round % 20 == 19
            && kills < 3
            && let Some(r) = members.iter().position(Member::router)
        {
            members[r].stop(true).await;
            members[r].start(&url, &gid);
            kills += 1;
        }
    }
    assert!(kills >= 2, "a router was found and killed at least twice");
    let dirs: Vec<PathBuf> = members.iter().map(|m| m.dir.clone()).collect();
    let queued = |members: &[Member]| -> Vec<String> {
        let mut all = vec![];
        for m in members {
            all.extend(m.queued.iter().cloned());
            all.extend(m.seen.lock().unwrap().queued.iter().cloned());
        }
        all
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let mut all = vec![];
        for d in &dirs {
            all.push(history(d, &gid).await);
        }
        let same = all.iter().all(|h| *h == all[0]);
        let ids: Vec<&String> = all[0].iter().map(|(id, _)| id).collect();
        let missing: Vec<String> = queued(&members)
            .into_iter()
            .filter(|q| !ids.contains(&q))
            .collect();
        if same && missing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
            let roles: Vec<bool> = members.iter().map(Member::router).collect();
            panic!(
                "histories not the same and complete after 40 s: sizes {sizes:?}, routers \
                 {roles:?}, {} queued messages missing from member 0: {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = history(&dirs[0], &gid).await;
    let total = all.len();
    let mut ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    let mut texts: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
    ids.sort();
    ids.dedup();
    texts.sort();
    texts.dedup();
    assert_eq!((ids.len(), texts.len()), (total, total), "no message twice");
    assert!(
        total >= queued(&members).len() && total > 100,
        "{total} messages"
    );
    for m in &members {
        let mut printed: Vec<String> = m.printed.clone();
        printed.extend(m.seen.lock().unwrap().messages.iter().cloned());
        let n = printed.len();
        printed.sort();
        printed.dedup();
        assert_eq!(n, printed.len(), "a chat printed a message twice");
    }

    // `/file PATH` shares a file: every other member's chat reports it whole, with its bytes.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let src = dirs[1].join("slides.pdf");
    std::fs::write(&src, &data).unwrap();
    members[1].say(&format!("/file {}", src.display())).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !members
        .iter()
        .enumerate()
        .all(|(i, m)| i == 1 || !m.seen.lock().unwrap().files.is_empty())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the shared file did not reach every member in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (i, m) in members.iter().enumerate() {
        if i != 1 {
            let (_, path) = m.seen.lock().unwrap().files[0].clone();
            assert!(path.ends_with("slides.pdf"), "{path}");
            assert!(
                std::fs::read(&path).unwrap() == data,
                "member {i}'s copy differs"
            );
        }
    }

    for m in &mut members {
        m.stop(false).await;
    }

    // `group delete` forgets the group on one profile: its messages and its files.
    let gone = &dirs[3];
    let folder = gone.join("files").join("groups").join(&gid);
    assert!(folder.is_dir());
    let out = peerns(gone, &["group", "delete", &gid])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = offline(gone, &["group", "list", "--json"]).await.unwrap();
    assert!(list["groups"].as_array().unwrap().is_empty());
    assert!(!folder.exists());
    assert!(
        offline(gone, &["group", "history", &gid, "--json"])
            .await
            .is_none()
    );
}
