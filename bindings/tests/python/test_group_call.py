"""A group call through the generated Python bindings, as phone shells drive it: three nodes
join a group's call and push encoded frames (fake H.264 access units, Opus-sized packets);
each receives both others' frames tagged with the sender (through the router, or as the
router), the roster and phases arrive as group events, and a participant who leaves drops out
of everyone's roster. Two participants whose router is not in the call talk directly: each
phase event names the other as the media peer."""

import asyncio
import tempfile
import threading

import pytest

import peerns_ffi as p
from test_call_media import video_frame
from test_groups import Groups, until
from test_node import new_node, start_all

AV = p.CallKinds(audio=True, video=True, screen=False)


class Encoder(p.EncoderControlListener):
    def __init__(self):
        self.keyframes = 0

    def request_keyframe(self):
        self.keyframes += 1

    def target_bitrate(self, bps):
        pass


class Frames(p.GroupCallFrameListener):
    """Collects received frames (called on the library's thread)."""

    def __init__(self):
        self.frames = []
        self.lock = threading.Lock()

    def on_frame(self, frame):
        with self.lock:
            self.frames.append(frame)

    def senders(self, kind):
        with self.lock:
            return {f.sender for f in self.frames if f.kind == kind}

    def of(self, sender, kind):
        with self.lock:
            return [f for f in self.frames if f.sender == sender and f.kind == kind]


async def join(node, gid, frames, encoder):
    """Joins once we are a member (an invitee is pending until the group's log arrives)."""
    for _ in range(200):
        try:
            return await node.group_call_join(gid, AV, frames, encoder)
        except p.PeernsError.NotAllowed:
            await asyncio.sleep(0.05)
    raise AssertionError("never became a member")


async def push_until(calls, done, what, timeout=30.0, levels=None):
    """Every call sends a video frame and an audio packet each 30 ms until `await done()`;
    the audio says how loud it is (RFC 6464) when `levels` gives a level per call."""
    deadline = asyncio.get_running_loop().time() + timeout
    i = 0
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        key, data = video_frame(i)
        for n, call in enumerate(calls):
            level = levels[n] if levels else None
            call.push_frame("video", i * 33_333, key, data)
            call.push_frame("audio", i * 20_000, False, bytes([0xF8, i % 256]) + bytes(60),
                            audio_level=level)
        i += 1
        await asyncio.sleep(0.03)


async def routes(node):
    return (await node.groups())[0].router


