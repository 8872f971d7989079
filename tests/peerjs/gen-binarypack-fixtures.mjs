// Writes core/tests/fixtures/binarypack/vectors.json: BinaryPack byte vectors produced by the
// real peerjs-js-binarypack 2.1.0 packer/unpacker and the real peerjs 1.5.5 chunker.
//
// Run from the repository root:  node tests/peerjs/gen-binarypack-fixtures.mjs
//
// Value convention in "json" fields (plain JSON otherwise):
//   {"$bin": "<hex>"}        binary (ArrayBuffer / Uint8Array)
//   {"$bin_seq": n}          n bytes, byte i = i % 251
//   {"$str_rep": [s, n]}     the string s repeated n times
//   {"$arr_rep": [v, n]}     an array of n copies of v
//   {"$map_seq": n}          the object {k0: 0, k1: 1, ..., k<n-1>: n-1}, keys in that order
// Plain objects in "json" are written with their keys in JS Object.keys order, which is the
// order the packer emits them in.
//
// Sections:
//   roundtrip  JS pack(value) === bytes. JS unpack(bytes) gives the value back, except where
//              "js_unpack_gives" records what the JS unpacker returns instead.
//   decode     bytes the JS packer does not emit for "json" (non-minimal encodings, JS packer
//              quirks, the exact encodings PeerNS emits where JS cannot). "json" is the value the
//              bytes encode: what JS unpack returns, except where "js_unpack_gives" records JS's
//              different result. "peerns_packs": PeerNS packs "json" to exactly these bytes.
//   chunked    a message above peerjs's chunkedMTU and the frames peerjs sends for it.
// Outputs longer than 1024 bytes are stored as {len, head (first 32 bytes, hex), sha256}.

import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread } from "node:worker_threads";
import { pack, unpack } from "peerjs-js-binarypack";
import peerjs from "peerjs";

const { util } = peerjs;
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const outFile = join(root, "core/tests/fixtures/binarypack/vectors.json");
const INLINE_MAX = 1024;

const toHex = (bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (hex) => new Uint8Array(Buffer.from(hex, "hex"));

function materialize(spec) {
	if (Array.isArray(spec)) return spec.map(materialize);
	if (spec === null || typeof spec !== "object") return spec;
	const [rule, arg] = Object.entries(spec)[0] ?? [];
	switch (Object.keys(spec).length === 1 ? rule : undefined) {
		case "$bin":
			return fromHex(arg);
		case "$bin_seq":
			return Uint8Array.from({ length: arg }, (_, i) => i % 251);
		case "$str_rep":
			return arg[0].repeat(arg[1]);
		case "$arr_rep":
			return new Array(arg[1]).fill(materialize(arg[0]));
		case "$map_seq":
			return Object.fromEntries(Array.from({ length: arg }, (_, i) => [`k${i}`, i]));
		default:
			return Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, materialize(v)]));
	}
}

// JS value (as unpacked) -> the JSON convention, materialized.
function toJson(value) {
	if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
		return { $bin: toHex(new Uint8Array(value.buffer ?? value, value.byteOffset ?? 0, value.byteLength)) };
	}
	if (Array.isArray(value)) return value.map(toJson);
	if (value !== null && typeof value === "object") {
		return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
	}
	return value === undefined ? null : value;
}

function bytesField(bytes) {
	if (bytes.length <= INLINE_MAX) return { hex: toHex(bytes) };
	return {
		len: bytes.length,
		head: toHex(bytes.subarray(0, 32)),
		sha256: createHash("sha256").update(bytes).digest("hex"),
	};
}

function packBytes(value) {
	return new Uint8Array(pack(value));
}

function sameJson(a, b) {
	return JSON.stringify(a) === JSON.stringify(b);
}

function roundtrip(name, spec) {
	const value = materialize(spec);
	const bytes = packBytes(value);
	const vector = { name, json: spec, ...bytesField(bytes) };
	const back = toJson(unpack(bytes.buffer));
	if (!sameJson(back, toJson(value))) vector.js_unpack_gives = back;
	return vector;
}

