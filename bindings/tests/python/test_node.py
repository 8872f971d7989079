"""PeernsNode through the generated Python bindings: two nodes, a signaling server started by
run_python.sh (PEERNS_SIGNAL_URL), loopback WebRTC."""

import asyncio
import os
import re
import tempfile
import threading

import pytest

import peerns_ffi as p

URL = os.environ.get("PEERNS_SIGNAL_URL", "ws://127.0.0.1:9000/")


class Listener(p.EventListener):
    """Collects events; called on a library thread."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def on_event(self, event):
        with self.lock:
            self.events.append(event)

    def snapshot(self):
        with self.lock:
            return list(self.events)

    async def wait_for(self, pred, timeout=10.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if pred(self.snapshot()):
                return self.snapshot()
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out; events: {self.snapshot()!r}")


def data_from(events, peer):
    return [e.data for e in events if e.is_data_received() and e.peer == peer]


def new_node(dir, name=None):
    return p.PeernsNode(
        p.NodeConfig(
            profile_dir=dir,
            signaling_url=URL,
            ice_servers=[],
            loopback_only=True,
            display_name=name,
        )
    )


def test_two_nodes_exchange_bytes():
    async def main():
        with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db:
            a, b = new_node(da, "alice"), new_node(db)
            assert a.signaling_state().is_offline()
            await asyncio.gather(a.start(), b.start())
            try:
                assert a.signaling_state().is_connected()
                assert b.signaling_state() == p.SignalingState.CONNECTED()

                ida, idb = a.identity(), b.identity()
                assert re.fullmatch(r"[0-9a-f]{64}", ida.fingerprint)
                assert ida.short and ida.peer_id.startswith("peerns2-")
                assert ida.display_name == "alice" and idb.display_name is None
                await b.set_display_name("bob")
                assert b.identity().display_name == "bob"

                la, lb = Listener(), Listener()
                sa, sb = a.subscribe(la), b.subscribe(lb)

                # Not connected yet: a coarse, typed error.
                with pytest.raises(p.PeernsError.Network):
                    await a.send(idb.peer_id, b"too early")

                await a.connect(idb.peer_id)
                msgs = [f"a->b {i}".encode() for i in range(10)]
                for m in msgs:
                    await a.send(idb.peer_id, m)
                events = await lb.wait_for(lambda ev: len(data_from(ev, ida.peer_id)) == 10)
                assert data_from(events, ida.peer_id) == msgs
                connected = [i for i, e in enumerate(events) if e.is_peer_connected()]
                first_data = next(i for i, e in enumerate(events) if e.is_data_received())
                assert connected and connected[0] < first_data
                assert events[connected[0]].peer == ida.peer_id

                # B answers over the same connection.
                await b.connect(ida.peer_id)
                for m in (b"pong 1", b"pong 2"):
                    await b.send(ida.peer_id, m)
                events = await la.wait_for(lambda ev: len(data_from(ev, idb.peer_id)) == 2)
                assert data_from(events, idb.peer_id) == [b"pong 1", b"pong 2"]
                assert any(e.is_peer_connected() and e.peer == idb.peer_id for e in events)

                sa.cancel()
                b.network_changed(True)
            finally:
                await asyncio.gather(a.stop(), b.stop())
            assert a.signaling_state().is_offline()
            with pytest.raises(p.PeernsError.Closed):
                await a.connect(idb.peer_id)
            del sb

    asyncio.run(main())


def test_constructor_rejects_bad_config():
    with pytest.raises(p.PeernsError.InvalidInput):
        new_node("")
    with pytest.raises(p.PeernsError.InvalidInput):
        p.PeernsNode(
            p.NodeConfig(
                profile_dir="/tmp/unused",
                signaling_url=URL,
                ice_servers=["http://not-ice"],
                loopback_only=True,
                display_name=None,
            )
        )


def test_bad_signaling_url_fails_start():
    async def main():
        with tempfile.TemporaryDirectory() as d:
            node = p.PeernsNode(
                p.NodeConfig(
                    profile_dir=d,
                    signaling_url="ftp://nowhere",
                    ice_servers=[],
                    loopback_only=True,
                    display_name=None,
                )
            )
            with pytest.raises(p.PeernsError.InvalidInput):
                await node.start()

    asyncio.run(main())
