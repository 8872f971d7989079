//! BinaryPack, the wire format of PeerJS `serialization: "binary"` (the peerjs default),
//! byte-compatible with npm `peerjs-js-binarypack` 2.1.0 as used by peerjs 1.5.
//!
//! It resembles MessagePack but assigns the type bytes differently (multi-byte numbers and
//! lengths are big-endian):
//!
//! | type bytes | value |
//! |---|---|
//! | `00`–`7f`, `e0`–`ff` | integer 0..=127, −32..=−1 |
//! | `80`–`8f`, `de` u16, `df` u32 | map of that many key/value pairs |
//! | `90`–`9f`, `dc` u16, `dd` u32 | array of that many values |
//! | `a0`–`af`, `da` u16, `db` u32 | binary ("raw") of that many bytes |
//! | `b0`–`bf`, `d8` u16, `d9` u32 | UTF-8 string of that many bytes |
//! | `c0` null, `c1` undefined, `c2` false, `c3` true | |
//! | `ca` f32, `cb` f64 | float |
//! | `cc`–`cf` u8..u64, `d0`–`d3` i8..i64 | integer |
//!
//! Lengths use the fixed form up to 15, then 16, then 32 bits. Integers use the first encoding
//! that fits in the order fixint, u8, i8, u16, i16, u32, i32, i64 — so positive values above
//! `u32::MAX` are written as i64, never u64. `c4`–`c9` and `d4`–`d7` are not part of the format.
//!
//! # Numbers
//!
//! JavaScript has a single number type, so [`PackValue::Int`] and an integral
//! [`PackValue::Float`] are the same JS value: both pack as that integer, and [`unpack`] and
//! [`PackValue::from_json`] return `Int` for every integral number in `i64` range (see
//! [`PackValue::number`]). Non-integral numbers pack as f64; the JS packer never writes f32.
//!
//! Where the JS packer throws or writes bytes that mean another number, [`pack`] writes the exact
//! encoding instead, which the JS unpacker reads correctly: ±∞, NaN and integral values from
//! 2^64 up become an f64 (JS throws, or writes the bytes of 0.0 for NaN), integral values in
//! [2^63, 2^64) a u64 (JS writes 2^63 as i64 −2^63), and f64s that JS mis-encodes (subnormals,
//! values a few ulps below a power of two) their IEEE-754 bits. The JS unpacker in turn rounds
//! 64-bit integers through an f64, so it reads negative i64 values below −2^31 that are not
//! multiples of 2048 slightly off; [`unpack`] decodes them exactly.

use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and maps that [`unpack`] accepts.
pub const MAX_DEPTH: usize = 64;

const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

/// A BinaryPack value.
#[derive(Debug, Clone, PartialEq)]
pub enum PackValue {
    /// JS `null`; JS `undefined` packs as this too.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integral number.
    Int(i64),
    /// A non-integral number, or an integral one outside `i64` (see the module docs).
    Float(f64),
    /// A string.
    Str(String),
    /// Binary data: a JS `ArrayBuffer` or typed array.
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<PackValue>),
    /// A map, in wire order. JS objects have string keys only; the format allows any key.
    Map(Vec<(PackValue, PackValue)>),
}

/// Why [`unpack`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// The input ends inside a value, or a length claims more than the input holds.
    #[error("input too short: {needed} more bytes needed at offset {offset}")]
    Truncated {
        /// Where the missing data starts.
        offset: usize,
        /// How many bytes (at least) the value needs from there.
        needed: usize,
    },
    /// Bytes follow the complete value.
    #[error("{0} unexpected bytes after the value")]
    TrailingBytes(usize),
    /// A type byte that BinaryPack does not define.
    #[error("unsupported type byte {byte:#04x} at offset {offset}")]
    UnsupportedType {
        /// The type byte.
        byte: u8,
        /// Its position.
        offset: usize,
    },
    /// A string is not valid UTF-8.
    #[error("string at offset {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    /// Arrays and maps nest deeper than [`MAX_DEPTH`].
    #[error("arrays and maps nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Why [`PackValue::to_json`] cannot express a value as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToJsonError {
    /// Binary data has no JSON form.
    #[error("binary data has no JSON form")]
    Binary,
    /// NaN and the infinities have no JSON form.
    #[error("NaN and infinities have no JSON form")]
    NonFinite,
    /// A map key is not a string.
    #[error("map key is not a string")]
    NonStringKey,
    /// A map has the same key twice.
    #[error("map key {0:?} appears twice")]
    DuplicateKey(String),
}