// A "decode" vector; `expect` defaults to what JS unpacks from `hex`.
function decode(name, hex, { expect, peernsPacks = false } = {}) {
	const back = toJson(unpack(fromHex(hex).buffer));
	const json = expect === undefined ? back : expect;
	const vector = { name, hex, json, peerns_packs: peernsPacks };
	if (!sameJson(back, toJson(materialize(json)))) vector.js_unpack_gives = back;
	return vector;
}

// The bytes JS packs `value` into, where they do not mean `value`.
function jsQuirk(name, value, peernsPacks = false) {
	return decode(name, toHex(packBytes(value)), { peernsPacks });
}

function ieeeDouble(x) {
	const b = Buffer.alloc(9);
	b[0] = 0xcb;
	b.writeDoubleBE(x, 1);
	return b.toString("hex");
}

const seqKeys = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(2, "0")}`, i]));

function main() {
	const roundtripVectors = [
		roundtrip("null", null),
		roundtrip("true", true),
		roundtrip("false", false),
		...[
			0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128,
			-129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1),
		].map((n) => roundtrip(`int ${n}`, n)),
		roundtrip("negative zero packs as int 0", -0),
		...[0.5, -1.25, 0.1, Math.PI, -2.5e-300, 1.5e-5, 123456.789, 1234567890.125].map((x) =>
			roundtrip(`double ${x}`, x),
		),
		roundtrip("string empty", ""),
		roundtrip("string ascii", "hello"),
		roundtrip("string utf8", "héllo wörld 😀"),
		roundtrip("string 15 bytes", "a".repeat(15)),
		roundtrip("string 16 bytes", "a".repeat(16)),
		roundtrip("string 15 utf8 bytes", `${"é".repeat(7)}a`),
		roundtrip("string 16 utf8 bytes, 8 chars", "é".repeat(8)),
		roundtrip("string 65535 bytes", { $str_rep: ["x", 65535] }),
		roundtrip("string 65536 bytes", { $str_rep: ["x", 65536] }),
		roundtrip("binary empty", { $bin: "" }),
		roundtrip("binary 1 byte", { $bin: "ff" }),
		roundtrip("binary 15 bytes", { $bin_seq: 15 }),
		roundtrip("binary 16 bytes", { $bin_seq: 16 }),
		roundtrip("binary 300 bytes", { $bin_seq: 300 }),
		roundtrip("binary 65535 bytes", { $bin_seq: 65535 }),
		roundtrip("binary 65536 bytes", { $bin_seq: 65536 }),
		roundtrip("binary 70000 bytes", { $bin_seq: 70000 }),
		roundtrip("array empty", []),
		roundtrip("array mixed", [1, "a", null, true, 0.5, { $bin: "0102" }]),
		roundtrip("array 15", { $arr_rep: [7, 15] }),
		roundtrip("array 16", { $arr_rep: [7, 16] }),
		roundtrip("array 65535", { $arr_rep: [0, 65535] }),
		roundtrip("array 65536", { $arr_rep: [0, 65536] }),
		roundtrip("array nested", [[[]], [[1], [2, [3]]]]),
		roundtrip("map empty", {}),
		roundtrip("map one", { a: 1 }),
		roundtrip("map 15", seqKeys(15)),
		roundtrip("map 16", seqKeys(16)),
		roundtrip("map 65535", { $map_seq: 65535 }),
		roundtrip("map 65536", { $map_seq: 65536 }),
		roundtrip("map nested", { a: { b: [1, { c: null }] }, d: { $bin: "00" } }),
		roundtrip("map array-index keys come first", { "01": 5, a: 1, 10: 2, 2: 3, b: 4 }),
		roundtrip("peerjs close request", { __peerData: { type: "close" } }),
		roundtrip("chat-like message", {
			attachment: { $bin_seq: 20 },
			body: "hi 👋",
			id: "3f2c",
			seq: 42,
			ts: 1700000000123,
			type: "chat",
		}),
	];

	const decodeVectors = [
		decode("float32 1.5", "ca3fc00000"),
		decode("float32 -3.1415927", "cac0490fdb"),
		decode("double holding an integer", "cb4000000000000000"),
		decode("uint8 non-minimal", "cc05"),
		decode("int8 non-minimal", "d005"),
		decode("uint64 small", "cf0000000000000005"),
		decode("uint64 max", "cfffffffffffffffff"),
		decode("int64 -1", "d3ffffffffffffffff", { expect: -1 }),
		decode("int64 min", "d38000000000000000"),
		decode("str16 short", "d80003616263"),
		decode("str32 short", "d900000003616263"),
		decode("raw16 short", "da00020102"),
		decode("raw32 short", "db000000020102"),
		decode("array16 short", "dc000101"),
		decode("array32 short", "dd0000000101"),
		decode("map16 short", "de0001b16101"),
		decode("map32 short", "df00000001b16101"),
		decode("undefined inside an array", "91c1"),
		decode("peerns 1e300 (JS pack throws)", ieeeDouble(1e300), { peernsPacks: true }),
		decode("peerns -1e300 (JS pack throws)", ieeeDouble(-1e300), { peernsPacks: true }),
		decode("peerns 2^63 as uint64", "cf8000000000000000", { peernsPacks: true }),
		decode("peerns 2^64-2048 as uint64", "cffffffffffffff800", { peernsPacks: true }),
		jsQuirk("js packs 2^63 as int64 -2^63", 2 ** 63),
		jsQuirk("js packs 2^52-0.5 (just below a power of two) as another double", 2 ** 52 - 0.5),
		decode("js packs NaN as the bytes of 0.0 (JS unpacks them as 2^-1023)", toHex(packBytes(Number.NaN)), { expect: 0 }),
		jsQuirk("js packs 2^63+4096 as uint64", 2 ** 63 + 4096, true),
	];

	// peerjs BinaryPack._send: pack the message; when the packed size exceeds chunkedMTU, split
	// it with the chunker and pack each chunk object as its own frame.
	const chunkedSpec = { $bin_seq: 40000 };
	const chunkedPacked = packBytes(materialize(chunkedSpec));
	if (!(chunkedPacked.byteLength > util.chunkedMTU)) throw new Error("chunked message is too small");
	const chunkedFrames = util.chunk(chunkedPacked.buffer).map((c) => {
		if (c.__peerData !== 1) throw new Error("expected the first chunked message to get id 1");
		return bytesField(packBytes(c));
	});

	const fixture = {
		generator: "tests/peerjs/gen-binarypack-fixtures.mjs (peerjs-js-binarypack 2.1.0, peerjs 1.5.5)",
		roundtrip: roundtripVectors,
		decode: decodeVectors,
		chunked: {
			chunked_mtu: util.chunkedMTU,
			message: chunkedSpec,
			packed: bytesField(chunkedPacked),
			message_id: 1,
			frames: chunkedFrames,
		},
	};

	const lines = (items) => items.map((v) => `    ${JSON.stringify(v)}`).join(",\n");
	const text = [
		"{",
		`  "generator": ${JSON.stringify(fixture.generator)},`,
		`  "roundtrip": [\n${lines(fixture.roundtrip)}\n  ],`,
		`  "decode": [\n${lines(fixture.decode)}\n  ],`,
		`  "chunked": ${JSON.stringify(fixture.chunked)}`,
		"}\n",
	].join("\n");
	JSON.parse(text);
	mkdirSync(dirname(outFile), { recursive: true });
	writeFileSync(outFile, text);
	console.log(`wrote ${outFile} (${text.length} bytes)`);
}

// The JS packer recurses once per array element and map entry, so containers of a few thousand
// entries overflow the default stack (about 8800 entries in Node 20). Generate in a worker with a
// larger stack so the 65535/65536-entry vectors can be produced.
if (isMainThread) {
	new Worker(new URL(import.meta.url), { resourceLimits: { stackSizeMb: 256 } }).on("error", (e) => {
		console.error(e);
		process.exitCode = 1;
	});
} else {
	main();
}
