"""Signed RPC through the generated Python bindings: grants only at Full Access, a served
folder, a call that is allowed and one that is not, arming the camera, the audit log, and a
folder backed up with progress events (then skipped as already there, then on Wi-Fi only),
documents the phone opens backed up without a copy, and the baby
monitor's viewer answering the armed device's call and its sound alert."""

import asyncio
import json
import os
import tempfile
import threading

import pytest

import peerns_ffi as p
from test_node import Listener, make_contacts, new_node, of_kind, start_all


def test_rpc():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(3)]
        a = new_node(dirs[0].name, "phone")
        b = new_node(dirs[1].name, "desktop")
        await start_all(a, b)
        la, lb = Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb)]
        try:
            fa, fb = a.identity().fingerprint, b.identity().fingerprint
            await make_contacts(a, la, b, lb)
            public = dirs[2].name
            with open(os.path.join(public, "hello.txt"), "w") as f:
                f.write("hi")
            b.rpc_serve([p.RpcRoot(name="public", dir=public)])

            # Trusted (level 2): no grant possible, every request 403.
            with pytest.raises(p.PeernsError.NotAllowed):
                await b.rpc_grant(fa, ["fs:read:/public/*"])
            res = json.loads(await a.rpc_call(fb, "fs.list", '{"path":"/public"}', 10_000))
            assert res["type"] == "RPC_RES" and res["error"]["code"] == 403

            await b.set_trust(fa, p.Trust.FULL_ACCESS)
            with pytest.raises(p.PeernsError.InvalidInput):
                await b.rpc_grant(fa, ["fs:read:/public/../x"])
            await b.rpc_grant(fa, ["fs:read:/public/*", "media:stream:camera:environment"])
            assert sorted(g.scope for g in await b.rpc_grants()) == [
                "fs:read:/public/*", "media:stream:camera:environment"]
            res = json.loads(await a.rpc_call(fb, "fs.read", '{"path":"/public/hello.txt"}', 10_000))
            assert res["result"]["data_b64"] == "aGk="
            res = json.loads(await a.rpc_call(fb, "fs.write", '{"path":"/public/x","data_b64":""}', 10_000))
            assert res["error"]["code"] == 403

            # The camera streams only while armed.
            res = json.loads(await a.rpc_call(fb, "media.stream", '{"facing":"environment"}', 10_000))
            assert res["error"]["code"] == 403
            b.rpc_arm_camera("environment")
            res = json.loads(await a.rpc_call(fb, "media.stream", '{"facing":"environment"}', 10_000))
            assert res["result"]["streaming"] is True
            b.rpc_arm_camera(None)

            assert await b.rpc_revoke(fa, []) == 2
            res = json.loads(await a.rpc_call(fb, "fs.read", '{"path":"/public/hello.txt"}', 10_000))
            assert res["error"]["code"] == 403
            log = await b.rpc_audit_log(100)
            assert [e.code for e in log] == [403, 200, 403, 403, 200, 403]
            assert all(e.fingerprint == fa for e in log)
            assert log[1].method == "fs.read" and log[1].target == "/public/hello.txt"
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())


class Progress(p.BackupListener):
    """Collects a backup's progress; called on a library thread."""

    def __init__(self):
        self.steps = []
        self.lock = threading.Lock()

    def on_backup_progress(self, progress):
        with self.lock:
            self.steps.append(progress)


