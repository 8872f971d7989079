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


class FixedLocation(p.LocationProvider):
    """A location provider that reports one position when started."""

    def __init__(self, lat, lon):
        self.fix = p.LocationFix(latitude=lat, longitude=lon, accuracy_m=5.0)
        self.running = False

    def start_updates(self, sink):
        self.running = True
        sink.on_fix(self.fix)

    def stop_updates(self):
        self.running = False


async def until(pred, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await pred()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def test_namespaces_and_stadium_mode():
    """Two nodes find each other in a named namespace and, with their platform location
    providers, in stadium mode; namespaces are kept across restarts."""

    async def main():
        with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db:
            la, lb = FixedLocation(48.85840, 2.29450), FixedLocation(48.85849, 2.29450)
            a = p.PeernsNode(config(da, "ada"), None, None, la)
            b = p.PeernsNode(config(db, "bob"), None, None, lb)
            await asyncio.gather(a.start(), b.start())
            events = Listener()
            sub = a.subscribe(events)
            try:
                fa, fb = a.identity().fingerprint, b.identity().fingerprint
                assert await a.join_namespace("Test Club!") == "test-club"
                assert await b.join_namespace("test club") == "test-club"
                assert a.namespaces() == ["test-club"]

                async def a_sees_b():
                    state = await a.namespace_peers("test-club")
                    return [x for x in state.peers if x.fingerprint == fb] and state

                state = await until(a_sees_b)
                # In the background the namespace beats slower but keeps its peers.
                a.set_app_active(False)
                b.set_app_active(False)
                await asyncio.sleep(3.0)
                assert await a_sees_b()
                a.set_app_active(True)
                b.set_app_active(True)
                [peer] = state.peers
                assert peer.name == "bob" and peer.disc_id.startswith("peerns2-ns-test-club-d-")
                assert peer.distance_m is None
                assert state.role in (p.NamespaceRole.ROUTER(1), p.NamespaceRole.MEMBER(1))
                await events.wait_for(
                    lambda ev: any(
                        e.is_namespace_peer() and e.peer.fingerprint == fb for e in ev
                    )
                )

                # Bob leaves: Ada sees him go.
                await b.leave_namespace("test-club")
                await until(lambda: _no_peers(a, "test-club"))
                with pytest.raises(p.PeernsError.InvalidInput):
                    await b.namespace_peers("test-club")
                with pytest.raises(p.PeernsError.InvalidInput):
                    await a.join_namespace("!!!")

                # Stadium mode: positions come from the platform providers, 10 m apart.
                a.start_stadium()
                b.start_stadium()

                async def providers_running():
                    return la.running and lb.running

                await until(providers_running)

                async def a_near_b():
                    near = await a.nearby()
                    return [x for x in near if x.fingerprint == fb]

                [near] = await until(a_near_b)
                assert near.name == "bob" and 5.0 < near.distance_m < 15.0
                assert all(len(c) == 7 for c in a.stadium_cells())
                await a.stop_stadium()
                assert a.stadium_cells() == []

                async def provider_stopped():
                    return not la.running

                await until(provider_stopped)
                assert await a.nearby() == []
                with pytest.raises(p.PeernsError.InvalidInput):
                    a.set_location(p.LocationFix(latitude=91.0, longitude=0.0, accuracy_m=1.0))
            finally:
                sub.cancel()
                await asyncio.gather(a.stop(), b.stop())

            # The joined namespace survives a restart.
            again = p.PeernsNode(config(da), None, None, None)
            await again.start()
            assert again.namespaces() == ["test-club"]
            await again.stop()

    asyncio.run(main())


async def _no_peers(node, ns):
    state = await node.namespace_peers(ns)
    return not state.peers
