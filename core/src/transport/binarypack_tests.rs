use super::*;
use serde_json::json;

fn hex_of(v: &PackValue) -> String {
    hex::encode(pack(v))
}

fn unhex(s: &str) -> Result<PackValue, PackError> {
    unpack(&hex::decode(s).unwrap())
}

#[test]
fn fixture_roundtrip_vectors_match_js_both_ways() {
    let vectors = fixtures::vectors();
    let list = vectors["roundtrip"].as_array().unwrap();
    assert!(list.len() > 60);
    for vector in list {
        let name = vector["name"].as_str().unwrap();
        let value = fixtures::value(&vector["json"]);
        let bytes = pack(&value);
        fixtures::assert_bytes(name, vector, &bytes);
        assert_eq!(unpack(&bytes).as_ref(), Ok(&value), "{name}: unpack");
    }
}

#[test]
fn fixture_decode_vectors_match_js() {
    let vectors = fixtures::vectors();
    for vector in vectors["decode"].as_array().unwrap() {
        let name = vector["name"].as_str().unwrap();
        let hex = vector["hex"].as_str().unwrap();
        let value = fixtures::value(&vector["json"]);
        assert_eq!(unhex(hex), Ok(value.clone()), "{name}: unpack");
        if vector["peerns_packs"] == true {
            assert_eq!(hex_of(&value), hex, "{name}: pack");
        }
    }
}

#[test]
fn numbers_pack_like_js_numbers() {
    assert_eq!(hex_of(&PackValue::Float(2.0)), "02");
    assert_eq!(hex_of(&PackValue::Float(-0.0)), "00");
    assert_eq!(hex_of(&PackValue::Float(-129.0)), "d1ff7f");
    assert_eq!(hex_of(&PackValue::Float(1e300)), "cb7e37e43c8800759c");
    assert_eq!(
        hex_of(&PackValue::Float(f64::INFINITY)),
        "cb7ff0000000000000"
    );
    assert_eq!(hex_of(&PackValue::Float(f64::NAN)), "cb7ff8000000000000");
    assert_eq!(hex_of(&PackValue::Float(TWO_63)), "cf8000000000000000");
    assert_eq!(hex_of(&PackValue::Float(TWO_64)), "cb43f0000000000000");
    assert_eq!(hex_of(&PackValue::Int(i64::MAX)), "d37fffffffffffffff");
    assert_eq!(hex_of(&PackValue::Int(i64::MIN)), "d38000000000000000");

    assert_eq!(PackValue::number(-0.0), PackValue::Int(0));
    assert_eq!(PackValue::number(-TWO_63), PackValue::Int(i64::MIN));
    assert_eq!(PackValue::number(TWO_63), PackValue::Float(TWO_63));
    assert_eq!(PackValue::number(0.5), PackValue::Float(0.5));
    assert!(matches!(unhex("cb7ff8000000000000"), Ok(PackValue::Float(x)) if x.is_nan()));
    assert_eq!(
        unhex("cb7ff0000000000000"),
        Ok(PackValue::Float(f64::INFINITY))
    );
    assert_eq!(unhex("ca00000000"), Ok(PackValue::Int(0)));
}

#[test]
fn unpack_rejects_bad_input() {
    use PackError::*;
    assert_eq!(
        unhex(""),
        Err(Truncated {
            offset: 0,
            needed: 1
        })
    );
    assert_eq!(unhex("c0c0"), Err(TrailingBytes(1)));
    assert_eq!(
        unhex("cd01"),
        Err(Truncated {
            offset: 1,
            needed: 2
        })
    );
    assert_eq!(
        unhex("b36162"),
        Err(Truncated {
            offset: 1,
            needed: 3
        })
    );
    assert_eq!(
        unhex("c4"),
        Err(UnsupportedType {
            byte: 0xc4,
            offset: 0
        })
    );
    assert_eq!(
        unhex("91d4"),
        Err(UnsupportedType {
            byte: 0xd4,
            offset: 1
        })
    );
    assert_eq!(unhex("b2c328"), Err(InvalidUtf8(1)));
    assert_eq!(unhex("b3eda080"), Err(InvalidUtf8(1)));
    // Length prefixes claiming ~4 GiB in a few bytes fail before allocating.
    assert_eq!(
        unhex("d9ffffffff61"),
        Err(Truncated {
            offset: 5,
            needed: 0xffff_ffff
        })
    );
    assert_eq!(
        unhex("dbffffffff00"),
        Err(Truncated {
            offset: 5,
            needed: 0xffff_ffff
        })
    );
    assert_eq!(
        unhex("ddffffffff00"),
        Err(Truncated {
            offset: 5,
            needed: 0xffff_ffff
        })
    );
    assert_eq!(
        unhex("dfffffffff00"),
        Err(Truncated {
            offset: 5,
            needed: 0x1_ffff_fffe
        })
    );
    assert_eq!(
        unhex("8100"),
        Err(Truncated {
            offset: 1,
            needed: 2
        })
    );
}

