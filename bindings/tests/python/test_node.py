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


def data_from(events, fingerprint):
    return [e.data for e in events if e.is_data_received() and e.fingerprint == fingerprint]


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


def of_kind(events, kind, **fields):
    """The events of one kind (e.g. "contact_added") whose fields have the given values."""
    return [
        e
        for e in events
        if getattr(e, f"is_{kind}")() and all(getattr(e, k) == v for k, v in fields.items())
    ]


async def make_contacts(a, la, b, lb):
    """A asks B (share link), B accepts: contacts both ways (trust Trusted)."""
    fa, fb = a.identity().fingerprint, b.identity().fingerprint
    req = await a.request_contact(b.share_link())
    assert req.outgoing and req.fingerprint == fb
    await lb.wait_for(lambda ev: of_kind(ev, "contact_request", fingerprint=fa))
    contact = await b.accept_request(fa)
    assert contact.fingerprint == fa and contact.trust == p.Trust.TRUSTED
    await la.wait_for(lambda ev: of_kind(ev, "contact_added", fingerprint=fb))


async def start_all(*nodes):
    """Starts the nodes (a start returns at once, offline) and waits until they are registered."""
    await asyncio.gather(*(n.start() for n in nodes))
    assert all(await asyncio.gather(*(n.wait_connected(10_000) for n in nodes)))


def test_two_nodes_exchange_bytes():
    async def main():
        with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db:
            a, b = new_node(da, "alice"), new_node(db)
            assert a.signaling_state().is_offline()
            await start_all(a, b)
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

                # Peers are addressed by fingerprint. Not connected yet: a coarse, typed error;
                # not a contact: no route to dial.
                with pytest.raises(p.PeernsError.Network):
                    await a.send(idb.fingerprint, b"too early")
                with pytest.raises(p.PeernsError.NotAllowed):
                    await a.connect(idb.fingerprint)
                with pytest.raises(p.PeernsError.InvalidInput):
                    await a.connect(idb.peer_id)
                await make_contacts(a, la, b, lb)
                await a.connect(idb.fingerprint)

                msgs = [f"a->b {i}".encode() for i in range(10)]
                for m in msgs:
                    await a.send(idb.fingerprint, m)
                events = await lb.wait_for(lambda ev: len(data_from(ev, ida.fingerprint)) == 10)
                assert data_from(events, ida.fingerprint) == msgs
                connected = [i for i, e in enumerate(events) if e.is_peer_connected()]
                first_data = next(i for i, e in enumerate(events) if e.is_data_received())
                assert connected and connected[0] < first_data
                assert events[connected[0]].peer == ida.peer_id
                assert events[connected[0]].fingerprint == ida.fingerprint

                # B answers over the same connection.
                await b.connect(ida.fingerprint)
                for m in (b"pong 1", b"pong 2"):
                    await b.send(ida.fingerprint, m)
                events = await la.wait_for(lambda ev: len(data_from(ev, idb.fingerprint)) == 2)
                assert data_from(events, idb.fingerprint) == [b"pong 1", b"pong 2"]
                assert of_kind(events, "peer_connected", peer=idb.peer_id, fingerprint=idb.fingerprint)

                sa.cancel()
                b.network_changed(p.NetworkKind.WIFI, "wlan0")
            finally:
                await asyncio.gather(a.stop(), b.stop())
            assert a.signaling_state().is_offline()
            with pytest.raises(p.PeernsError.Closed):
                await a.connect(idb.fingerprint)
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
    """The identity key lives in the platform keystore; a contact request, and a message whose
    chat is not open, become notifications."""

    async def main():
        with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db:
            keys, notes = MemoryKeyStore(), Notifications()
            a, b = new_node(da, "alice"), new_node(db, keystore=keys, notifier=notes)
            await start_all(a, b)
            la, lb = Listener(), Listener()
            subs = a.subscribe(la), b.subscribe(lb)
            try:
                assert keys.calls == ["load", "create"] and len(keys.key) == 32
                assert not os.path.exists(os.path.join(db, "identity.key"))
                ida, idb = a.identity(), b.identity()
                await make_contacts(a, la, b, lb)
                # The request was a notification.
                [req] = notes.posted
                assert req.category == p.NotificationCategory.CONTACT_REQUEST
                assert (req.title, req.conversation) == ("alice", ida.fingerprint)
                notes.posted.clear()

                # The open chat in the foreground raises no notification; another one does.
                b.set_open_chat(ida.fingerprint)
                await a.send_message(idb.fingerprint, "seen on screen")
                await lb.wait_for(lambda ev: of_kind(ev, "message_received"))
                b.set_open_chat(None)
                await a.send_message(idb.fingerprint, "hé, are you there?")
                for _ in range(500):
                    if notes.posted:
                        break
                    await asyncio.sleep(0.02)
                [n] = notes.posted
                assert n.category == p.NotificationCategory.MESSAGE
                assert n.title == "alice"
                assert n.body == "hé, are you there?"
                assert n.conversation == ida.fingerprint
            finally:
                await asyncio.gather(a.stop(), b.stop())
            del subs

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


