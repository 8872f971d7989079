"""Groups through the generated Python bindings: three nodes; A creates a group and invites B and
C by link, everyone sends, every history ends identical with each message once, paging, group
events, who is online, a removed member receives nothing new and deletes the group."""

import asyncio
import tempfile
import threading

import pytest

import peerns_ffi as p
from test_node import Listener, make_contacts, new_node, start_all


class Groups(p.GroupListener):
    """Collects group events; called on a library thread."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def on_group_event(self, event):
        with self.lock:
            self.events.append(event)

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def message_ids(self):
        return [e.message.id for e in self.snapshot() if e.is_message()]


async def until(pred, what, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await pred():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def send(node, gid, text):
    """Sends once we are a member (an invitee is pending until the group's log arrives)."""
    for _ in range(200):
        try:
            return await node.group_send(gid, text)
        except p.PeernsError.NotAllowed:
            await asyncio.sleep(0.05)
    raise AssertionError("never became a member")


async def history(node, gid):
    return (await node.group_history(gid, None, 100)).messages


def test_groups():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(3)]
        a, b, c = (new_node(d.name, n) for d, n in zip(dirs, "abc"))
        nodes = [a, b, c]
        await start_all(*nodes)
        listeners = [Groups() for _ in nodes]
        subs = [n.subscribe_groups(l) for n, l in zip(nodes, listeners)]
        try:
            fa, fb, fc = (n.identity().fingerprint for n in nodes)
            gid = await a.group_create("Trip")
            link_b = await a.group_invite(gid, fb)
            link_c = await a.group_invite(gid, fc)
            assert link_b.startswith("peerns2-group:")
            # A link names its invitee: someone else holding it is refused.
            with pytest.raises(p.PeernsError.InvalidInput):
                await c.group_join(link_b)
            assert await b.group_join(link_b) == gid
            assert await c.group_join(link_c) == gid

            sent = await asyncio.gather(*(send(n, gid, f"hi from {x}") for n, x in zip(nodes, "abc")))
            assert [m.author for m in sent] == [fa, fb, fc]
            assert all(len(m.id) == 32 and m.seq == 1 for m in sent)

            async def all_hold(ns, count):
                pages = [await history(n, gid) for n in ns]
                return len(pages[0]) == count and all(pg == pages[0] for pg in pages)

            await until(lambda: all_hold(nodes, 3), "three identical histories")
            msgs = await history(a, gid)
            assert all(m.file is None for m in msgs)
            assert sorted(m.text for m in msgs) == ["hi from a", "hi from b", "hi from c"]
            assert sorted(m.id for m in msgs) == sorted(m.id for m in sent)
            # Each message reached every node's listener exactly once (own ones included).
            await until(lambda: asyncio.sleep(0, all(len(l.message_ids()) >= 3 for l in listeners)),
                        "message events")
            for l in listeners:
                assert sorted(l.message_ids()) == sorted(m.id for m in msgs)

            # Paging: two pages of 2 and 1 make the whole history.
            first = await a.group_history(gid, None, 2)
            assert len(first.messages) == 2 and first.older is not None
            second = await a.group_history(gid, first.older, 2)
            assert second.older is None
            assert second.messages + first.messages == msgs
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.group_history(gid, "not a cursor", 2)

            listed = {n: (await n.groups())[0] for n in nodes}
            assert listed[a].id == gid and listed[a].name == "Trip"
            assert {(m.fingerprint, m.admin) for m in listed[a].members} == {
                (fa, True), (fb, False), (fc, False)}
            assert listed[a].membership == p.GroupMembership.ADMIN
            assert listed[b].membership == p.GroupMembership.MEMBER
            assert all(g.running for g in listed.values())
            assert sum(g.router for g in listed.values()) == 1
            # Who is online: each sees the two others present in the group's namespace, and
            # heard of them coming online.
            fps = {a: fa, b: fb, c: fc}

            async def sees_others_online():
                for n in nodes:
                    online = {m.fingerprint for m in (await n.groups())[0].members if m.online}
                    if online != set(fps.values()) - {fps[n]}:
                        return False
                return True

            await until(sees_others_online, "every member online at every member")
            came = {e.fingerprint for e in listeners[0].snapshot() if e.is_presence() and e.online}
            assert came == {fb, fc}
            # Only admins invite (a member's existing link is given again to anyone who asks).
            with pytest.raises(p.PeernsError.NotAllowed):
                await b.group_invite(gid, "ab" * 32)
            assert (await b.group_invite(gid, fc)).startswith("peerns2-group:")

            # A removes C: C is told, and receives nothing sent afterwards.
            await a.group_remove(gid, fc)
            await until(lambda: asyncio.sleep(0, any(e.is_departed() for e in listeners[2].snapshot())),
                        "C told of its removal")
            await send(b, gid, "after C left")
            await until(lambda: all_hold([a, b], 4), "A and B holding the new message")
            await asyncio.sleep(2)
            assert [m.text for m in await history(c, gid)] == [m.text for m in msgs]
            assert len(listeners[2].message_ids()) == 3
            with pytest.raises(p.PeernsError):
                await c.group_send(gid, "let me in")
            assert fc not in {m.fingerprint for m in (await a.groups())[0].members}
            # A former member is not listed online, and A was told.
            assert any(e.is_presence() and e.fingerprint == fc and not e.online
                       for e in listeners[0].snapshot())
            # C deletes what it kept of the group.
            assert (await c.groups())[0].membership == p.GroupMembership.FORMER
            await c.group_delete(gid)
            assert await c.groups() == []
            with pytest.raises(p.PeernsError.InvalidInput):
                await c.group_history(gid, None, 10)
            with pytest.raises(p.PeernsError.InvalidInput):
                await c.group_delete(gid)
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(*(n.stop() for n in nodes))

    asyncio.run(main())


