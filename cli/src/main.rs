//! `peerns`: the desktop/headless shell of PeerNS native (and the "home desktop" of the product).

mod bench;
mod call_media;
mod calls;
mod demo;
mod discover;
mod group;
mod group_call;
mod local_node;
mod meet;
mod messaging;
mod rpc;
mod servers;
mod usage;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use peerns_core::signaling::server::{DEFAULT_MAX_CONNS_PER_IP, EmbeddedServer, ServerConfig};
use peerns_core::store::Profile;

#[derive(Parser)]
#[command(
    name = "peerns",
    version,
    about = "PeerNS native: serverless peer-to-peer messenger"
)]
struct Cli {
    /// Profile folder (identity, database). Default: the platform data dir.
    #[arg(long, global = true, env = "PEERNS_PROFILE")]
    profile: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print this profile's identity (creating it on first use).
    Id {
        /// First move to a fresh persistent PeerJS ID (the old one was published or taken);
        /// contacts find the new one when you next talk, or at a rendezvous.
        #[arg(long)]
        new_peer_id: bool,
        /// One JSON object: {"fingerprint", "short", "peer_id"}.
        #[arg(long)]
        json: bool,
    },
    /// Run the embedded PeerJS-compatible signaling server.
    Signal(SignalArgs),
    /// Start a local signaling server and nodes in one process and show them talk.
    Demo,
    /// Join a namespace and print the live peer list.
    Discover(discover::DiscoverArgs),
    /// Stadium mode at a position: print who is near, nearest first.
    Nearby(discover::NearbyArgs),
    /// Run a node: accept contacts per policy, receive and send messages, print events.
    Node(messaging::NodeArgs),
    /// Contacts: list, share link, add (request), accept, trust.
    Contacts {
        #[command(subcommand)]
        cmd: messaging::ContactsCmd,
    },
    /// Send a message to a contact and wait until it is delivered.
    Send(messaging::SendArgs),
    /// Chat with a contact interactively (stdin lines are sent).
    Chat(messaging::ChatArgs),
    /// Groups: create, invite, join by link, remove, list, history (offline); chat (online).
    Group {
        #[command(subcommand)]
        cmd: group::GroupCmd,
    },
    /// The meeting room for everyone nearby (stadium mode at a position): the same input
    /// and output as `group chat`, plus `room` events.
    Meet(meet::MeetArgs),
    /// Call a contact (trusted at level 2 or more) and print the call's events.
    Call(calls::CallArgs),
    /// The call log, newest first (offline).
    Calls(calls::CallsArgs),
    /// Signed RPC to one's own devices: grants (offline), calls, the audit log.
    Rpc {
        #[command(subcommand)]
        cmd: rpc::RpcCmd,
    },
    /// Serve RPC to contacts at trust 3 within their grants; print the audit events.
    Serve(rpc::ServeArgs),
    /// Back files up into a serving contact's /incoming (resumable, skips what is there).
    Backup(rpc::BackupArgs),
    /// Baby-monitor viewer: ask an armed device for its camera and record the stream.
    Monitor(rpc::MonitorArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
}

#[derive(clap::Args)]
struct SignalArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Mount path.
    #[arg(long, default_value = "/")]
    path: String,
    /// API key clients must present.
    #[arg(long, default_value = "peerjs")]
    key: String,
    /// Queued messages for an absent peer expire (EXPIRE to the sender) after this long.
    #[arg(long, default_value_t = 5000)]
    expire_timeout_ms: u64,
    /// Clients silent (no HEARTBEAT) for this long are evicted.
    #[arg(long, default_value_t = 60000)]
    alive_timeout_ms: u64,
    /// Most clients registered at once.
    #[arg(long, default_value_t = 5000)]
    concurrent_limit: usize,
    /// Frames per second one socket may send on average (0 = no limit).
    #[arg(long, default_value_t = 100)]
    max_msgs_per_sec: u32,
    /// Frames one socket may send in a burst.
    #[arg(long, default_value_t = 200)]
    burst: u32,
    /// Most WebSockets open at once from one address (IPv6: per /64); more get HTTP 429.
    /// 0 = no cap. Loopback is not exempt: raise it for local load tests.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNS_PER_IP)]
    max_conns_per_ip: usize,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PEERNS_LOG")
                // webrtc-rs warns about routine ICE/DTLS events; only its errors matter here.
                .unwrap_or_else(|_| {
                    "warn,rtc=error,rtc_ice=error,rtc_dtls=error,webrtc=error".into()
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Id { new_peer_id, json } => {
            let dir = match cli.profile {
                Some(d) => d,
                None => Profile::default_dir().ok_or("no platform data dir; pass --profile")?,
            };
            let mut profile = Profile::open_desktop(&dir)?;
            if new_peer_id {
                profile.move_to_new_peer_id()?;
            }
            let id = profile.identity();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"fingerprint": id.fingerprint().to_hex(),
                        "short": id.fingerprint().short(), "peer_id": id.peer_id()})
                );
                return Ok(());
            }
            println!("fingerprint: {}", id.fingerprint().to_hex());
            println!("short:       {}", id.fingerprint().short());
            println!("peer id:     {}", id.peer_id());
            Ok(())
        }
        Cmd::Signal(a) => signal(a).await,
        Cmd::Demo => demo::run().await,
        Cmd::Discover(a) => discover::discover(a, cli.profile).await,
        Cmd::Nearby(a) => discover::nearby(a, cli.profile).await,
        Cmd::Node(a) => messaging::node(a, cli.profile).await,
        Cmd::Contacts { cmd } => messaging::contacts(cmd, cli.profile).await,
        Cmd::Send(a) => messaging::send(a, cli.profile).await,
        Cmd::Chat(a) => messaging::chat(a, cli.profile).await,
        Cmd::Group { cmd } => group::run(cmd, cli.profile).await,
        Cmd::Meet(a) => meet::meet(a, cli.profile).await,
        Cmd::Call(a) => calls::call(a, cli.profile).await,
        Cmd::Calls(a) => calls::calls(a, cli.profile),
        Cmd::Rpc { cmd } => rpc::rpc(cmd, cli.profile).await,
        Cmd::Serve(a) => rpc::serve(a, cli.profile).await,
        Cmd::Backup(a) => rpc::backup(a, cli.profile).await,
        Cmd::Monitor(a) => rpc::monitor(a, cli.profile).await,
        Cmd::Bench { what } => bench::run(what).await,
    }
}

async fn signal(a: SignalArgs) -> Result<()> {
    let config = ServerConfig {
        host: a.host,
        port: a.port,
        path: a.path,
        key: a.key,
        expire_timeout: Duration::from_millis(a.expire_timeout_ms),
        alive_timeout: Duration::from_millis(a.alive_timeout_ms),
        concurrent_limit: a.concurrent_limit,
        max_msgs_per_sec: a.max_msgs_per_sec,
        burst: a.burst,
        max_conns_per_ip: a.max_conns_per_ip,
    };
    let server = EmbeddedServer::start(config).await?;
    println!("PeerNS signaling server listening on {}", server.url());
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