impl PackValue {
    /// The value of the JS number `x`: `Int` when `x` is integral and within `i64` (−0 becomes
    /// 0), otherwise `Float`.
    pub fn number(x: f64) -> Self {
        if x.fract() == 0.0 && (-TWO_63..TWO_63).contains(&x) {
            Self::Int(x as i64)
        } else {
            Self::Float(x)
        }
    }

    /// The value stored under the string key `key` if `self` is a map. Like a JS object built by
    /// the JS unpacker, the last of duplicate keys wins.
    pub fn get(&self, key: &str) -> Option<&PackValue> {
        let Self::Map(entries) = self else {
            return None;
        };
        entries.iter().rev().find_map(|(k, v)| match k {
            Self::Str(k) if k == key => Some(v),
            _ => None,
        })
    }

    /// Converts a JSON value. Numbers follow [`PackValue::number`]. Object keys are ordered as JS
    /// `Object.keys` orders them, which is the order the JS packer writes: array-index keys
    /// ("0".."4294967294") numerically first, then the rest in the map's iteration order (sorted,
    /// unless serde_json's `preserve_order` feature is on). The bytes therefore equal JS's for
    /// objects whose other keys were inserted in that order; either way a JS receiver sees the
    /// same object.
    pub fn from_json(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Self::number(n.as_f64().unwrap_or(f64::NAN)), Self::Int),
            Value::String(s) => Self::Str(s.clone()),
            Value::Array(items) => Self::Array(items.iter().map(Self::from_json).collect()),
            Value::Object(map) => Self::Map(js_key_order(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// Converts to JSON. Fails on binary data, NaN and infinities, non-string map keys and
    /// duplicate map keys (JS would keep the last one; here that is treated as malformed).
    pub fn to_json(&self) -> Result<Value, ToJsonError> {
        Ok(match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::from(*i),
            Self::Float(x) => Value::Number(Number::from_f64(*x).ok_or(ToJsonError::NonFinite)?),
            Self::Str(s) => Value::String(s.clone()),
            Self::Bin(_) => return Err(ToJsonError::Binary),
            Self::Array(items) => {
                Value::Array(items.iter().map(Self::to_json).collect::<Result<_, _>>()?)
            }
            Self::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let Self::Str(key) = key else {
                        return Err(ToJsonError::NonStringKey);
                    };
                    if map.insert(key.clone(), value.to_json()?).is_some() {
                        return Err(ToJsonError::DuplicateKey(key.clone()));
                    }
                }
                Value::Object(map)
            }
        })
    }
}

/// Orders object entries like JS `Object.keys`: canonical array-index keys ascending, then the
/// others in their given order.
fn js_key_order(mut entries: Vec<(String, PackValue)>) -> Vec<(PackValue, PackValue)> {
    entries.sort_by_key(|(key, _)| array_index(key).map_or((1, 0), |i| (0, i)));
    entries
        .into_iter()
        .map(|(k, v)| (PackValue::Str(k), v))
        .collect()
}

fn array_index(key: &str) -> Option<u32> {
    let index: u32 = key.parse().ok()?;
    (index < u32::MAX && index.to_string() == key).then_some(index)
}

/// Encodes `value` exactly as `peerjs-js-binarypack` encodes the equivalent JS value (see the
/// module docs for the numbers JS cannot encode).
///
/// # Panics
///
/// If a string, binary, array or map is longer than `u32::MAX` (the JS packer throws as well).
pub fn pack(value: &PackValue) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &PackValue) {
    match value {
        PackValue::Null => out.push(0xc0),
        PackValue::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        PackValue::Int(i) => write_int(out, *i),
        PackValue::Float(x) => write_float(out, *x),
        PackValue::Str(s) => {
            write_len(out, s.len(), [0xb0, 0xd8, 0xd9]);
            out.extend_from_slice(s.as_bytes());
        }
        PackValue::Bin(bytes) => {
            write_len(out, bytes.len(), [0xa0, 0xda, 0xdb]);
            out.extend_from_slice(bytes);
        }
        PackValue::Array(items) => {
            write_len(out, items.len(), [0x90, 0xdc, 0xdd]);
            for item in items {
                write_value(out, item);
            }
        }
        PackValue::Map(entries) => {
            write_len(out, entries.len(), [0x80, 0xde, 0xdf]);
            for (key, value) in entries {
                write_value(out, key);
                write_value(out, value);
            }
        }
    }
}

