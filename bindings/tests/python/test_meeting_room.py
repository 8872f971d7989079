"""The meeting room for everyone nearby through the generated Python bindings: two nodes a few
metres apart in stadium mode open the meeting room and land in the same one (no invites), chat,
see the room in each other's stadium records, and leave it; nothing is kept."""

import asyncio
import tempfile

import pytest

import peerns_ffi as p
from test_groups import Groups, until
from test_node import new_node, start_all


def test_meeting_room():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        a, b = (new_node(d.name, n) for d, n in zip(dirs, "ab"))
        await start_all(a, b)
        listeners = [Groups(), Groups()]
        subs = [n.subscribe_groups(l) for n, l in zip((a, b), listeners)]
        try:
            # Without stadium mode and a position there is no room to find.
            with pytest.raises(p.PeernsError.InvalidInput):
                await a.meeting_room_join()
            for n, lat in ((a, 48.85837), (b, 48.85842)):
                n.start_stadium()
                n.set_location(p.LocationFix(latitude=lat, longitude=2.29448, accuracy_m=5.0))
            room = await a.meeting_room_join()
            assert len(room) == 32 and a.meeting_room() == room

            async def b_sees_room():
                return any(x.room == room for x in await b.nearby())

            await until(b_sees_room, "ada's room in her stadium record")
            assert await b.meeting_room_join() == room

            await a.group_send(room, "hello nearby")
            await b.group_send(room, "hi stranger")

            async def both_hold_both():
                ha = [m.text for m in await a.meeting_room_history()]
                hb = [m.text for m in await b.meeting_room_history()]
                return len(ha) == 2 and ha == hb

            await until(both_hold_both, "both messages on both, in one order")
            def got():
                return sorted(e.message.text for e in listeners[1].snapshot() if e.is_message())

            await until(lambda: asyncio.sleep(0, got() == ["hello nearby", "hi stranger"]),
                        "both messages as events")
            await until(lambda: asyncio.sleep(0, any(
                e.is_room() and e.group == room for e in listeners[0].snapshot())), "the Room event")

            await b.meeting_room_leave()
            assert b.meeting_room() is None
            await until(lambda: asyncio.sleep(0, any(
                e.is_room() and e.group is None for e in listeners[1].snapshot())), "the Room(None) event")
            with pytest.raises(p.PeernsError.InvalidInput):
                await b.meeting_room_history()
        finally:
            for s in subs:
                s.cancel()
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())


def test_call_in_the_meeting_room():
    """A call in the meeting room nearby: the same group call, between strangers in the room."""
    from test_group_call import AV, Encoder, Frames, push_until

    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        a, b = (new_node(d.name, n) for d, n in zip(dirs, "ab"))
        await start_all(a, b)
        try:
            for n, lat in ((a, 48.85837), (b, 48.85842)):
                n.start_stadium()
                n.set_location(p.LocationFix(latitude=lat, longitude=2.29448, accuracy_m=5.0))
            room = await a.meeting_room_join()

            async def b_sees_room():
                return any(x.room == room for x in await b.nearby())

            await until(b_sees_room, "ada's room nearby")
            assert await b.meeting_room_join() == room
            fps = [n.identity().fingerprint for n in (a, b)]
            frames = [Frames(), Frames()]
            calls = [await n.group_call_join(room, AV, f, Encoder()) for n, f in zip((a, b), frames)]

            async def see_each_other():
                return all(fps[1 - k] in frames[k].senders(kind) for k in (0, 1) for kind in ("video", "audio"))

            await push_until(calls, see_each_other, "the two to see and hear each other")
            for call in calls:
                call.stop()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())
