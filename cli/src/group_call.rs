//! `peerns group call`: takes part in a group's call through its elected router. Sends the
//! test pattern (or a `.y4m` file or camera), a tone and optionally a shared screen; counts and
//! optionally records what every other participant sends, one MKV file per participant and
//! stream; prints JSON lines (`call`, `role`, `roster`, and once a second `media_stats` per
//! participant and stream and `media_sent` per stream of ours).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use peerns_core::calls::Kinds;
use peerns_core::calls::group::Phase;
use peerns_core::groups::GroupId;
use peerns_core::identity::Fingerprint;
use peerns_core::media::mkv::{MkvWriter, RecTrack};
use peerns_core::media::sfu::TrackKind;
use peerns_core::media::track::EncoderControl;
use peerns_core::media::{EncodedFrame, h264};
use peerns_core::node::{GroupCallMedia, GroupUpdate, Node, ReceivedFrame};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Result;
use crate::call_media::{CAMERA_SIZE, SCREEN_SIZE, check_video, send_video, tone};
use crate::messaging::{NetArgs, start_offline};

/// `peerns group call` arguments besides the network and the group.
#[derive(clap::Args)]
pub struct CallArgs {
    /// Camera: `test` (moving pattern), a `.y4m` file or `/dev/videoN`; none if absent.
    #[arg(long)]
    video: Option<String>,
    /// Microphone: `test` (a 440 Hz tone) or `none`.
    #[arg(long, default_value = "test")]
    audio: String,
    /// Screen share: `test` (a second pattern); none if absent.
    #[arg(long)]
    screen: Option<String>,
    /// Record every other participant's streams here, one MKV file each.
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// Leave after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// JSON lines.
    #[arg(long)]
    json: bool,
    /// N of Last-N when we route the call: the video of the N most recent speakers reaches
    /// each participant, the others' as thumbnails (a keyframe every 2 s, in turn).
    #[arg(long, default_value_t = 4)]
    last_n: u8,
    /// Let the browser with this PeerJS ID into the call while we route it (it calls our
    /// persistent ID with the PeerNS PWA's metadata `{groupCall: true, groupId: GID}`);
    /// admins only; repeatable.
    #[arg(long = "allow-browser", value_name = "PEER_ID")]
    allow_browser: Vec<String>,
    /// How far our camera's picture must be turned clockwise to stand upright (0, 90, 180,
    /// 270), as a phone held sideways says it: announced in the call and on its packets.
    #[arg(long, default_value_t = 0)]
    video_rotation: u16,
    /// How often `media_stats` is printed, ms (benchmarks want it finer).
    #[arg(long, default_value_t = 1000, hide = true)]
    stats_ms: u64,
}

fn kind_name(k: TrackKind) -> &'static str {
    match k {
        TrackKind::Audio => "audio",
        TrackKind::Video => "video",
        TrackKind::Screen => "screen",
    }
}

/// What we received of one participant's stream.
struct Stream {
    frames: u64,
    bytes: u64,
    size: Option<(u32, u32)>,
    file: Option<MkvWriter<BufWriter<File>>>,
    /// Recording waits for the first keyframe.
    keyed: bool,
}

impl Stream {
    fn new(dir: Option<&Path>, from: &Fingerprint, f: &ReceivedFrame) -> Result<Self> {
        let file = match dir {
            Some(d) => {
                let path = d.join(format!("{}-{}.mkv", from.to_hex(), kind_name(f.kind)));
                let out = BufWriter::new(File::create(path)?);
                Some(MkvWriter::new(out, vec![RecTrack { codec: f.codec }]))
            }
            None => None,
        };
        Ok(Self {
            frames: 0,
            bytes: 0,
            size: None,
            file,
            keyed: false,
        })
    }