def test_rpc_backup():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(4)]
        a = new_node(dirs[0].name, "phone")
        b = new_node(dirs[1].name, "desktop")
        await start_all(a, b)
        la, lb = Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb)]
        try:
            fa, fb = a.identity().fingerprint, b.identity().fingerprint
            await make_contacts(a, la, b, lb)
            incoming, src = dirs[2].name, os.path.join(dirs[3].name, "photos")
            os.makedirs(os.path.join(src, "2026"))
            files = {"a.jpg": b"a" * 1000, "2026/b.jpg": b"", "2026/video.mp4": os.urandom(3 << 20)}
            for rel, data in files.items():
                with open(os.path.join(src, rel), "wb") as f:
                    f.write(data)
            b.rpc_serve([p.RpcRoot(name="incoming", dir=incoming)])
            await b.set_trust(fa, p.Trust.FULL_ACCESS)
            await b.rpc_grant(fa, ["fs:write:/incoming/**"])

            progress = Progress()
            s = await a.rpc_backup(fb, [src], "/incoming", progress)
            assert (s.files, s.skipped, s.left_out) == (3, 0, 0)
            assert s.bytes == sum(len(d) for d in files.values())
            for rel, data in files.items():
                with open(os.path.join(incoming, "photos", rel), "rb") as f:
                    assert f.read() == data, rel
            # Per file in order, the big one acknowledged on the way.
            video = [x for x in progress.steps if x.path == "/incoming/photos/2026/video.mp4"]
            assert [x.bytes for x in video][-1] == 3 << 20 and len(video) >= 3
            assert all(x.files_total == 3 for x in progress.steps)
            assert [x.files_done for x in progress.steps] == sorted(x.files_done for x in progress.steps)

            # Everything is there: nothing is sent again.
            s = await a.rpc_backup(fb, [src], "/incoming", Progress())
            assert (s.files, s.skipped, s.bytes) == (0, 3, 0)
            # On Wi-Fi only: it waits while the network is metered and goes on once it is not.
            with open(os.path.join(src, "new.jpg"), "wb") as f:
                f.write(b"n" * 5000)
            a.network_changed(p.NetworkKind.WIFI, "test:lo", True)

            async def stopped_while_waiting(stop, raised):
                """A backup waiting on a metered network, stopped by `stop(task)`: it raises
                `raised`, and nothing is placed when the network turns unmetered afterwards."""
                steps = Progress()
                task = asyncio.ensure_future(
                    a.rpc_backup(fb, [src], "/incoming", steps, unmetered_only=True))
                await asyncio.sleep(0.5)
                assert [x.waiting for x in steps.steps] == [True]
                stop(task)
                with pytest.raises(raised):
                    await asyncio.wait_for(task, 5)
                a.network_changed(p.NetworkKind.WIFI, "test:lo")
                await asyncio.sleep(1.5)
                assert not os.path.exists(os.path.join(incoming, "photos", "new.jpg"))
                assert [x.waiting for x in steps.steps] == [True]
                a.network_changed(p.NetworkKind.WIFI, "test:lo", True)

            # Its caller gives up (a cancelled coroutine, as on Kotlin).
            await stopped_while_waiting(lambda task: task.cancel(), asyncio.CancelledError)
            # Cancelled explicitly (what Swift does: its task cancellation never reaches the
            # library): the call fails with Cancelled.
            await stopped_while_waiting(lambda _: a.rpc_backup_cancel(), p.PeernsError.Cancelled)
            progress = Progress()
            task = asyncio.ensure_future(
                a.rpc_backup(fb, [src], "/incoming", progress, unmetered_only=True))
            await asyncio.sleep(1.0)
            assert not task.done()
            assert [x.waiting for x in progress.steps] == [True]
            assert not os.path.exists(os.path.join(incoming, "photos", "new.jpg"))
            a.network_changed(p.NetworkKind.CELLULAR, "test:lo")  # metered by its kind
            await asyncio.sleep(0.3)
            assert not task.done()
            a.network_changed(p.NetworkKind.WIFI, "test:lo")
            s = await asyncio.wait_for(task, 20)
            assert (s.files, s.skipped, s.bytes) == (1, 3, 5000)
            assert not progress.steps[-1].waiting
            # Over the root's quota: refused (413), nothing placed.
            used = sum(len(d) for d in files.values())
            b.rpc_serve([p.RpcRoot(name="incoming", dir=incoming, quota=used + 100)])
            with open(os.path.join(src, "extra.bin"), "wb") as f:
                f.write(b"x" * 1000)
            with pytest.raises(p.PeernsError.NotAllowed, match="413"):
                await a.rpc_backup(fb, [src], "/incoming", Progress())
            assert not os.path.exists(os.path.join(incoming, "photos", "extra.bin"))
            # Without the grant: refused.
            await b.rpc_revoke(fa, [])
            with pytest.raises(p.PeernsError.NotAllowed):
                await a.rpc_backup(fb, [src], "/incoming", Progress())
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())


class Documents(p.DocumentOpener):
    """Opens documents as a phone's provider would: a descriptor handed over per call (the
    last one streamed through a pipe), or a refusal."""

    def __init__(self, contents, refuse=None):
        self.contents, self.refuse, self.opened = contents, refuse, []

    def open_document(self, index):
        self.opened.append(index)
        if index == self.refuse:
            raise p.DocumentError.Unreadable("permission revoked")
        data = self.contents[index]
        if index == len(self.contents) - 1:
            r, w = os.pipe()

            def feed():
                with os.fdopen(w, "wb") as f:
                    f.write(data)

            threading.Thread(target=feed, daemon=True).start()
            return r
        fd, path = tempfile.mkstemp()
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        os.unlink(path)
        return fd


