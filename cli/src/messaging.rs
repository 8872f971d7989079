//! The home desktop's messaging commands: `peerns node` (a long-running node that accepts
//! contacts per policy and prints events), `peerns contacts ...`, `peerns send ...` and
//! `peerns chat` (interactive). All of them run a [`Node`] on the profile, so they need the
//! signaling server; only one may run per profile at a time (the persistent ID is claimed).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use peerns_core::node::{Contact, Node, NodeConfig, NodeError, NodeEvent, Trust};
use peerns_core::store::Profile;
use peerns_core::transport::{IceServer, TransportConfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Result;

/// How to reach the network.
#[derive(clap::Args)]
pub struct NetArgs {
    /// PeerJS signaling server, e.g. ws://127.0.0.1:9000/?key=peerjs
    #[arg(long)]
    signal: String,
    /// Display name (stored in the profile).
    #[arg(long)]
    name: Option<String>,
    /// STUN server URL (repeatable). Default: none with --loopback, else Google's.
    #[arg(long)]
    stun: Vec<String>,
    /// Gather ICE candidates on loopback only (local tests and demos).
    #[arg(long)]
    loopback: bool,
}

/// Which contact requests `peerns node` accepts by itself.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum AcceptPolicy {
    /// Every request becomes a contact at level 2.
    All,
    /// Requests wait for `peerns contacts accept`.
    None,
}

/// `peerns node`.
#[derive(clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Contact requests to accept without asking.
    #[arg(long, value_enum, default_value = "none")]
    accept: AcceptPolicy,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds; default: run until Ctrl-C.
    #[arg(long)]
    seconds: Option<f64>,
    /// Stadium mode at a fixed position (`LAT,LON`), as a phone at an event.
    #[arg(long, value_name = "LAT,LON", value_parser = parse_position)]
    stadium: Option<(f64, f64)>,
    /// Calls from contacts trusted at level 2 or more: `auto` answers them, `never` lets them
    /// ring out (calls from others never ring).
    #[arg(long, value_enum, default_value = "never")]
    answer: AnswerPolicy,
    /// Video to send when answering: `test`, a `.y4m` file, or a `/dev/videoN` camera.
    #[arg(long)]
    video: Option<String>,
    /// Audio to send when answering: `test` or `none`.
    #[arg(long, default_value = "test")]
    audio: String,
    /// Record each answered call to `DIR/CALL.mkv` (a browser's to `DIR/browser-ID-MS.mkv`).
    #[arg(long, value_name = "DIR")]
    record_dir: Option<PathBuf>,
    /// Start as an app in the background (slower heartbeats, as a phone with its screen
    /// off); SIGUSR2 switches between foreground and background.
    #[arg(long)]
    background: bool,
    /// In the background, close links that carried nothing for this many seconds (default
    /// 120; links something waits for, a call's, a group's and uploads' stay open).
    #[arg(long, value_name = "SECS")]
    background_link_idle: Option<f64>,
    /// Answer media calls from this browser PeerJS ID (repeatable). A browser has no
    /// authenticated session: its calls never ring and are not logged, and whoever registers
    /// that ID at the server can call. Off by default.
    #[arg(long, value_name = "PEER_ID")]
    allow_browser_call: Vec<String>,
}

fn parse_position(s: &str) -> std::result::Result<(f64, f64), String> {
    let (lat, lon) = s.split_once(',').ok_or("expected LAT,LON")?;
    let lat: f64 = lat.trim().parse().map_err(|e| format!("latitude: {e}"))?;
    let lon: f64 = lon.trim().parse().map_err(|e| format!("longitude: {e}"))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err("position out of range".into());
    }
    Ok((lat, lon))
}

/// Which calls `peerns node` answers by itself.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerPolicy {
    /// Answer every call that rings (only trusted contacts can ring).
    Auto,
    /// Never answer.
    Never,
}

/// `peerns contacts`.
#[derive(clap::Subcommand)]
pub enum ContactsCmd {
    /// List contacts and open requests (offline: reads the profile).
    List,
    /// Print this profile's share link.
    Link,
    /// Ask the owner of a share link to become a contact.
    Add {
        #[command(flatten)]
        net: NetArgs,
        /// `peerns2:<id>?fp=<fingerprint>`.
        link: String,
        /// Wait this long for the accept.
        #[arg(long, default_value_t = 30.0)]
        wait: f64,
    },
    /// Accept an incoming request.
    Accept {
        #[command(flatten)]
        net: NetArgs,
        /// The requester's fingerprint.
        fingerprint: String,
    },
    /// Set a contact's trust level: 0 blocked, 1 known, 2 trusted, 3 full access.
    Trust {
        #[command(flatten)]
        net: NetArgs,
        /// The contact's fingerprint.
        fingerprint: String,
        /// 0 to 3.
        level: i64,
    },
}

