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


def config(dir, name=None, url=URL, ice=()):
    return p.NodeConfig(
        profile_dir=dir,
        signaling_url=url,
        ice_servers=list(ice),
        loopback_only=True,
        display_name=name,
    )


def new_node(dir, name=None, keystore=None, notifier=None):
    return p.PeernsNode(config(dir, name), keystore, notifier, None)


class MemoryKeyStore(p.KeyStore):
    """A platform keystore in memory (a phone keeps this in its secure hardware)."""

    def __init__(self):
        self.key = None
        self.calls = []

    def load(self):
        self.calls.append("load")
        return self.key

    def create(self):
        self.calls.append("create")
        if self.key is not None:
            raise p.KeyStoreError.AlreadyExists()
        self.key = os.urandom(32)
        return self.key


class BrokenKeyStore(p.KeyStore):
    def load(self):
        raise p.KeyStoreError.Unavailable("device locked")

    def create(self):
        raise p.KeyStoreError.Unavailable("device locked")


class Notifications(p.Notifier):
    def __init__(self):
        self.posted = []

    def notify(self, notification):
        self.posted.append(notification)


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
                b.network_changed(p.NetworkKind.WIFI)
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
        p.PeernsNode(config("/tmp/unused", ice=["http://not-ice"]), None, None, None)


def test_bad_signaling_url_fails_start():
    async def main():
        with tempfile.TemporaryDirectory() as d:
            node = p.PeernsNode(config(d, url="ftp://nowhere"), None, None, None)
            with pytest.raises(p.PeernsError.InvalidInput):
                await node.start()

    asyncio.run(main())


def test_platform_keystore_and_notifier():
    """The identity key lives in the platform keystore; a message that no listener receives
    becomes a notification."""

    async def main():
        with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db:
            keys, notes = MemoryKeyStore(), Notifications()
            a, b = new_node(da), new_node(db, keystore=keys, notifier=notes)
            await asyncio.gather(a.start(), b.start())
            try:
                assert keys.calls == ["load", "create"] and len(keys.key) == 32
                assert not os.path.exists(os.path.join(db, "identity.key"))
                idb = b.identity()
                await a.connect(idb.peer_id)
                await a.send(idb.peer_id, "hé, are you there?".encode())
                for _ in range(500):
                    if notes.posted:
                        break
                    await asyncio.sleep(0.02)
                [n] = notes.posted
                assert n.category == p.NotificationCategory.MESSAGE
                assert n.title == a.identity().peer_id
                assert n.body == "hé, are you there?"
                assert n.conversation == a.identity().peer_id
            finally:
                await asyncio.gather(a.stop(), b.stop())

            # The same platform key opens the same identity.
            again = new_node(db, keystore=keys)
            await again.start()
            assert again.identity().fingerprint == idb.fingerprint
            assert keys.calls[-1] == "load"
            await again.stop()

            # A keystore failure is a clear error, and no identity is made up.
            with tempfile.TemporaryDirectory() as dc:
                broken = new_node(dc, keystore=BrokenKeyStore())
                with pytest.raises(p.PeernsError.Crypto, match="device locked"):
                    await broken.start()

    asyncio.run(main())


def test_log_level_can_change_at_run_time(capfd):
    """Core log lines reach stderr on the host (logcat / unified log on phones), filtered by a
    level that can change while nodes run."""

    async def cycle():
        with tempfile.TemporaryDirectory() as d:
            node = new_node(d)
            await node.start()
            await node.stop()

    p.set_log_level(p.LogLevel.INFO)
    asyncio.run(cycle())
    err = capfd.readouterr().err
    assert re.search(r"INFO peerns_core::node: node started peer_id=peerns2-", err), err
    assert "node stopped" in err

    p.set_log_level(p.LogLevel.ERROR)
    asyncio.run(cycle())
    assert "node started" not in capfd.readouterr().err
    p.set_log_level(p.LogLevel.INFO)