def test_rpc_backup_documents():
    """Documents the phone lists and opens (Android's picked folders): each opened when its
    turn comes, hashed, then sent, every descriptor closed by the library; a name no request
    path can carry left out; a document that cannot be opened skipped and counted."""
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(3)]
        a = new_node(dirs[0].name, "phone")
        b = new_node(dirs[1].name, "desktop")
        await start_all(a, b)
        la, lb = Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb)]
        try:
            fa, fb = a.identity().fingerprint, b.identity().fingerprint
            await make_contacts(a, la, b, lb)
            incoming = dirs[2].name
            b.rpc_serve([p.RpcRoot(name="incoming", dir=incoming)])
            await b.set_trust(fa, p.Trust.FULL_ACCESS)
            await b.rpc_grant(fa, ["fs:write:/incoming/**"])
            names = ["Camera/IMG_1.jpg", "Camera/50%.jpg", "Camera/trip/clip.mp4"]
            contents = [b"1" * 70_000, b"x", os.urandom(2 << 20)]
            fds = len(os.listdir("/proc/self/fd"))
            docs, progress = Documents(contents), Progress()
            s = await a.rpc_backup_documents(fb, names, "/incoming", docs, progress)
            assert (s.files, s.skipped, s.left_out, s.bytes) == (2, 0, 1, 70_000 + (2 << 20))
            for i in (0, 2):
                with open(os.path.join(incoming, names[i]), "rb") as f:
                    assert f.read() == contents[i], names[i]
            assert docs.opened == [0, 0, 2, 2]
            assert progress.steps[-1].path == "/incoming/Camera/trip/clip.mp4"
            assert all(x.files_total == 2 for x in progress.steps)
            # Everything there: each opened once, to hash it.
            docs = Documents(contents)
            s = await a.rpc_backup_documents(fb, names, "/incoming", docs, Progress())
            assert (s.files, s.skipped) == (0, 2) and docs.opened == [0, 2]
            # One the provider refuses now (gone, or its permission taken back): skipped and
            # counted, the rest goes on.
            contents[2] = os.urandom(1000)
            docs = Documents(contents, 0)
            s = await a.rpc_backup_documents(fb, names, "/incoming", docs, Progress())
            assert (s.files, s.skipped, s.unreadable, s.bytes) == (1, 0, 1, 1000)
            with open(os.path.join(incoming, names[2]), "rb") as f:
                assert f.read() == contents[2]
            assert len(os.listdir("/proc/self/fd")) == fds
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.rpc_backup_documents(fb, names, "no-slash", Documents(contents), Progress())
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())


def test_rpc_watch():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        a = new_node(dirs[0].name, "parent")
        b = new_node(dirs[1].name, "monitor")
        await start_all(a, b)
        la, lb = Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb)]
        try:
            fa, fb = a.identity().fingerprint, b.identity().fingerprint
            await make_contacts(a, la, b, lb)
            b.rpc_serve([])
            await b.set_trust(fa, p.Trust.FULL_ACCESS)
            await b.rpc_grant(fa, ["media:stream:camera:environment"])
            with pytest.raises(p.PeernsError.NotAllowed):
                await a.rpc_watch(fb, "environment", 10_000)  # not armed
            b.rpc_arm_camera("environment")
            call = await a.rpc_watch(fb, "environment", 10_000)
            active = a.active_call()
            assert active.call == call and not active.outgoing
            connected = lambda ev: [e for e in of_kind(ev, "call_state", call=call)
                                    if e.status.state == "connected"]
            await lb.wait_for(connected)
            # The monitor is told which call streams its camera, to whom: the app feeds it.
            [stream] = of_kind(lb.snapshot(), "monitor_stream", call=call)
            assert (stream.fingerprint, stream.facing) == (fa, "environment")
            a.hang_up(call)

            # A loud sound held for 300 ms alerts the parent.
            with pytest.raises(p.PeernsError.InvalidInput):
                b.rpc_sound_alert(5.0)
            b.rpc_sound_alert(-30.0)
            for _ in range(5):
                b.rpc_sound_level(-8.4)
                await asyncio.sleep(0.1)
            [alert] = of_kind(await la.wait_for(lambda ev: of_kind(ev, "monitor_alert")), "monitor_alert")
            assert (alert.fingerprint, alert.level_dbfs) == (fb, -8)
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())