/// `peerns send`.
#[derive(clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    net: NetArgs,
    /// The contact's fingerprint.
    #[arg(long)]
    to: String,
    /// Send TEXT this many times, numbered (`TEXT 1`, `TEXT 2`, ...); 0 only flushes the outbox
    /// (no text is sent with `--file`).
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Wait at most this long for every waiting message to be delivered.
    #[arg(long, default_value_t = 30.0)]
    wait: f64,
    /// Send this file (repeatable) and wait until the contact has verified it.
    #[arg(long)]
    file: Vec<PathBuf>,
    /// The text.
    #[arg(default_value = "")]
    text: String,
}

/// `peerns chat`.
#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    net: NetArgs,
    /// The contact's fingerprint.
    #[arg(long)]
    with: String,
}

pub(crate) fn profile_dir(profile: Option<PathBuf>) -> Result<PathBuf> {
    match profile {
        Some(d) => Ok(d),
        None => Ok(Profile::default_dir().ok_or("no platform data dir; pass --profile")?),
    }
}

/// How long one-shot commands wait for the signaling server before acting anyway (a dial then
/// fails and what was queued stays in the outbox).
const REGISTER_WAIT: Duration = Duration::from_secs(60);

/// Starts the node and waits until its ID is registered: one-shot commands act right away.
pub(crate) async fn start(net: &NetArgs, profile: Option<PathBuf>) -> Result<Node> {
    let node = start_offline(net, profile).await?;
    if !node.wait_connected(REGISTER_WAIT).await {
        eprintln!("signaling server not reachable yet; going on offline");
    }
    Ok(node)
}

/// Starts the node without waiting for the network (as a phone does).
pub(crate) async fn start_offline(net: &NetArgs, profile: Option<PathBuf>) -> Result<Node> {
    let mut transport = if net.loopback {
        TransportConfig::loopback()
    } else {
        TransportConfig::default()
    };
    if !net.stun.is_empty() {
        transport.ice_servers = net.stun.iter().map(|u| IceServer::stun(u)).collect();
    }
    Ok(Node::start(NodeConfig {
        profile_dir: profile_dir(profile)?,
        signaling_url: net.signal.clone(),
        transport,
        display_name: net.name.clone(),
        platform: Default::default(),
        discovery: Default::default(),
    })
    .await?)
}

fn trust_name(t: Trust) -> &'static str {
    match t {
        Trust::Blocked => "blocked",
        Trust::Known => "known",
        Trust::Trusted => "trusted",
        Trust::FullAccess => "full-access",
    }
}

fn contact_json(c: &Contact) -> serde_json::Value {
    json!({
        "fingerprint": c.fingerprint.to_hex(), "name": c.name, "trust": trust_name(c.trust),
        "verified": c.verified, "peer_id": c.peer_id,
    })
}

