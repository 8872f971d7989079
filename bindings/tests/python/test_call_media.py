"""A call's media through the generated Python bindings, as a phone shell drives it: the caller
pushes encoded frames (fake H.264 NAL units, Opus-sized packets) into per-track sources, the
callee gets each complete frame from its sink callback, and the callee's keyframe request
reaches the caller's encoder listener."""

import asyncio
import tempfile
import threading
import time

import peerns_ffi as p
from test_node import Listener, make_contacts, new_node, of_kind, start_all

AV = p.CallKinds(audio=True, video=True, screen=False)
START = b"\x00\x00\x00\x01"


class Encoder(p.EncoderControlListener):
    def __init__(self):
        self.keyframes = 0
        self.bitrates = []

    def request_keyframe(self):
        self.keyframes += 1

    def target_bitrate(self, bps):
        self.bitrates.append(bps)


class Frames(p.MediaFrameListener):
    """Collects received frames (called on the library's sink thread); raises instead for the
    video frames numbered in `fail` (as a platform decoder that throws would)."""

    def __init__(self, fail=()):
        self.frames = []
        self.failed = []
        self.fail = set(fail)
        self.lock = threading.Lock()

    def on_frame(self, frame):
        if frame.kind == "video" and frame_number(frame) in self.fail:
            self.failed.append(frame_number(frame))
            raise RuntimeError("the decoder choked")
        with self.lock:
            self.frames.append((frame, time.monotonic()))

    def of(self, track):
        with self.lock:
            return [f for f, _ in self.frames if f.track == track]


def frame_number(frame):
    return int(frame.data.split(b"PEERNS")[1][:4])


def video_frame(i):
    """Access unit i: SPS + PPS + IDR every 10th frame, else one non-IDR slice; each slice
    carries a marker with its number."""
    marker = b"PEERNS%04d" % i + bytes(range(40))
    if i % 10 == 0:
        return True, START + b"\x67\x42\xc0\x1f\xaa" + START + b"\x68\xce\x3c\x80" + START + b"\x65" + marker
    return False, START + b"\x41" + marker


def test_call_media_sources_and_sinks():
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        a, b = new_node(dirs[0].name, "ada"), new_node(dirs[1].name, "bob")
        await start_all(a, b)
        la, lb = Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb)]
        try:
            fb = b.identity().fingerprint
            await make_contacts(a, la, b, lb)
            call = await a.start_call(fb, AV)
            await lb.wait_for(lambda ev: of_kind(ev, "incoming_call", call=call))
            b.accept_call(call, p.CallKinds(audio=True, video=False, screen=False))
            # Both shells hear that the media is up.
            await la.wait_for(lambda ev: of_kind(ev, "call_media_connected", call=call), 15)
            await lb.wait_for(lambda ev: of_kind(ev, "call_media_connected", call=call), 15)

            venc, aenc = Encoder(), Encoder()
            video = await a.call_media_source(call, "video", venc)
            audio = await a.call_media_source(call, "audio", aenc)
            # Two frames make the listener throw: the frames after them still arrive.
            frames = Frames(fail=(3, 4))
            sinks = await b.call_media_sinks(call, frames)

            pushed_at = {}
            for i in range(60):
                key, data = video_frame(i)
                pushed_at[i] = time.monotonic()
                assert video.push_frame(i * 33_333, key, data)
                assert audio.push_frame(i * 20_000, False, bytes([0xF8, i]) + bytes(60))
                await asyncio.sleep(0.02)

            deadline = time.monotonic() + 10
            while len(frames.of("video")) < 53 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            got = frames.of("video")
            assert len(got) >= 53, f"{len(got)} of 58 video frames"
            assert sorted(sinks.tracks()) == ["audio", "video"]
            assert frames.failed == [3, 4]
            assert sinks.frames_received("video") == len(got) + 2
            seen = set()
            for f in got:
                assert f.kind == "video"
                i = frame_number(f)
                assert f.data.endswith(video_frame(i)[1][-50:]), f.data
                assert f.keyframe == (i % 10 == 0)
                seen.add(i)
            assert 0 in seen and len(seen) == len(got)
            heard = frames.of("audio")
            assert len(heard) >= 50 and all(f.keyframe and f.data[0] == 0xF8 for f in heard)
            assert video.frames_sent() >= 60 and video.frames_dropped() == 0

            # The callee asks for a keyframe: the caller's encoder hears it.
            await sinks.request_keyframe("video")
            deadline = time.monotonic() + 5
            while venc.keyframes == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert venc.keyframes >= 1 and aenc.keyframes == 0

            sinks.cancel()
            a.hang_up(call)
            await lb.wait_for(lambda ev: of_kind(ev, "call_logged"))
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())


def test_when_both_send_video_each_keyframe_request_reaches_the_other_encoder():
    """Both sides send a track named `video` and receive the other's, also `video`: a keyframe
    request about one's own video must reach its encoder, not the received track of the same
    name (third_party PATCH(rtcp-route); decision 0003)."""
    async def main():
        dirs = [tempfile.TemporaryDirectory() for _ in range(2)]
        a, b = new_node(dirs[0].name, "ada"), new_node(dirs[1].name, "bob")
        await start_all(a, b)
        la, lb = Listener(), Listener()
        subs = [a.subscribe(la), b.subscribe(lb)]
        try:
            await make_contacts(a, la, b, lb)
            call = await a.start_call(b.identity().fingerprint, AV)
            await lb.wait_for(lambda ev: of_kind(ev, "incoming_call", call=call))
            b.accept_call(call, AV)
            await la.wait_for(lambda ev: of_kind(ev, "call_media_connected", call=call), 15)
            await lb.wait_for(lambda ev: of_kind(ev, "call_media_connected", call=call), 15)
            encoders = [Encoder(), Encoder()]
            sources = [await n.call_media_source(call, "video", e) for n, e in zip((a, b), encoders)]
            frames = [Frames(), Frames()]
            sinks = [await n.call_media_sinks(call, f) for n, f in zip((a, b), frames)]
            loop = asyncio.get_running_loop()
            i = 0

            async def push_until(done, what, timeout=15.0):
                nonlocal i
                deadline = loop.time() + timeout
                while not done():
                    assert loop.time() < deadline, f"timed out waiting for {what}"
                    key, data = video_frame(i)
                    for s in sources:
                        s.push_frame(i * 33_333, key, data)
                    i += 1
                    await asyncio.sleep(0.03)

            await push_until(lambda: all(f.of("video") for f in frames), "video both ways")
            for asker, sender in ((1, 0), (0, 1)):
                last = {"count": encoders[sender].keyframes, "since": loop.time()}

                def settled():
                    now, count = loop.time(), encoders[sender].keyframes
                    if count != last["count"]:
                        last.update(count=count, since=now)
                    return now - last["since"] >= 1.0

                await push_until(settled, "keyframe requests to settle")
                before = encoders[sender].keyframes
                await sinks[asker].request_keyframe("video")
                await push_until(lambda: encoders[sender].keyframes > before,
                                 f"{'ab'[sender]}'s encoder to hear {'ab'[asker]}'s request", 10.0)
            for s in sinks:
                s.cancel()
            a.hang_up(call)
            for s in subs:
                s.cancel()
        finally:
            await asyncio.gather(a.stop(), b.stop())

    asyncio.run(main())