    fn take(&mut self, f: &EncodedFrame, ms: u64) -> Result<()> {
        self.frames += 1;
        self.bytes += f.data.len() as u64;
        if f.keyframe
            && let Some(sps) = h264::split_nals(&f.data)
                .into_iter()
                .find(|n| h264::nal_type(n) == h264::NAL_SPS)
        {
            self.size = h264::sps_size(sps).or(self.size);
        }
        self.keyed |= f.keyframe;
        if let Some(w) = self.file.as_mut().filter(|_| self.keyed) {
            w.write_frame(0, ms, f.keyframe, &f.data)?;
        }
        Ok(())
    }
}

fn print_stats(streams: &BTreeMap<(Fingerprint, TrackKind), Stream>, sent: &Sent) {
    for (kind, n) in sent {
        let j = json!({"event": "media_sent", "kind": kind_name(*kind), "frames": n.load(Relaxed)});
        println!("{j}");
    }
    for ((from, kind), s) in streams {
        let mut j = json!({"event": "media_stats", "from": from.to_hex(), "kind": kind_name(*kind),
                           "frames": s.frames, "bytes": s.bytes});
        if *kind != TrackKind::Audio {
            let (w, h) = s.size.unwrap_or((0, 0));
            j["width"] = w.into();
            j["height"] = h.into();
        }
        println!("{j}");
    }
}

/// Frames of one kind we sent: queued on at least one connection.
type Sent = Vec<(TrackKind, Arc<AtomicU64>)>;

/// Starts our encoders; returns their tasks, the channels their controls go to and the
/// counters of frames sent.
fn start_senders(
    media: &GroupCallMedia,
    a: &CallArgs,
) -> (Vec<JoinHandle<()>>, Vec<mpsc::Sender<EncoderControl>>, Sent) {
    let (mut tasks, mut controls, mut sent) = (vec![], vec![], vec![]);
    let counted = |kind: TrackKind, sent: &mut Sent| {
        let n = Arc::new(AtomicU64::new(0));
        sent.push((kind, n.clone()));
        let p = media.publisher();
        move |f: EncodedFrame| {
            if p.push(kind, &f) > 0 {
                n.fetch_add(1, Relaxed);
            }
        }
    };
    if a.audio == "test" {
        tasks.push(tokio::spawn(tone(counted(TrackKind::Audio, &mut sent))));
    }
    for (kind, source, size) in [
        (TrackKind::Video, a.video.clone(), CAMERA_SIZE),
        (TrackKind::Screen, a.screen.clone(), SCREEN_SIZE),
    ] {
        let Some(source) = source else { continue };
        let (tx, rx) = mpsc::channel(16);
        controls.push(tx);
        let push = counted(kind, &mut sent);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = send_video(push, rx, &source, size).await {
                eprintln!("{}: {e}", kind_name(kind));
            }
        }));
    }
    (tasks, controls, sent)
}

/// Runs `peerns group call`.
pub async fn run(net: &NetArgs, profile: Option<PathBuf>, g: GroupId, a: CallArgs) -> Result<()> {
    check_video(a.video.as_deref())?;
    if a.audio != "test" && a.audio != "none" {
        return Err("--audio takes test or none".into());
    }
    if a.screen.as_deref().is_some_and(|s| s != "test") {
        return Err("--screen takes test".into());
    }
    if let Some(d) = &a.record_dir {
        std::fs::create_dir_all(d)?;
    }
    let mut kinds = Kinds::default();
    for (on, k) in [
        (a.audio == "test", Kinds::AUDIO),
        (a.video.is_some(), Kinds::VIDEO),
        (a.screen.is_some(), Kinds::SCREEN),
    ] {
        if on {
            kinds = kinds.union(k);
        }
    }
    let node = start_offline(net, profile).await?;
    if !node.running_groups().contains(&g) {
        node.stop().await;
        return Err(format!("group {g} is not one of ours").into());
    }
    let mut updates = node.group_events();
    let result = call(&node, &g, &a, kinds, &mut updates).await;
    let _ = node.group_call_leave(&g).await;
    if a.json {
        println!("{}", json!({"event": "call", "state": "ended"}));
    }
    node.stop().await;
    result
}

