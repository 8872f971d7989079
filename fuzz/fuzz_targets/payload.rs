//! `transport::payload::parse`: the OFFER / ANSWER / CANDIDATE payloads a peer relays through
//! the signaling server. Input: a kind byte, then JSON. Never panics; an accepted payload,
//! serialized again, parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::transport::payload::{
    AnswerPayload, CandidatePayload, Checked, OfferPayload, parse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((kind, json)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    match kind % 3 {
        0 => check::<OfferPayload>(&value),
        1 => check::<AnswerPayload>(&value),
        _ => check::<CandidatePayload>(&value),
    }
});

fn check<T>(value: &Value)
where
    T: DeserializeOwned + Serialize + Checked + PartialEq + std::fmt::Debug,
{
    if let Ok(p) = parse::<T>(Some(value)) {
        let again = serde_json::to_value(&p).expect("serializes");
        assert_eq!(parse::<T>(Some(&again)).as_ref(), Ok(&p));
    }
}
