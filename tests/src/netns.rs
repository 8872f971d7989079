//! A small emulated LAN of network namespaces for fault tests: one namespace per host, each with
//! `eth0` (10.213.0.H/24) joined by a veth pair to a port in a "switch" namespace. The switch is
//! a hub in this process (`AF_PACKET` sockets on the ports, run on a thread that entered the
//! switch namespace), so it can drop, delay or cut frames per host like `tc netem` would — this
//! kernel has no `sch_netem`, and a hub works on any kernel with veth.
//!
//! Every address lives only inside namespaces made here; [`Lab`] deletes them on drop.

use std::collections::BinaryHeap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What happens to frames a host sends (checked when they enter the hub) and, for `down`, to
/// frames sent to it too.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// Share of frames from the host dropped at random, 0.0 to 1.0.
    pub loss: f64,
    /// Added one-way delay for frames from the host.
    pub delay: Duration,
    /// Cut off: nothing in or out (a partition).
    pub down: bool,
}

/// Runs `f` on a thread that entered network namespace `ns` (`/var/run/netns/NS`).
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        enter(&path);
        f()
    })
    .join()
    .expect("thread in namespace")
}

fn enter(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: setns on a valid fd only changes this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Hosts on an emulated hub; namespaces are deleted and the hub stopped on drop.
pub struct Lab {
    switch: String,
    hosts: Vec<String>,
    impair: Arc<Mutex<Vec<Impairment>>>,
    stop: Arc<AtomicBool>,
    hub: Option<JoinHandle<()>>,
}

impl Lab {
    /// Creates `hosts` namespaces named `PREFIX-hN` plus `PREFIX-sw`. `Err` only when `ip netns
    /// add` itself is refused (no privilege): the caller skips. Anything later panics.
    pub fn new(prefix: &str, hosts: usize) -> Result<Self, String> {
        let switch = format!("{prefix}-sw");
        let _ = ip(&["netns", "del", &switch]);
        ip(&["netns", "add", &switch])?;
        let mut lab = Self {
            switch,
            hosts: vec![],
            impair: Arc::new(Mutex::new(vec![Impairment::default(); hosts])),
            stop: Arc::new(AtomicBool::new(false)),
            hub: None,
        };
        let sw = lab.switch.clone();
        for h in 0..hosts {
            let ns = format!("{prefix}-h{h}");
            let _ = ip(&["netns", "del", &ns]);
            ip(&["netns", "add", &ns]).unwrap();
            lab.hosts.push(ns.clone());
            let port = format!("p{h}");
            let addr = format!("{}/24", Self::addr_of(h));
            let steps: [&[&str]; 5] = [
                &[
                    "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
                &["-n", &sw, "link", "set", &port, "up"],
                &["-n", &ns, "link", "set", "lo", "up"],
                &["-n", &ns, "addr", "add", &addr, "dev", "eth0"],
                &["-n", &ns, "link", "set", "eth0", "up"],
            ];
            for s in steps {
                ip(s).unwrap();
            }
        }
        let ports: Vec<String> = (0..hosts).map(|h| format!("p{h}")).collect();
        let (impair, stop) = (lab.impair.clone(), lab.stop.clone());
        let path = format!("/var/run/netns/{sw}");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        lab.hub = Some(std::thread::spawn(move || {
            enter(&path);
            let socks: Vec<OwnedFd> = ports.iter().map(|p| packet_socket(p)).collect();
            ready_tx.send(()).unwrap();
            hub(&socks, &impair, &stop);
        }));
        ready_rx.recv().expect("hub started");
        Ok(lab)
    }

    /// The address of host `h`: 10.213.0.(h+1).
    pub fn addr_of(h: usize) -> String {
        format!("10.213.0.{}", h + 1)
    }

    /// The namespace name of host `h`.
    pub fn ns(&self, h: usize) -> &str {
        &self.hosts[h]
    }

    /// Sets host `h`'s impairment (takes effect for the next frame).
    pub fn set(&self, h: usize, i: Impairment) {
        self.impair.lock().unwrap()[h] = i;
    }

    /// Sets every host's impairment.
    pub fn set_all(&self, i: Impairment) {
        self.impair.lock().unwrap().fill(i);
    }

    /// A command run inside host `h` (`ip netns exec`), killed on drop.
    pub fn command(
        &self,
        h: usize,
        program: impl AsRef<std::ffi::OsStr>,
    ) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.hosts[h]]).arg(program);
        c.kill_on_drop(true);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.hub.take() {
            let _ = h.join();
        }
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A raw socket on interface `name` that sees every frame with its virtio-net header (so
/// offloaded checksums and segmentation pass through untouched).
fn packet_socket(name: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket syscalls on values built here; the fd is owned right away.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32);
        assert!(
            fd >= 0,
            "packet socket: {}",
            std::io::Error::last_os_error()
        );
        let owned = OwnedFd::from_raw_fd(fd);
        let on: libc::c_int = 1;
        let rc = libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
        assert_eq!(
            rc,
            0,
            "PACKET_VNET_HDR: {}",
            std::io::Error::last_os_error()
        );
        let cname = std::ffi::CString::new(name).unwrap();
        let index = libc::if_nametoindex(cname.as_ptr());
        assert!(index > 0, "no interface {name}");
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        let rc = libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind {name}: {}", std::io::Error::last_os_error());
        owned
    }
}

/// A frame waiting for its time, earliest first.
struct Pending {
    due: Instant,
    seq: u64,
    to: usize,
    frame: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// Frames held at most (bounds the hub's memory under heavy delay).
const MAX_PENDING: usize = 20_000;

fn hub(socks: &[OwnedFd], impair: &Mutex<Vec<Impairment>>, stop: &AtomicBool) {
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut queue = BinaryHeap::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; 70_000];
    let mut pfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let wait = queue
            .peek()
            .map(|p: &Pending| p.due.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        // SAFETY: pfds is a valid array of pollfd for the call.
        unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                wait.as_millis() as i32,
            )
        };
        for (from, pfd) in pfds.iter().enumerate() {
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            while let Some(n) = recv(pfd.fd, &mut buf) {
                let now = Instant::now();
                let imp = impair.lock().unwrap().clone();
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let roll = (rng >> 11) as f64 / (1u64 << 53) as f64;
                if imp[from].down || roll < imp[from].loss || queue.len() >= MAX_PENDING {
                    continue;
                }
                for to in (0..socks.len()).filter(|&t| t != from && !imp[t].down) {
                    seq += 1;
                    queue.push(Pending {
                        due: now + imp[from].delay,
                        seq,
                        to,
                        frame: buf[..n].to_vec(),
                    });
                }
            }
        }
        let now = Instant::now();
        while queue.peek().is_some_and(|p| p.due <= now) {
            let p = queue.pop().unwrap();
            if impair.lock().unwrap()[p.to].down {
                continue;
            }
            // SAFETY: sending an owned buffer on a valid socket; errors only drop the frame.
            unsafe {
                libc::send(
                    socks[p.to].as_raw_fd(),
                    p.frame.as_ptr().cast(),
                    p.frame.len(),
                    libc::MSG_DONTWAIT,
                )
            };
        }
    }
}

/// One received frame (virtio header included), skipping the copies of frames this host sent.
fn recv(fd: i32, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: recvfrom into an owned buffer and a zeroed sockaddr_ll of the right size.
        let (n, sll) = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let n = libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            );
            (n, sll)
        };
        if n <= 0 {
            return None;
        }
        if sll.sll_pkttype != libc::PACKET_OUTGOING {
            return Some(n as usize);
        }
    }
}