def test_contacts_and_chat():
    """Request/accept, messages with delivery and read receipts, edits and deletes, the chat
    list, ping, blocking, request management and errors."""

    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(3)]
        a, b, c = (new_node(d.name, n) for d, n in zip(dirs, ("ada", "bob", "cy")))
        await start_all(a, b, c)
        la, lb, lc = Listener(), Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb), c.subscribe(lc)]
        try:
            ida, idb, idc = a.identity(), b.identity(), c.identity()
            fa, fb, fc = ida.fingerprint, idb.fingerprint, idc.fingerprint
            assert a.share_link() == f"peerns2:{ida.peer_id}?fp={fa}"

            # Bad input and strangers.
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.send_message("not-a-fingerprint", "hi")
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.accept_request("zz")
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.request_contact("https://example.org")
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.request_contact(a.share_link())
            with pytest.raises(p.PeernsError.InvalidInput):
                a.set_open_chat("nope")
            with pytest.raises(p.PeernsError.NotAllowed):
                await a.send_message(fb, "not a contact yet")
            with pytest.raises(p.PeernsError.NotFound):
                await a.set_trust(fb, p.Trust.KNOWN)
            assert not a.is_online("nope")

            # Request and accept.
            req = await a.request_contact(b.share_link())
            # B shows no name to a stranger: the short fingerprint until B's accept brings it.
            assert (req.fingerprint, req.name, req.peer_id) == (fb, idb.short, idb.peer_id)
            assert req.outgoing and not req.later and req.created_ms > 0
            assert [r.fingerprint for r in await a.requests()] == [fb]
            [ev] = of_kind(await lb.wait_for(lambda ev: of_kind(ev, "contact_request")), "contact_request")
            assert (ev.fingerprint, ev.name, ev.peer) == (fa, "ada", ida.peer_id)
            [incoming] = await b.requests()
            assert incoming.fingerprint == fa and not incoming.outgoing
            await b.accept_request(fa)
            await la.wait_for(lambda ev: of_kind(ev, "contact_added", fingerprint=fb, name="bob"))
            assert await a.requests() == [] and await b.requests() == []
            [cb] = await a.contacts()
            assert (cb.fingerprint, cb.name, cb.trust, cb.verified) == (fb, "bob", p.Trust.TRUSTED, False)
            assert cb.peer_id == idb.peer_id and cb.short == idb.short
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.request_contact(b.share_link())
            await a.set_verified(fb, True)
            assert (await a.contacts())[0].verified
            assert a.is_online(fb) and b.is_online(fa)
            # Linked contacts are not looked for at a rendezvous.
            assert a.searching() == [] and b.searching() == []

            # Messages: received on the other side, then delivered.
            m1 = await a.send_message(fb, "hello bob")
            assert m1.outgoing and m1.kind == p.MessageKind.TEXT and m1.text == "hello bob"
            assert re.fullmatch(r"[0-9a-f]{32}", m1.id) and m1.conversation == fb
            assert m1.received_ms is None and not m1.edited and not m1.deleted
            m2 = await a.send_message(fb, "second")
            assert m2.seq > m1.seq
            got = await lb.wait_for(lambda ev: len(of_kind(ev, "message_received")) == 2)
            r1, r2 = (e.message for e in of_kind(got, "message_received"))
            assert (r1.id, r1.text, r1.conversation, r1.outgoing) == (m1.id, "hello bob", fa, False)
            assert r1.received_ms is not None and r1.status == p.MessageStatus.DELIVERED
            assert r2.id == m2.id
            await la.wait_for(
                lambda ev: any(
                    e.status == p.MessageStatus.DELIVERED and e.up_to_seq >= m2.seq
                    for e in of_kind(ev, "message_status", conversation=fb)
                )
            )

            # The chat list: unread counts, last message, online.
            [conv] = await b.conversations()
            assert (conv.conversation, conv.unread, conv.online) == (fa, 2, True)
            assert conv.last.id == m2.id and conv.last_seen_ms is not None
            [conv_a] = await a.conversations()
            assert conv_a.unread == 0 and conv_a.last.status in (
                p.MessageStatus.DELIVERED,
                p.MessageStatus.SENT,
            )

            # Read receipts.
            await b.mark_read(fa)
            assert (await b.conversations())[0].unread == 0
            await la.wait_for(
                lambda ev: any(
                    e.status == p.MessageStatus.READ and e.up_to_seq >= m2.seq
                    for e in of_kind(ev, "message_status", conversation=fb)
                )
            )
            assert [m.status for m in await a.messages(fb, 10)] == [p.MessageStatus.READ] * 2

            # Edit and delete arrive as changes.
            edited = await a.edit_message(fb, m1.id, "hello, bob")
            assert edited.id == m1.id and edited.edited and edited.text == "hello, bob"
            deleted = await a.delete_message(fb, m2.id)
            assert deleted.deleted and deleted.text == ""
            got = await lb.wait_for(lambda ev: len(of_kind(ev, "message_changed")) == 2)
            c1, c2 = (e.message for e in of_kind(got, "message_changed"))
            assert (c1.id, c1.text, c1.edited) == (m1.id, "hello, bob", True)
            assert (c2.id, c2.text, c2.deleted) == (m2.id, "", True)
            shown = await b.messages(fa, 10)
            assert [(m.id, m.text, m.deleted) for m in shown] == [
                (m1.id, "hello, bob", False),
                (m2.id, "", True),
            ]
            assert len(await b.messages(fa, 1)) == 1
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.edit_message(fb, "xyz", "bad id")

            # Files: offered through the outbox, chunks verified, exposed in the profile.
            src = os.path.join(dirs[0].name, "notes.txt")
            payload = os.urandom(300_000)
            with open(src, "wb") as f:
                f.write(payload)
            fm = await a.send_file(fb, src)
            assert fm.kind == p.MessageKind.FILE and fm.text == ""
            assert (fm.file.name, fm.file.size, fm.file.mime) == ("notes.txt", 300_000, "text/plain")
            got = await lb.wait_for(lambda ev: of_kind(ev, "file_received", id=fm.id))
            [recv] = of_kind(got, "file_received", id=fm.id)
            assert recv.conversation == fa and recv.path.startswith(dirs[1].name)
            with open(recv.path, "rb") as f:
                assert f.read() == payload
            await la.wait_for(lambda ev: of_kind(ev, "file_done", id=fm.id, ok=True, outgoing=True))
            # A chat shown later reads where each side's transfer stands, and the file's path.
            theirs = await b.file_transfer(fm.id)
            assert (theirs.state, theirs.bytes, theirs.outgoing, theirs.path) == (
                p.FileTransferState.DONE, 300_000, False, recv.path)
            ours = await a.file_transfer(fm.id)
            assert (ours.state, ours.conversation, ours.name, ours.path) == (
                p.FileTransferState.DONE, fb, "notes.txt", None)
            await b.set_max_file_size(1000)
            big = await a.send_file(fb, src)
            await la.wait_for(lambda ev: of_kind(ev, "file_done", id=big.id, ok=False, outgoing=True))
            assert (await a.file_transfer(big.id)).state == p.FileTransferState.REFUSED
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.send_file(fb, os.path.join(dirs[0].name, "missing.bin"))

            # Ping.
            rtt = await a.ping(fb)
            assert 0 <= rtt < 5000
            with pytest.raises(p.PeernsError.NotAllowed):
                await a.ping(fc)

            # Requests: later, reject, cancel.
            await c.request_contact(b.share_link())
            await lb.wait_for(lambda ev: of_kind(ev, "contact_request", fingerprint=fc))
            await b.later_request(fc)
            [later] = await b.requests()
            assert later.fingerprint == fc and later.later
            await b.reject_request(fc)
            assert await b.requests() == []
            with pytest.raises(p.PeernsError.NotFound):
                await b.reject_request(fc)
            [mine] = await c.requests()
            assert mine.outgoing and mine.fingerprint == fb
            await c.cancel_request(fb)
            assert await c.requests() == []

            # Blocking: the link closes, nothing more goes either way.
            await b.set_trust(fa, p.Trust.BLOCKED)
            assert (await b.contacts())[0].trust == p.Trust.BLOCKED
            await until(_async(lambda: not a.is_online(fb) and not b.is_online(fa)))
            with pytest.raises(p.PeernsError.NotAllowed):
                await b.send_message(fa, "blocked")
            with pytest.raises(p.PeernsError.NotAllowed):
                await b.ping(fa)
            waiting = await a.send_message(fb, "are you there?")
            assert waiting.status == p.MessageStatus.WAITING
            with pytest.raises((p.PeernsError.Network, p.PeernsError.Timeout)):
                await a.ping(fb)
            await asyncio.sleep(0.5)
            assert all(e.message.id != waiting.id for e in of_kind(lb.snapshot(), "message_received"))
            assert [m.kind for m in await b.messages(fa, 10)] == [p.MessageKind.TEXT] * 2 + [
                p.MessageKind.FILE
            ] * 2

            # Removing a contact keeps the conversation.
            await a.remove_contact(fb)
            assert await a.contacts() == []
            assert [c.conversation for c in await a.conversations()] == [fb]
            with pytest.raises(p.PeernsError.NotAllowed):
                await a.send_message(fb, "gone")
        finally:
            for s in subs:
                s.cancel()
            await asyncio.gather(a.stop(), b.stop(), c.stop())
            for d in dirs:
                d.cleanup()

    asyncio.run(main())


