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
            got = [e.message.text for e in listeners[1].snapshot() if e.is_message()]
            assert sorted(got) == ["hello nearby", "hi stranger"]
            assert any(e.is_room() and e.group == room for e in listeners[0].snapshot())

            await b.meeting_room_leave()
            assert b.meeting_room() is None
            assert any(e.is_room() and e.group is None for e in listeners[1].snapshot())
            with pytest.raises(p.PeernsError.InvalidInput):
                await b.meeting_room_history()
        finally:
            for s in subs:
                s.cancel()
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())