#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| [vec![0x91; depth], vec![0xc0]].concat();
    assert!(unpack(&nested(MAX_DEPTH)).is_ok());
    assert_eq!(unpack(&nested(MAX_DEPTH + 1)), Err(PackError::TooDeep));
    assert_eq!(unpack(&vec![0x81; 100_000]), Err(PackError::TooDeep));
}

#[test]
fn json_conversion() {
    let json = json!({"b": [1, 2.5, null, true], "a": "x", "10": {}, "2": -7});
    let value = PackValue::from_json(&json);
    let keys: Vec<_> = match &value {
        PackValue::Map(entries) => entries.iter().map(|(k, _)| k.clone()).collect(),
        _ => unreachable!(),
    };
    let key = |s: &str| PackValue::Str(s.into());
    assert_eq!(keys, [key("2"), key("10"), key("a"), key("b")]);
    assert_eq!(value.get("2"), Some(&PackValue::Int(-7)));
    assert_eq!(value.to_json(), Ok(json));
    assert_eq!(PackValue::from_json(&json!(1.0)), PackValue::Int(1));
    assert_eq!(
        PackValue::from_json(&json!(u64::MAX)),
        PackValue::Float(TWO_64)
    );

    assert_eq!(PackValue::Bin(vec![]).to_json(), Err(ToJsonError::Binary));
    assert_eq!(
        PackValue::Float(f64::NAN).to_json(),
        Err(ToJsonError::NonFinite)
    );
    let map = |k: PackValue| PackValue::Map(vec![(k, PackValue::Null)]);
    assert_eq!(
        map(PackValue::Int(1)).to_json(),
        Err(ToJsonError::NonStringKey)
    );
    let dup = PackValue::Map(vec![
        (key("k"), PackValue::Int(1)),
        (key("k"), PackValue::Int(2)),
    ]);
    assert_eq!(dup.to_json(), Err(ToJsonError::DuplicateKey("k".into())));
    assert_eq!(dup.get("k"), Some(&PackValue::Int(2)));
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

fn random_value(rng: &mut XorShift, depth: usize) -> PackValue {
    let kinds = if depth < 4 { 9 } else { 7 };
    match rng.below(kinds) {
        0 => PackValue::Null,
        1 => PackValue::Bool(rng.next() & 1 == 1),
        2 => PackValue::Int(rng.next() as i64 >> rng.below(64)),
        3 => match f64::from_bits(rng.next()) {
            x if x.is_nan() => PackValue::Float(0.25),
            x => PackValue::number(x),
        },
        4 => {
            let len = if rng.below(8) == 0 {
                300
            } else {
                rng.below(20)
            };
            let chars = (0..len).map(|_| char::from_u32(rng.below(0x11_0000) as u32));
            PackValue::Str(chars.map(|c| c.unwrap_or('?')).collect())
        }
        5 => PackValue::Bin((0..rng.below(40)).map(|_| rng.next() as u8).collect()),
        6 => PackValue::number((rng.next() as i32) as f64 / 8.0),
        7 => {
            let len = if rng.below(8) == 0 { 17 } else { rng.below(5) };
            PackValue::Array((0..len).map(|_| random_value(rng, depth + 1)).collect())
        }
        _ => PackValue::Map(
            (0..rng.below(18))
                .map(|_| (random_value(rng, depth + 1), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

#[test]
fn random_values_round_trip() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let value = random_value(&mut rng, 0);
        assert_eq!(unpack(&pack(&value)), Ok(value));
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let samples: Vec<Vec<u8>> = (0..64).map(|_| pack(&random_value(&mut rng, 0))).collect();
    let mut decoded = 0;
    for round in 0..40_000 {
        let input: Vec<u8> = if round % 2 == 0 {
            (0..rng.below(48)).map(|_| rng.next() as u8).collect()
        } else {
            let mut bytes = samples[rng.below(64)].clone();
            for _ in 0..=rng.below(3) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len() as u64);
                    bytes[i] = rng.next() as u8;
                }
            }
            bytes.truncate(bytes.len() - rng.below(3).min(bytes.len()));
            bytes
        };
        if let Ok(value) = unpack(&input) {
            decoded += 1;
            let repacked = pack(&value);
            assert_eq!(pack(&unpack(&repacked).unwrap()), repacked);
        }
    }
    assert!(decoded > 1000, "only {decoded} inputs decoded");
}
