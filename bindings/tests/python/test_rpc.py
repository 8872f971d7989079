"""Signed RPC through the generated Python bindings: grants only at Full Access, a served
folder, a call that is allowed and one that is not, arming the camera, and the audit log."""

import asyncio
import json
import os
import tempfile

import pytest

import peerns_ffi as p
from test_node import Listener, make_contacts, new_node, start_all


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