/// An event as one JSON line (`None` for events the shell does not print).
fn event_json(e: &NodeEvent) -> Option<serde_json::Value> {
    Some(match e {
        // The registration of our ID: `started` comes at once, `connected` once reachable.
        NodeEvent::SignalingState(state) => {
            use peerns_core::node::SignalingState as S;
            match state {
                S::Connecting => json!({"event": "signaling", "state": "connecting"}),
                S::Connected => json!({"event": "signaling", "state": "connected"}),
                S::Reconnecting { attempt, .. } => {
                    json!({"event": "signaling", "state": "reconnecting", "attempt": attempt})
                }
                S::RateLimited { .. } => json!({"event": "signaling", "state": "rate_limited"}),
                S::Offline { reason } => {
                    json!({"event": "signaling", "state": "offline", "reason": reason})
                }
            }
        }
        NodeEvent::PeerConnected { peer, fingerprint } => {
            json!({"event": "connected", "peer": peer, "fingerprint": fingerprint})
        }
        NodeEvent::PeerDisconnected { peer, fingerprint } => {
            json!({"event": "disconnected", "peer": peer, "fingerprint": fingerprint})
        }
        NodeEvent::ContactRequest {
            fingerprint,
            name,
            peer,
        } => json!({"event": "request", "fingerprint": fingerprint, "name": name, "peer": peer}),
        NodeEvent::ContactRequestSent { fingerprint, name } => {
            json!({"event": "request_sent", "fingerprint": fingerprint, "name": name})
        }
        NodeEvent::ContactAdded { fingerprint, name } => {
            json!({"event": "contact", "fingerprint": fingerprint, "name": name})
        }
        NodeEvent::KeyChanged {
            peer,
            known,
            presented,
        } => json!({"event": "key-changed", "peer": peer, "known": known, "presented": presented}),
        NodeEvent::ContactSearch {
            fingerprint,
            searching,
        } => json!({"event": "search", "fingerprint": fingerprint, "searching": searching}),
        NodeEvent::IncompatiblePeer {
            peer,
            fingerprint,
            ours,
            theirs,
        } => json!({
            "event": "incompatible", "peer": peer, "fingerprint": fingerprint,
            "ours": ours.to_string(), "theirs": theirs.to_string(),
        }),
        NodeEvent::MessageReceived { message: m } | NodeEvent::MessageChanged { message: m } => {
            json!({
                "event": if matches!(e, NodeEvent::MessageReceived { .. }) { "message" } else { "changed" },
                "from": m.conv.to_hex(), "id": hex::encode(m.id), "seq": m.seq,
                "text": m.text().unwrap_or(""), "edited": m.edited, "deleted": m.deleted,
            })
        }
        NodeEvent::MessageStatus(s) => json!({
            "event": "status", "conversation": s.conversation, "up_to_seq": s.up_to_seq,
            "status": format!("{:?}", s.status).to_lowercase(),
        }),
        NodeEvent::FileReceived {
            conversation,
            id,
            path,
        } => json!({"event": "file", "from": conversation, "id": id, "path": path}),
        NodeEvent::FileDone {
            conversation,
            id,
            ok,
            outgoing,
        } => json!({
            "event": "file-done", "conversation": conversation, "id": id, "ok": ok,
            "outgoing": outgoing,
        }),
        NodeEvent::MonitorAlert {
            fingerprint,
            level_dbfs,
        } => json!({"event": "monitor_alert", "from": fingerprint, "level_dbfs": level_dbfs}),
        NodeEvent::MonitorStream {
            call,
            fingerprint,
            facing,
        } => json!({"event": "monitor_stream", "call": call, "to": fingerprint, "facing": facing}),
        _ => return crate::calls::call_event_json(e),
    })
}

pub(crate) fn print_event(json_out: bool, e: &NodeEvent) {
    let Some(j) = event_json(e) else { return };
    if json_out {
        println!("{j}");
    } else {
        match e {
            NodeEvent::MessageReceived { message: m } => {
                println!("<{}> {}", m.conv.short(), m.text().unwrap_or("(file)"));
            }
            _ => println!("{j}"),
        }
    }
}

