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
    """Collects received frames (called on the library's sink thread)."""

    def __init__(self):
        self.frames = []
        self.lock = threading.Lock()

    def on_frame(self, frame):
        with self.lock:
            self.frames.append((frame, time.monotonic()))

    def of(self, track):
        with self.lock:
            return [f for f, _ in self.frames if f.track == track]


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
            frames = Frames()
            sinks = await b.call_media_sinks(call, frames)

            pushed_at = {}
            for i in range(60):
                key, data = video_frame(i)
                pushed_at[i] = time.monotonic()
                assert video.push_frame(i * 33_333, key, data)
                assert audio.push_frame(i * 20_000, False, bytes([0xF8, i]) + bytes(60))
                await asyncio.sleep(0.02)

            deadline = time.monotonic() + 10
            while len(frames.of("video")) < 55 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            got = frames.of("video")
            assert len(got) >= 55, f"{len(got)} of 60 video frames"
            assert sorted(sinks.tracks()) == ["audio", "video"]
            assert sinks.frames_received("video") == len(got)
            seen = set()
            for f in got:
                assert f.kind == "video"
                i = int(f.data.split(b"PEERNS")[1][:4])
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