def _async(pred):
    async def f():
        return pred()

    return f


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
            await start_all(a, b)
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
                    return [x for x in near if x.name == "bob"]

                [near] = await until(a_near_b)
                # Strangers see each other under a stadium pseudonym, never the identity
                # (decision 0010); positions in records are snapped to a ~11 m grid.
                assert near.fingerprint != fb and len(near.fingerprint) == 64
                assert 0.0 <= near.distance_m < 20.0
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


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def signal_server(port):
    """Starts `peerns signal` on `port` and waits until it listens."""
    proc = await asyncio.create_subprocess_exec(
        os.environ["PEERNS_BIN"], "signal", "--host", "127.0.0.1", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return proc
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("signal server did not start")


def test_offline_start_then_delivery_when_a_server_appears():
    """A phone without network: start returns at once, identity and history are readable, a
    message is queued; once a signaling server is reachable it goes out. A second node on the
    same profile is refused."""

    async def main():
        port = free_port()
        url = f"ws://127.0.0.1:{port}/"
        with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db:
            server = await signal_server(port)
            try:
                a = p.PeernsNode(config(da, "ada", url=url), None, None, None)
                b = p.PeernsNode(config(db, "bob", url=url), None, None, None)
                await start_all(a, b)
                la, lb = Listener(), Listener()
                subs = [a.subscribe(la), b.subscribe(lb)]
                await make_contacts(a, la, b, lb)
                fa, fb = a.identity().fingerprint, b.identity().fingerprint
                await asyncio.gather(a.stop(), b.stop())
            finally:
                server.terminate()
                await server.wait()

            a = p.PeernsNode(config(da, url=url), None, None, None)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await a.start()
            assert loop.time() - t0 < 2.0
            assert a.identity().fingerprint == fa
            assert not a.signaling_state().is_connected()
            m = await a.send_message(fb, "queued offline")
            assert [x.id for x in await a.messages(fb, 10)] == [m.id]
            twin = p.PeernsNode(config(da, url=url), None, None, None)
            with pytest.raises(p.PeernsError.ProfileInUse):
                await twin.start()

            server = await signal_server(port)
            try:
                assert await a.wait_connected(40_000)
                b = p.PeernsNode(config(db, url=url), None, None, None)
                await b.start()
                for _ in range(400):
                    if any(x.id == m.id for x in await b.messages(fa, 10)):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the queued message never reached bob")
                await asyncio.gather(a.stop(), b.stop())
            finally:
                server.terminate()
                await server.wait()
            del subs

    asyncio.run(main())


def test_a_contact_added_while_offline_is_asked_once_online():
    """Adding someone whose phone is off keeps their link (PeernsError.Waiting); the request
    goes out by itself once they are online, and a kept link can be cancelled."""

    async def main():
        with tempfile.TemporaryDirectory() as da, tempfile.TemporaryDirectory() as db, \
                tempfile.TemporaryDirectory() as dc:
            a, b, c = new_node(da, "ada"), new_node(db, "bob"), new_node(dc, "cy")
            await start_all(a, b, c)
            la = Listener()
            sub_a = a.subscribe(la)
            fa, idb = a.identity().fingerprint, b.identity()
            link_b, link_c, fc = b.share_link(), c.share_link(), c.identity().fingerprint
            await asyncio.gather(b.stop(), c.stop())
            try:
                with pytest.raises(p.PeernsError.Waiting):
                    await a.request_contact(link_b)
                [w] = await a.waiting_links()
                assert (w.fingerprint, w.peer_id) == (idb.fingerprint, idb.peer_id)
                assert w.created_ms > 0 and w.tried_ms >= w.created_ms
                assert await a.requests() == []

                b = new_node(db)
                lb = Listener()
                await b.start()
                sub_b = b.subscribe(lb)
                # The first try comes ~10 s after adding, then less often.
                await lb.wait_for(lambda ev: of_kind(ev, "contact_request", fingerprint=fa), 60.0)
                await la.wait_for(
                    lambda ev: of_kind(ev, "contact_request_sent", fingerprint=idb.fingerprint), 20.0
                )
                assert await a.waiting_links() == []
                assert [(r.fingerprint, r.outgoing) for r in await a.requests()] == [
                    (idb.fingerprint, True)
                ]

                with pytest.raises(p.PeernsError.Waiting):
                    await a.request_contact(link_c)
                await a.cancel_request(fc)
                assert await a.waiting_links() == []
                with pytest.raises(p.PeernsError.NotFound):
                    await a.cancel_request(fc)
                del sub_b
            finally:
                await asyncio.gather(a.stop(), b.stop())
            del sub_a

    asyncio.run(main())
