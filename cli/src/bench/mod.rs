//! `peerns bench ...`: performance goals live here, measured side by side in one run.

mod discovery;
mod failover;
mod groups;
mod idle;
mod media;
mod messaging;
mod rpc;
mod sfu;
mod sfu_call;
mod signaling;
mod transport;

use clap::Subcommand;

use crate::Result;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCmd {
    /// Embedded signaling server vs the official PeerJS server: registrations/s, relay latency.
    Signaling {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// OFFER relays timed per server.
        #[arg(long, default_value_t = 1000)]
        relays: usize,
        /// ID registrations timed per server and round.
        #[arg(long, default_value_t = 400)]
        registrations: usize,
        /// Alternating rounds (the median round counts).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Data connections: connect time, RTT, throughput, TURN RTT, vs bare webrtc-rs.
    Transport {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Connections timed (each side).
        #[arg(long, default_value_t = 50)]
        connects: usize,
        /// Pings timed (each side).
        #[arg(long, default_value_t = 1000)]
        pings: usize,
        /// Alternating throughput rounds (the median counts).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// 1:1 messaging: messages/s and session data MB/s end to end, vs the bare transport.
    Messaging {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Messages per round.
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// MiB of session data per round.
        #[arg(long, default_value_t = 64)]
        megabytes: usize,
        /// Rounds (the median counts).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Signed RPC: round trip, requests/s, backup upload vs file transfer, monitor start.
    Rpc {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Requests timed (round trips, then pipelined).
        #[arg(long, default_value_t = 2000)]
        calls: usize,
        /// MiB uploaded and transferred.
        #[arg(long, default_value_t = 64)]
        megabytes: usize,
        /// Alternating upload/transfer rounds (the median counts).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// An idle node with contacts linked and stadium mode on: wake-ups/s, CPU, memory.
    Idle {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Contacts linked to the measured node.
        #[arg(long, default_value_t = 20)]
        contacts: usize,
        /// Seconds measured.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
    },
    /// 1:1 calls: call setup (dial -> first frame at the callee), frame latency, frames/s,
    /// RTP packets/s and memory over a long call (debug builds say so).
    Media {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Calls whose setup is timed.
        #[arg(long, default_value_t = 10)]
        calls: usize,
        /// Length of the long call (latency, rates, memory), seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Group calls too (the `bench sfu` figures, shorter): seconds of the real call through
        /// the router (0: no group figures).
        #[arg(long, default_value_t = 5)]
        group_seconds: u64,
        /// Router kills in a 4-process group call.
        #[arg(long, default_value_t = 2)]
        failovers: usize,
    },
    /// Discovery: full visibility, failover (graceful and silent), traffic, router CPU.
    Discovery {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Simulated phones in one namespace (the default mode, with 1,000).
        #[arg(long, conflicts_with = "real")]
        sim: Option<usize>,
        /// Real `peerns discover` processes through a local signaling server.
        #[arg(long)]
        real: Option<usize>,
        /// Failover trials of each kind.
        #[arg(long, default_value_t = 20)]
        trials: usize,
    },
    /// Groups through the elected router: msgs/s, migration after router kills, backfill,
    /// lost and duplicated messages (real `peerns group chat` processes).
    Groups {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Members (processes).
        #[arg(long, default_value_t = 8)]
        members: usize,
        /// Messages of the throughput burst (split among the members).
        #[arg(long, default_value_t = 4000)]
        messages: usize,
        /// Router kills.
        #[arg(long, default_value_t = 5)]
        failovers: usize,
        /// Messages a returning member catches up on.
        #[arg(long, default_value_t = 10_000)]
        backfill: usize,
        /// The others send the missed messages in rounds of this many, each stored by
        /// everyone before the next (the backfill's size: a burst from all of them).
        #[arg(long, default_value_t = 500)]
        backfill_round: usize,
    },
    /// The group-call forwarder alone: packets/s on one core, 1 publisher → 8 subscribers.
    Sfu {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Seconds per round.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Alternating rounds (the median counts).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Participants of the real call through the router.
        #[arg(long, default_value_t = 4)]
        participants: u64,
        /// Seconds of the real call (0: skip it).
        #[arg(long, default_value_t = 10)]
        call_seconds: u64,
        /// Router kills in a call of `participants` real processes (0: skip them).
        #[arg(long, default_value_t = 3)]
        failovers: usize,
    },
}

/// Runs one benchmark.
pub async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Signaling {
            json,
            relays,
            registrations,
            rounds,
        } => signaling::run(json, relays, registrations, rounds).await,
        BenchCmd::Transport {
            json,
            connects,
            pings,
            rounds,
        } => transport::run(json, connects, pings, rounds).await,
        BenchCmd::Rpc {
            json,
            calls,
            megabytes,
            rounds,
        } => rpc::run(json, calls, megabytes, rounds).await,
        BenchCmd::Messaging {
            json,
            count,
            megabytes,
            rounds,
        } => messaging::run(json, count, megabytes, rounds).await,
        BenchCmd::Discovery {
            json,
            sim,
            real,
            trials,
        } => discovery::run(json, sim, real, trials).await,
        BenchCmd::Idle {
            json,
            contacts,
            seconds,
        } => idle::run(json, contacts, seconds).await,
        BenchCmd::Media {
            json,
            calls,
            seconds,
            group_seconds,
            failovers,
        } => media::run(json, calls, seconds, group_seconds, failovers).await,
        BenchCmd::Groups {
            json,
            members,
            messages,
            failovers,
            backfill,
            backfill_round,
        } => {
            let sizes = groups::Sizes {
                members,
                messages,
                failovers,
                backfill,
                backfill_round,
            };
            groups::run(json, sizes).await
        }
        BenchCmd::Sfu {
            json,
            seconds,
            rounds,
            participants,
            call_seconds,
            failovers,
        } => sfu::run(json, seconds, rounds, participants, call_seconds, failovers).await,
    }
}

/// The `p`-th percentile (0–100) of `samples` by nearest rank; sorts in place.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
    samples[rank.min(samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentile_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).rev().collect();
        assert_eq!(super::percentile(&mut v, 50.0), 50.0);
        assert_eq!(super::percentile(&mut v, 99.0), 99.0);
        assert_eq!(super::percentile(&mut v, 100.0), 100.0);
        assert!(super::percentile(&mut [], 50.0).is_nan());
    }
}