def test_an_invite_sent_to_a_trusted_contact_joins_it():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        a, b = new_node(dirs[0].name, "ada"), new_node(dirs[1].name, "bob")
        await start_all(a, b)
        la, lb, groups_b = Listener(), Listener(), Groups()
        subs = [a.subscribe(la), b.subscribe(lb), b.subscribe_groups(groups_b)]
        try:
            fa, fb = a.identity().fingerprint, b.identity().fingerprint
            await make_contacts(a, la, b, lb)
            gid = await a.group_create("Picnic")
            sent = await a.group_send_invite(gid, fb)
            assert sent.text.startswith("peerns2-group:")
            await until(lambda: asyncio.sleep(0, any(
                e.is_invited() and e.group == gid and e.by == fa for e in groups_b.snapshot())),
                "B joined by the invite")
            assert gid in [g.id for g in await b.groups()]
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(*(n.stop() for n in [a, b]))

    asyncio.run(main())


def test_a_file_shared_in_a_group_reaches_every_member():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(3)]
        nodes = [new_node(d.name, n) for d, n in zip(dirs, "abc")]
        a, b, c = nodes
        await start_all(*nodes)
        listeners = [Groups() for _ in nodes]
        subs = [n.subscribe_groups(l) for n, l in zip(nodes, listeners)]
        try:
            gid = await a.group_create("Photos")
            for n in (b, c):
                await n.group_join(await a.group_invite(gid, n.identity().fingerprint))
            await asyncio.gather(*(send(n, gid, "hi") for n in nodes))

            async def all_hold(count):
                return [len(await history(n, gid)) for n in nodes] == [count] * 3

            await until(lambda: all_hold(3), "three messages everywhere")
            data = bytes((i * 13) % 251 for i in range(300_000))
            path = f"{dirs[1].name}/report.pdf"
            with open(path, "wb") as f:
                f.write(data)
            m = await b.group_send_file(gid, path)
            assert m.text == "" and m.file.name == "report.pdf" and m.file.size == len(data)
            assert m.file.mime == "application/pdf"
            # Ours is whole from the start.
            mine = await b.group_file(gid, m.file.id)
            assert mine.state == p.GroupFileTransfer.DONE and mine.author == b.identity().fingerprint

            async def everyone_has_it():
                for n in nodes:
                    info = await n.group_file(gid, m.file.id)
                    if info is None or info.state != p.GroupFileTransfer.DONE:
                        return False
                return True

            await until(everyone_has_it, "the file at every member", timeout=60)
            for n in (a, c):
                info = await n.group_file(gid, m.file.id)
                assert info.received == len(data) and info.path.endswith("report.pdf")
                with open(info.path, "rb") as f:
                    assert f.read() == data
            # The history shows the file message, and the receivers heard it arrive.
            assert any(h.file is not None and h.file == m.file for h in await history(c, gid))
            for l in (listeners[0], listeners[2]):
                done = [e for e in l.snapshot() if e.is_file_done() and e.file == m.file.id]
                assert len(done) == 1 and done[0].path.endswith("report.pdf")
            # A file nobody announced is unknown; a malformed ID is refused.
            assert await a.group_file(gid, "00" * 16) is None
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.group_file(gid, "nope")
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(*(n.stop() for n in nodes))

    asyncio.run(main())