/// `peerns node`: runs until Ctrl-C (or `--seconds`), accepting requests per policy.
pub async fn node(a: NodeArgs, profile: Option<PathBuf>) -> Result<()> {
    let answer_kinds = crate::calls::kinds_of(&a.audio, a.video.as_deref(), None)?;
    crate::call_media::check_video(a.video.as_deref())?;
    let sources = crate::call_media::Sources {
        video: a.video.clone(),
        audio: a.audio == "test",
    };
    let node = std::sync::Arc::new(start_offline(&a.net, profile).await?);
    let mut events = node.subscribe();
    let id = node.identity();
    let hello = json!({
        "event": "started", "fingerprint": id.fingerprint, "peer_id": id.peer_id,
        "link": node.share_link(),
    });
    println!("{hello}");
    if let Some((latitude, longitude)) = a.stadium {
        node.start_stadium(Default::default())?;
        node.set_location(peerns_core::node::platform::LocationFix {
            latitude,
            longitude,
            accuracy_m: 10.0,
        })?;
    }
    let until = a
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let sleep_until = async {
        match until {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    let mut usage = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    // SIGUSR2: the app goes to the background, or back (as a phone's screen turns off and on).
    let mut app_switch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())?;
    if let Some(secs) = a.background_link_idle {
        let idle = Duration::try_from_secs_f64(secs)
            .map_err(|_| "--background-link-idle takes seconds, from 0.1 to a day")?;
        node.set_background_link_idle(idle);
    }
    let mut active = !a.background;
    if a.background {
        node.set_app_active(false);
    }
    let mut answered = vec![];
    let mut browser_offers = (!a.allow_browser_call.is_empty())
        .then(|| node.allow_browser_calls(a.allow_browser_call.clone()));
    loop {
        tokio::select! {
            _ = usage.recv() => println!("{}", crate::usage::usage_event()),
            _ = app_switch.recv() => {
                active = !active;
                node.set_app_active(active);
                if a.json {
                    println!("{}", json!({"event": "app_active", "active": active}));
                }
            }
            Some(inc) = async {
                match browser_offers.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let record = a.record_dir.as_ref().map(|d| {
                    let ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    d.join(format!("browser-{}-{ms}.mkv", inc.peer()))
                });
                let media = crate::call_media::serve_browser(inc, sources.clone(), record, a.json);
                answered.push(tokio::spawn(async move {
                    if let Err(e) = media.await {
                        eprintln!("browser call: {e}");
                    }
                }));
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                print_event(a.json, &ev);
                if let (AcceptPolicy::All, NodeEvent::ContactRequest { fingerprint, .. }) = (a.accept, &ev) {
                    match node.accept_request(fingerprint).await {
                        Ok(c) => println!("{}", json!({"event": "accepted", "contact": contact_json(&c)})),
                        Err(e) => eprintln!("could not accept {fingerprint}: {e}"),
                    }
                }
                if let (AnswerPolicy::Auto, NodeEvent::IncomingCall { call, .. }) = (a.answer, &ev)
                {
                    match node.accept_call(call, answer_kinds) {
                        Ok(()) => {
                            let expect = node
                                .active_call()
                                .map_or(0, |c| crate::calls::track_count(c.caller_kinds));
                            let record = a.record_dir.as_ref().map(|d| d.join(format!("{call}.mkv")));
                            let media = crate::call_media::serve(
                                node.clone(), call.clone(), sources.clone(), expect, record, a.json, None,
                            );
                            answered.push(tokio::spawn(async move {
                                if let Err(e) = media.await {
                                    eprintln!("call media: {e}");
                                }
                            }));
                        }
                        Err(e) => eprintln!("could not answer call {call}: {e}"),
                    }
                }
            }
            _ = crate::shutdown_signal() => break,
            _ = &mut sleep_until => break,
        }
    }
    // A call still on is hung up, so its recording is closed before the node stops.
    if let Some(c) = node.active_call() {
        let _ = node.hang_up(&c.call);
    }
    for media in answered {
        let _ = tokio::time::timeout(Duration::from_secs(5), media).await;
    }
    node.stop().await;
    Ok(())
}

/// `peerns contacts ...`.
pub async fn contacts(cmd: ContactsCmd, profile: Option<PathBuf>) -> Result<()> {
    match cmd {
        ContactsCmd::List => {
            let profile = Profile::open_desktop(&profile_dir(profile)?)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let (list, reqs, waiting) = profile.store().with_conn(|c| {
                Ok((
                    peerns_core::contacts::list(c),
                    peerns_core::contacts::requests(c),
                    peerns_core::contacts::waiting::waiting(c, now),
                ))
            })?;
            let (list, reqs, waiting) = (list?, reqs?, waiting?);
            for c in &list {
                println!("{}", contact_json(c));
            }
            for r in &reqs {
                println!(
                    "{}",
                    json!({"request": if r.outgoing { "outgoing" } else { "incoming" },
                           "fingerprint": r.fingerprint.to_hex(), "name": r.name, "later": r.later})
                );
            }
            // Added while their owner could not be reached: asked once both are online.
            for w in &waiting {
                println!(
                    "{}",
                    json!({"request": "waiting", "fingerprint": w.fingerprint.to_hex(),
                           "peer": w.peer_id, "created_ms": w.created_ms})
                );
            }
            Ok(())
        }
        ContactsCmd::Link => {
            let profile = Profile::open_desktop(&profile_dir(profile)?)?;
            let id = profile.identity();
            println!(
                "{}",
                peerns_core::contacts::ShareLink {
                    peer_id: id.peer_id().to_owned(),
                    fingerprint: id.fingerprint(),
                }
            );
            Ok(())
        }
        ContactsCmd::Add { net, link, wait } => {
            let node = start(&net, profile).await?;
            let mut events = node.subscribe();
            let result = async {
                let fp = link
                    .parse::<peerns_core::contacts::ShareLink>()?
                    .fingerprint
                    .to_hex();
                // Whether the request went out; a link whose owner cannot be reached now is
                // kept, and this node sends the request if it reaches them while we wait.
                let mut sent = match node.request_contact(&link).await {
                    Ok(req) => {
                        println!("requested {} ({fp})", req.name);
                        true
                    }
                    Err(NodeError::Waiting(why)) => {
                        println!("{why}; trying for up to {wait} s");
                        false
                    }
                    Err(e) => return Err(e.into()),
                };
                let accepted = tokio::time::timeout(Duration::from_secs_f64(wait), async {
                    while let Some(ev) = events.recv().await {
                        match ev {
                            NodeEvent::ContactRequestSent { fingerprint, name }
                                if fingerprint == fp =>
                            {
                                println!("requested {name} ({fp})");
                                sent = true;
                            }
                            NodeEvent::ContactAdded { fingerprint, name } if fingerprint == fp => {
                                println!("{name} accepted");
                                return Ok(());
                            }
                            _ => {}
                        }
                    }
                    Err::<(), Box<dyn std::error::Error + Send + Sync>>("node stopped".into())
                })
                .await;
                match accepted {
                    Ok(done) => done,
                    Err(_) if sent => Err("no accept yet; the request stays pending".into()),
                    Err(_) => Err(
                        "not reached yet; the link is kept, and a node of this profile \
                                   (`peerns node`) sends the request once it can"
                            .into(),
                    ),
                }
            }
            .await;
            node.stop().await;
            result
        }
        ContactsCmd::Accept { net, fingerprint } => {
            let node = start(&net, profile).await?;
            let r = node.accept_request(&fingerprint).await;
            // Give the accept a moment to reach a connected requester.
            tokio::time::sleep(Duration::from_millis(500)).await;
            node.stop().await;
            println!("{}", contact_json(&r?));
            Ok(())
        }
        ContactsCmd::Trust {
            net,
            fingerprint,
            level,
        } => {
            let trust = Trust::from_level(level).ok_or("a level is 0, 1, 2 or 3")?;
            let node = start(&net, profile).await?;
            let r = node.set_trust(&fingerprint, trust).await;
            node.stop().await;
            Ok(r?)
        }
    }
}

/// Whether any message to `to` still waits for delivery.
async fn waiting(node: &Node, to: &str) -> Result<bool> {
    use peerns_core::node::MessageStatus::{Sent, Waiting};
    let all = node.messages(to, 10_000).await?;
    Ok(all
        .iter()
        .any(|m| m.outgoing && matches!(m.status, Waiting | Sent)))
}

/// `peerns send`: stores the messages, then waits until the contact has every waiting message.
/// Exit status 0 when all were delivered, an error otherwise (they stay in the outbox).
pub async fn send(a: SendArgs, profile: Option<PathBuf>) -> Result<()> {
    let node = start(&a.net, profile).await?;
    let mut events = node.subscribe();
    let result = async {
        let mut files = vec![];
        for path in &a.file {
            let m = node.send_file(&a.to, &path.to_string_lossy()).await?;
            files.push(hex::encode(m.id));
        }
        let count = if a.file.is_empty() { a.count } else { 0 };
        for i in 1..=count {
            let text = if count == 1 {
                a.text.clone()
            } else {
                format!("{} {i}", a.text)
            };
            node.send_message(&a.to, &text).await?;
        }
        let deadline = Instant::now() + Duration::from_secs_f64(a.wait);
        while waiting(&node, &a.to).await? || !files.is_empty() {
            if Instant::now() > deadline {
                return Err("not everything was delivered yet; it stays in the outbox".into());
            }
            while let Ok(ev) = events.try_recv() {
                if let NodeEvent::FileDone {
                    id,
                    ok,
                    outgoing: true,
                    ..
                } = ev
                    && files.contains(&id)
                {
                    if !ok {
                        return Err(format!("the contact refused file {id}").into());
                    }
                    files.retain(|f| *f != id);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "{}",
            json!({"delivered": true, "messages": count, "files": a.file.len()})
        );
        Ok(())
    }
    .await;
    node.stop().await;
    result
}

/// `peerns chat`: history, then incoming messages as they arrive; each stdin line is sent.
pub async fn chat(a: ChatArgs, profile: Option<PathBuf>) -> Result<()> {
    let node = start(&a.net, profile).await?;
    node.set_open_chat(Some(&a.with))?;
    for m in node.messages(&a.with, 50).await? {
        let who = if m.outgoing { "me" } else { "them" };
        println!("[{who}] {}", m.text().unwrap_or("(file)"));
    }
    node.mark_read(&a.with).await?;
    println!("-- type a message and press Enter; /quit to leave");
    let mut events = node.subscribe();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                match line.trim() {
                    "/quit" => break,
                    "" => {}
                    text => {
                        if let Err(e) = node.send_message(&a.with, text).await {
                            println!("!! {e}");
                        }
                    }
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                if let NodeEvent::MessageReceived { message } = &ev
                    && message.conv.to_hex() == a.with
                {
                    println!("[them] {}", message.text().unwrap_or("(file)"));
                    node.mark_read(&a.with).await?;
                }
            }
            _ = crate::shutdown_signal() => break,
        }
    }
    node.stop().await;
    Ok(())
}