/// Writes a length as `fixed + len` up to 15, else as `tag16` + u16 or `tag32` + u32.
fn write_len(out: &mut Vec<u8>, len: usize, [fixed, tag16, tag32]: [u8; 3]) {
    match len {
        0..=0x0f => out.push(fixed + len as u8),
        0x10..=0xffff => {
            out.push(tag16);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            let len = u32::try_from(len).expect("BinaryPack lengths are at most u32::MAX");
            out.push(tag32);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    match i {
        -0x20..=0x7f => out.push(i as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, i as u8]),
        -0x80..=-0x21 => out.extend_from_slice(&[0xd0, i as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        }
        -0x8000..=-0x81 => {
            out.push(0xd1);
            out.extend_from_slice(&(i as i16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        }
        -0x8000_0000..=-0x8001 => {
            out.push(0xd2);
            out.extend_from_slice(&(i as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
    }
}

fn write_float(out: &mut Vec<u8>, x: f64) {
    let integral = x.fract() == 0.0;
    if integral && (-TWO_63..TWO_63).contains(&x) {
        write_int(out, x as i64);
    } else if integral && (TWO_63..TWO_64).contains(&x) {
        out.push(0xcf);
        out.extend_from_slice(&(x as u64).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&x.to_be_bytes());
    }
}

/// Decodes exactly one value spanning all of `bytes`. Never panics; nesting is limited to
/// [`MAX_DEPTH`] and every length is checked against the remaining input before anything is
/// allocated, so memory use stays proportional to `bytes.len()`.
///
/// `c1` (JS `undefined`) decodes as [`PackValue::Null`]. Unlike the JS unpacker, this rejects
/// truncated input, trailing bytes, undefined type bytes and invalid UTF-8.
pub fn unpack(bytes: &[u8]) -> Result<PackValue, PackError> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(0)?;
    match bytes.len() - reader.pos {
        0 => Ok(value),
        extra => Err(PackError::TrailingBytes(extra)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    /// Never beyond `bytes.len()`.
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], PackError> {
        let truncated = PackError::Truncated {
            offset: self.pos,
            needed: len,
        };
        let taken = self.bytes[self.pos..].get(..len).ok_or(truncated)?;
        self.pos += len;
        Ok(taken)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], PackError> {
        let mut buf = [0; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }

    fn len16(&mut self) -> Result<usize, PackError> {
        Ok(u16::from_be_bytes(self.fixed()?).into())
    }

    fn len32(&mut self) -> Result<usize, PackError> {
        Ok(u32::from_be_bytes(self.fixed()?) as usize)
    }

    fn value(&mut self, depth: usize) -> Result<PackValue, PackError> {
        let offset = self.pos;
        let [tag] = self.fixed()?;
        let fixed_len = usize::from(tag & 0x0f);
        Ok(match tag {
            0x00..=0x7f => PackValue::Int(tag.into()),
            0xe0..=0xff => PackValue::Int((tag as i8).into()),
            0x80..=0x8f => self.map(fixed_len, depth)?,
            0x90..=0x9f => self.array(fixed_len, depth)?,
            0xa0..=0xaf => self.bin(fixed_len)?,
            0xb0..=0xbf => self.str(fixed_len)?,
            0xc0 | 0xc1 => PackValue::Null,
            0xc2 => PackValue::Bool(false),
            0xc3 => PackValue::Bool(true),
            0xca => PackValue::number(f32::from_be_bytes(self.fixed()?).into()),
            0xcb => PackValue::number(f64::from_be_bytes(self.fixed()?)),
            0xcc => PackValue::Int(u8::from_be_bytes(self.fixed()?).into()),
            0xcd => PackValue::Int(u16::from_be_bytes(self.fixed()?).into()),
            0xce => PackValue::Int(u32::from_be_bytes(self.fixed()?).into()),
            0xcf => {
                let n = u64::from_be_bytes(self.fixed()?);
                i64::try_from(n).map_or(PackValue::Float(n as f64), PackValue::Int)
            }
            0xd0 => PackValue::Int(i8::from_be_bytes(self.fixed()?).into()),
            0xd1 => PackValue::Int(i16::from_be_bytes(self.fixed()?).into()),
            0xd2 => PackValue::Int(i32::from_be_bytes(self.fixed()?).into()),
            0xd3 => PackValue::Int(i64::from_be_bytes(self.fixed()?)),
            0xd8 => {
                let len = self.len16()?;
                self.str(len)?
            }
            0xd9 => {
                let len = self.len32()?;
                self.str(len)?
            }
            0xda => {
                let len = self.len16()?;
                self.bin(len)?
            }
            0xdb => {
                let len = self.len32()?;
                self.bin(len)?
            }
            0xdc => {
                let len = self.len16()?;
                self.array(len, depth)?
            }
            0xdd => {
                let len = self.len32()?;
                self.array(len, depth)?
            }
            0xde => {
                let len = self.len16()?;
                self.map(len, depth)?
            }
            0xdf => {
                let len = self.len32()?;
                self.map(len, depth)?
            }
            0xc4..=0xc9 | 0xd4..=0xd7 => {
                return Err(PackError::UnsupportedType { byte: tag, offset });
            }
        })
    }

    fn bin(&mut self, len: usize) -> Result<PackValue, PackError> {
        Ok(PackValue::Bin(self.take(len)?.to_vec()))
    }

    fn str(&mut self, len: usize) -> Result<PackValue, PackError> {
        let offset = self.pos;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| PackError::InvalidUtf8(offset))?;
        Ok(PackValue::Str(s.to_owned()))
    }

    /// Checks that a container of `count` values, each at least one byte, can be read at
    /// `depth` before its storage is allocated.
    fn check_container(&self, count: usize, depth: usize) -> Result<(), PackError> {
        if depth >= MAX_DEPTH {
            return Err(PackError::TooDeep);
        }
        if count > self.remaining() {
            return Err(PackError::Truncated {
                offset: self.pos,
                needed: count,
            });
        }
        Ok(())
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<PackValue, PackError> {
        self.check_container(len, depth)?;
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(PackValue::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<PackValue, PackError> {
        self.check_container(len.saturating_mul(2), depth)?;
        let mut entries = Vec::with_capacity(len);
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(PackValue::Map(entries))
    }
}

/// Fixture helpers shared with the chunking tests: `core/tests/fixtures/binarypack/vectors.json`,
/// written by `tests/peerjs/gen-binarypack-fixtures.mjs` from the real JS implementation.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{PackValue, js_key_order};
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    /// The parsed fixture file.
    pub(crate) fn vectors() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/binarypack/vectors.json"))
            .expect("fixture is JSON")
    }

    /// The value a fixture "json" field describes (conventions in the generator script).
    pub(crate) fn value(spec: &Value) -> PackValue {
        if let Value::Object(map) = spec
            && map.len() == 1
            && let Some((rule, arg)) = map.iter().next()
        {
            let count = |v: &Value| v.as_u64().unwrap() as usize;
            match rule.as_str() {
                "$bin" => return PackValue::Bin(hex::decode(arg.as_str().unwrap()).unwrap()),
                "$bin_seq" => return PackValue::Bin(byte_seq(count(arg))),
                "$str_rep" => {
                    return PackValue::Str(arg[0].as_str().unwrap().repeat(count(&arg[1])));
                }
                "$arr_rep" => return PackValue::Array(vec![value(&arg[0]); count(&arg[1])]),
                "$map_seq" => {
                    return PackValue::Map(
                        (0..count(arg) as i64)
                            .map(|i| (PackValue::Str(format!("k{i}")), PackValue::Int(i)))
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        match spec {
            Value::Array(items) => PackValue::Array(items.iter().map(value).collect()),
            Value::Object(map) => PackValue::Map(js_key_order(
                map.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
            )),
            other => PackValue::from_json(other),
        }
    }

    /// `n` bytes with byte `i` = `i % 251`.
    fn byte_seq(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    /// Asserts `bytes` equal the fixture's `{hex}` or `{len, head, sha256}` description.
    pub(crate) fn assert_bytes(name: &str, expected: &Value, bytes: &[u8]) {
        if let Some(hex) = expected["hex"].as_str() {
            assert_eq!(hex::encode(bytes), hex, "{name}");
            return;
        }
        assert_eq!(
            Some(bytes.len() as u64),
            expected["len"].as_u64(),
            "{name}: length"
        );
        let head = expected["head"].as_str().unwrap();
        assert_eq!(hex::encode(&bytes[..head.len() / 2]), head, "{name}: head");
        let sha = hex::encode(Sha256::digest(bytes));
        assert_eq!(
            Some(sha.as_str()),
            expected["sha256"].as_str(),
            "{name}: sha256"
        );
    }
}

#[cfg(test)]
#[path = "binarypack_tests.rs"]
mod tests;
