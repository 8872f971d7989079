"""QR codes through the generated Python bindings: a node's share link drawn as a QR code and
read back from a camera-like frame (padded rows), and bad frames refused."""

import pytest

import peerns_ffi as p


def frame(code, scale=4, pad=7):
    """The code as a greyscale frame: `scale` pixels a module, a 4-module quiet zone, rows
    padded by `pad` bytes (as a camera's Y plane often is)."""
    side = (code.size + 8) * scale
    stride = side + pad
    px = bytearray([255] * (stride * side))
    for y in range(side):
        my = y // scale - 4
        for x in range(side):
            mx = x // scale - 4
            if 0 <= mx < code.size and 0 <= my < code.size and code.dark[my * code.size + mx]:
                px[y * stride + x] = 16
    return side, stride, bytes(px)


def test_qr_round_trip_and_bounds():
    link = "peerns2:" + "ab" * 32 + "?id=peerns2-" + "c" * 24
    code = p.qr_encode(link)
    assert len(code.dark) == code.size * code.size
    side, stride, px = frame(code)
    assert p.qr_decode(side, side, stride, px) == [link]
    # A blank frame reads nothing; malformed frames and texts are refused.
    assert p.qr_decode(64, 64, 64, bytes([255] * 64 * 64)) == []
    with pytest.raises(p.PeernsError.InvalidInput):
        p.qr_decode(64, 64, 64, bytes(10))
    with pytest.raises(p.PeernsError.InvalidInput):
        p.qr_decode(64, 64, 32, bytes(64 * 64))
    with pytest.raises(p.PeernsError.InvalidInput):
        p.qr_encode("")
    with pytest.raises(p.PeernsError.InvalidInput):
        p.qr_encode("x" * 3000)