async fn call(
    node: &Node,
    g: &GroupId,
    a: &CallArgs,
    kinds: Kinds,
    updates: &mut mpsc::UnboundedReceiver<GroupUpdate>,
) -> Result<()> {
    node.set_group_call_last_n(a.last_n)?;
    let media = crate::group::as_member(|| node.group_call_join(g, kinds)).await?;
    for id in &a.allow_browser {
        node.allow_group_call_guest(g, id).await?;
    }
    if a.video_rotation != 0 {
        let state = peerns_core::calls::MediaState {
            rotation: peerns_core::calls::MediaState::rotation_of(a.video_rotation),
            ..Default::default()
        };
        node.group_call_set_media(g, state).await?;
    }
    let (senders, controls, sent) = start_senders(&media, a);
    let (_publisher, mut frames, mut requests) = media.into_parts();
    let start = Instant::now();
    let end = a
        .seconds
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut streams: BTreeMap<(Fingerprint, TrackKind), Stream> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(a.stats_ms.max(50)));
    let until_end = async {
        match end {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    let shutdown = crate::shutdown_signal();
    tokio::pin!(until_end, shutdown);
    let result = loop {
        tokio::select! {
            f = frames.recv() => {
                let Some(f) = f else { break Ok(()) };
                let ms = start.elapsed().as_millis() as u64;
                let stream = match streams.entry((f.from, f.kind)) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => match Stream::new(a.record_dir.as_deref(), &f.from, &f) {
                        Ok(s) => e.insert(s),
                        Err(err) => break Err(err),
                    },
                };
                if let Err(e) = stream.take(&f.frame, ms) {
                    break Err(e);
                }
            }
            c = requests.recv() => {
                let Some(c) = c else { break Ok(()) };
                for tx in &controls {
                    let _ = tx.try_send(c);
                }
            }
            u = updates.recv() => match u {
                Some(u) => print_update(&u, g, a.json),
                None => break Ok(()),
            },
            _ = tick.tick() => if a.json {
                print_stats(&streams, &sent);
            },
            () = &mut until_end => break Ok(()),
            () = &mut shutdown => break Ok(()),
        }
    };
    for t in senders {
        t.abort();
    }
    if a.json {
        print_stats(&streams, &sent);
    }
    for (_, s) in streams {
        if let Some(w) = s.file {
            w.finish()?;
        }
    }
    result
}

fn print_update(u: &GroupUpdate, g: &GroupId, json: bool) {
    match u {
        GroupUpdate::CallPhase {
            group,
            phase,
            media_peer,
        } if group == g => {
            let state = match phase {
                Phase::Out => "out",
                Phase::Waiting => "waiting",
                Phase::Connecting => "connecting",
                Phase::Connected => "connected",
            };
            let via = media_peer.map(|f| f.to_hex());
            if json {
                println!(
                    "{}",
                    json!({"event": "call", "state": state, "media_peer": via})
                );
            } else if let Some(via) = via {
                println!("-- call: {state} (media with {via})");
            } else {
                println!("-- call: {state}");
            }
        }
        GroupUpdate::CallRoster {
            group,
            participants,
        } if group == g => {
            if json {
                let list: Vec<_> = participants
                    .iter()
                    .map(|p| {
                        json!({"fingerprint": p.member.to_hex(), "kinds": p.kinds.names(),
                               "connected": p.connected, "muted": p.state.muted,
                               "camera_off": p.state.camera_off,
                               "rotation": p.state.rotation})
                    })
                    .collect();
                println!("{}", json!({"event": "roster", "participants": list}));
            } else {
                println!("-- in the call: {}", participants.len());
            }
        }
        GroupUpdate::CallSpeakers { group, speaking } if group == g => {
            let who: Vec<String> = speaking.iter().map(|f| f.to_hex()).collect();
            if json {
                println!("{}", json!({"event": "speakers", "speaking": who}));
            } else {
                println!("-- speaking: {}", who.join(", "));
            }
        }
        GroupUpdate::Role { group, router } if group == g => {
            let role = if *router { "router" } else { "member" };
            if json {
                println!("{}", json!({"event": "role", "role": role}));
            } else {
                println!("-- role: {role}");
            }
        }
        _ => {}
    }
}
