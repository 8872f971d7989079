"""Calls through the generated Python bindings: ring, accept, mute, hang up, decline, the call
log, the incoming-call notification, and a Known contact's call that never rings."""

import asyncio
import tempfile

import pytest

import peerns_ffi as p
from test_node import Listener, Notifications, make_contacts, new_node, of_kind, start_all

AV = p.CallKinds(audio=True, video=True, screen=False)


def states(events, call):
    return [(e.status.state, e.status.reason) for e in of_kind(events, "call_state", call=call)]


def test_calls():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        notes = Notifications()
        a = new_node(dirs[0].name, "ada")
        b = new_node(dirs[1].name, "bob", notifier=notes)
        await start_all(a, b)
        la, lb = Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb)]
        try:
            fa, fb = a.identity().fingerprint, b.identity().fingerprint
            with pytest.raises(p.PeernsError.NotAllowed):
                await a.start_call(fb, AV)  # not a contact yet
            await make_contacts(a, la, b, lb)

            # Ring, accept, mute, hang up.
            call = await a.start_call(fb, AV)
            [ring] = of_kind(await lb.wait_for(lambda ev: of_kind(ev, "incoming_call")), "incoming_call")
            assert (ring.call, ring.fingerprint, ring.name, ring.kinds) == (call, fa, "ada", AV)
            assert [n.category for n in notes.posted if n.category == p.NotificationCategory.INCOMING_CALL]
            await la.wait_for(lambda ev: ("ringing", None) in states(ev, call))
            with pytest.raises(p.PeernsError.InvalidInput):
                b.accept_call("zz", AV)
            b.accept_call(call, p.CallKinds(audio=True, video=False, screen=False))
            await la.wait_for(lambda ev: ("connected", None) in states(ev, call))
            active = a.active_call()
            assert (active.call, active.outgoing, active.status.state) == (call, True, "connected")
            assert active.callee_kinds.audio and not active.callee_kinds.video
            a.set_muted(call, True)
            [media] = of_kind(await lb.wait_for(lambda ev: of_kind(ev, "call_media")), "call_media")
            assert media.state.muted and not media.state.camera_off
            assert b.active_call().remote_media.muted
            # How far a's picture is turned reaches b, to the nearest quarter turn.
            a.set_video_rotation(call, 92)
            turned = lambda ev: [e for e in of_kind(ev, "call_media") if e.state.rotation == 90]
            [media] = turned(await lb.wait_for(turned))
            assert media.state.muted
            assert b.active_call().remote_media.rotation == 90
            a.hang_up(call)
            await la.wait_for(lambda ev: ("ended", "hangup") in states(ev, call))
            await lb.wait_for(lambda ev: ("ended", "peer_hangup") in states(ev, call))
            await la.wait_for(lambda ev: of_kind(ev, "call_logged"))
            assert a.active_call() is None
            [entry] = await a.call_log(None, 10)
            assert (entry.call, entry.fingerprint, entry.outgoing, entry.outcome) == (call, fb, True, "completed")
            assert entry.kinds.audio and entry.kinds.video

            # Declined.
            call2 = await a.start_call(fb, AV)
            await lb.wait_for(lambda ev: of_kind(ev, "incoming_call", call=call2))
            b.decline_call(call2)
            await la.wait_for(lambda ev: ("ended", "declined") in states(ev, call2))
            await lb.wait_for(lambda ev: of_kind(ev, "call_logged") and len(of_kind(ev, "call_logged")) == 2)
            assert [e.outcome for e in await b.call_log(fa, 10)] == ["declined", "completed"]

            # A Known contact's call never rings.
            await b.set_trust(fa, p.Trust.KNOWN)
            a.set_call_timeouts(3000, 800)
            call3 = await a.start_call(fb, AV)
            await la.wait_for(lambda ev: ("ended", "unreachable") in states(ev, call3))
            assert not of_kind(lb.snapshot(), "incoming_call", call=call3)
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())