def test_group_call():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(3)]
        nodes = [new_node(d.name, n) for d, n in zip(dirs, "abc")]
        a, b, c = nodes
        await start_all(*nodes)
        listeners = [Groups() for _ in nodes]
        subs = [n.subscribe_groups(l) for n, l in zip(nodes, listeners)]
        try:
            fps = [n.identity().fingerprint for n in nodes]
            gid = await a.group_create("Call")
            # The creator routes before anyone joins. (Invitees joining while the creator's
            # election is still under way can leave a small group with no router under CPU
            # load: a groups-layer race recorded in issue 14, not what this test is about.)
            await until(lambda: routes(a), "the creator routes")
            for n, fp in zip(nodes[1:], fps[1:]):
                assert await n.group_join(await a.group_invite(gid, fp)) == gid
            # Last-N (the router's setting for the calls it routes): 1 to 7.
            for bad in (0, 8):
                with pytest.raises(p.PeernsError.InvalidInput):
                    a.set_group_call_last_n(bad)
            a.set_group_call_last_n(4)
            frames = [Frames() for _ in nodes]
            encoders = [Encoder() for _ in nodes]
            calls = [await join(n, gid, f, e) for n, f, e in zip(nodes, frames, encoders)]

            async def everyone_hears_everyone():
                for i, f in enumerate(frames):
                    others = {fp for j, fp in enumerate(fps) if j != i}
                    if not others <= f.senders("video") or not others <= f.senders("audio"):
                        return False
                return True

            await push_until(calls, everyone_hears_everyone, "everyone to hear everyone")
            for f, me in zip(frames, fps):
                got = [x for x in f.frames if x.kind == "video"]
                assert all(x.codec == "h264" and x.sender != me for x in got)
                assert any(x.keyframe for x in got)
                assert all(b"PEERNS" in x.data for x in got)
            with pytest.raises(p.PeernsError.InvalidInput):
                calls[0].push_frame("smell", 0, False, b"")
            # New receivers asked for keyframes.
            assert all(e.keyframes >= 1 for e in encoders)

            # A decoder that starts late asks the sender for a keyframe: C (a member, through
            # its uplink's slot that shows B) and A (the router, through its forwarder). With
            # three videos and Last-N 4 nothing else asks B once the call has settled.
            async def asked_for_keyframes(by, of):
                loop = asyncio.get_running_loop()
                last = {"count": encoders[of].keyframes, "since": loop.time()}

                async def settled():
                    now, count = loop.time(), encoders[of].keyframes
                    if count != last["count"]:
                        last.update(count=count, since=now)
                    return now - last["since"] >= 1.0

                await push_until(calls, settled, "B's keyframe requests to settle")
                before = encoders[of].keyframes
                assert calls[by].request_keyframe(fps[of], "video")

                async def asked():
                    return encoders[of].keyframes > before
                await push_until(calls, asked, f"B asked for a keyframe by {'ABC'[by]}", timeout=10.0)

            await asked_for_keyframes(by=2, of=1)
            await asked_for_keyframes(by=0, of=1)
            # Nobody in the call sends as that fingerprint, and audio has no keyframes.
            assert not calls[2].request_keyframe("ab" * 32, "video")
            assert not calls[0].request_keyframe("ab" * 32, "video")
            with pytest.raises(p.PeernsError.InvalidInput):
                calls[2].request_keyframe(fps[1], "audio")
            with pytest.raises(p.PeernsError.InvalidInput):
                calls[2].request_keyframe("not a fingerprint", "video")

            def roster_of(l):
                rosters = [e for e in l.snapshot() if e.is_call_roster()]
                return rosters[-1].participants if rosters else []

            await until(lambda: asyncio.sleep(0, all(
                sorted(x.fingerprint for x in roster_of(l)) == sorted(fps) for l in listeners)),
                "everyone in every roster")
            phases = [[e.phase for e in l.snapshot() if e.is_call_phase()] for l in listeners]
            assert all(ph[-1] == p.GroupCallPhase.CONNECTED for ph in phases), phases
            assert sorted(x.fingerprint for x in await a.group_call_participants(gid)) == sorted(fps)

            # Who speaks, from the levels on the audio: B (forwarded by the router A) is loud,
            # the others silent; then A speaks too (the router hears itself); then only A.
            def speaking_everywhere(who):
                async def check():
                    for l in listeners:
                        said = [e.speaking for e in l.snapshot() if e.is_call_speakers()]
                        if not said or sorted(said[-1]) != sorted(who):
                            return False
                    return True
                return check

            quiet, loud = 127, 20
            assert p.audio_level_of_pcm([0] * 960) == quiet
            assert p.audio_level_of_pcm([-32768] * 960) == 0
            await push_until(calls, speaking_everywhere([fps[1]]), "B speaking",
                             levels=[quiet, loud, quiet])
            await push_until(calls, speaking_everywhere([fps[0], fps[1]]), "A and B speaking",
                             levels=[loud, loud, quiet])
            await push_until(calls, speaking_everywhere([fps[0]]), "only A speaking",
                             levels=[loud, quiet, quiet])

            # C leaves: the others' rosters drop it.
            await c.group_call_leave(gid)
            await until(lambda: asyncio.sleep(0, all(
                sorted(x.fingerprint for x in roster_of(l)) == sorted(fps[:2])
                for l in listeners[:2])), "C out of the roster")

            # The router (A) leaves too and C comes back: B and C talk directly, the router
            # only introducing them, and each says its media goes to the other.
            calls[0].stop()
            calls[2].stop()
            await a.group_call_leave(gid)
            c_frames = Frames()
            calls[2] = await join(c, gid, c_frames, Encoder())

            def media_peer(l):
                ph = [e for e in l.snapshot() if e.is_call_phase()]
                last = ph[-1] if ph else None
                return last.media_peer if last and last.phase == p.GroupCallPhase.CONNECTED else None

            async def direct_and_flowing():
                return (media_peer(listeners[1]) == fps[2] and media_peer(listeners[2]) == fps[1]
                        and len(c_frames.of(fps[1], "video")) > 10)

            await push_until([calls[1], calls[2]], direct_and_flowing, "B and C direct")
            for call in calls:
                call.stop()
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(*(n.stop() for n in nodes))

    asyncio.run(main())



def test_only_an_admin_lets_a_browser_into_the_call():
    """`allow_group_call_guest`: an admin may name a browser's PeerJS ID (checked by PeerJS's
    rule); a member who is not an admin is refused. (The browser joining is the Chromium test,
    tests/tests/browser_media.rs.)"""
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        a, b = nodes = [new_node(d.name, n) for d, n in zip(dirs, "ab")]
        await start_all(*nodes)
        try:
            gid = await a.group_create("Guests")
            await until(lambda: routes(a), "the creator routes")
            assert await b.group_join(await a.group_invite(gid, b.identity().fingerprint)) == gid
            await a.allow_group_call_guest(gid, "pwa-browser-1")
            for bad in ("", "two  spaces", "x" * 200, "semi;colon"):
                with pytest.raises(p.PeernsError.InvalidInput):
                    await a.allow_group_call_guest(gid, bad)
            with pytest.raises(p.PeernsError.NotAllowed):
                await b.allow_group_call_guest(gid, "pwa-browser-1")
        finally:
            await asyncio.gather(*(n.stop() for n in nodes))

    asyncio.run(main())
