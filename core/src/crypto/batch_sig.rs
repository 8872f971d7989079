//! Ed25519 checks that give the same answer one at a time and in batches (decision 0017).
//!
//! The rule: `s` canonical (< ℓ); `R` a canonical encoding of a point that is not of small
//! order; the key `A` decodes and is not of small order; and the **cofactored** equation
//! `[8]([s]B − R − [k]A) = 0` with `k = SHA-512(R ‖ A ‖ M)`. It accepts every signature
//! ed25519-dalek's `verify_strict` accepts; it also accepts one whose `R` carries a
//! small-order component, which only the key's holder can make (`R` is hashed into `k`).
//!
//! A batch checks `[8](−(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ) = 0` with 128-bit `zᵢ` derived from a
//! hash of every input (so nothing is random and the caller stays deterministic). The
//! cofactor kills small-order components in the sum, so a batch passes if and only if every
//! signature in it passes alone (up to a 2⁻¹²⁸ chance an invalid one slips in). Terms of the
//! same key are merged into one, so a batch from a few authors costs little more than its
//! `R` decompressions.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

/// A decoded public key that may sign (not of small order).
#[derive(Clone, Copy, Debug)]
pub struct SigKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
}

impl SigKey {
    /// Decodes `bytes`; `None` if they are not a point or the point has small order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        let point = CompressedEdwardsY(*bytes).decompress()?;
        (!point.is_small_order()).then_some(Self {
            bytes: *bytes,
            point,
        })
    }

    /// The encoding it was decoded from.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

/// One signature to check: by `key`, over `msg`.
pub struct SigItem<'a> {
    /// The signer.
    pub key: &'a SigKey,
    /// The signed bytes.
    pub msg: &'a [u8],
    /// `R ‖ s`.
    pub sig: &'a [u8; 64],
}

/// A signature's parts once decoded: `R`, `s` and `k`.
struct Parsed {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Whether a field element's encoding (sign bit cleared) is below p = 2²⁵⁵ − 19.
fn canonical_y(b: &[u8; 32]) -> bool {
    let top = b[31] & 0x7f;
    !(top == 0x7f && b[1..31].iter().all(|&x| x == 0xff) && b[0] >= 0xed)
}

fn parse(item: &SigItem<'_>) -> Option<Parsed> {
    let r_bytes: [u8; 32] = item.sig[..32].try_into().ok()?;
    let s_bytes: [u8; 32] = item.sig[32..].try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    if !canonical_y(&r_bytes) {
        return None;
    }
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    if r.is_small_order() {
        return None;
    }
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(item.key.bytes);
    h.update(item.msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Some(Parsed { r, s, k })
}

/// Checks one signature.
pub fn verify(key: &SigKey, msg: &[u8], sig: &[u8; 64]) -> bool {
    let Some(p) = parse(&SigItem { key, msg, sig }) else {
        return false;
    };
    let expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &-key.point, &p.s);
    (expected - p.r).mul_by_cofactor().is_identity()
}

/// Checks every signature of `items` at once: `true` only if each would pass [`verify`]
/// (up to 2⁻¹²⁸). A `false` says nothing about which one failed; check them one by one.
pub fn verify_batch(items: &[SigItem<'_>]) -> bool {
    match items {
        [] => return true,
        [one] => return verify(one.key, one.msg, one.sig),
        _ => {}
    }
    let mut parsed = Vec::with_capacity(items.len());
    let mut seed = blake3::Hasher::new_derive_key("peerns2 batch-sig v1 weights");
    for item in items {
        let Some(p) = parse(item) else {
            return false;
        };
        seed.update(item.sig).update(p.k.as_bytes());
        parsed.push(p);
    }
    let mut weights = seed.finalize_xof();
    let mut b_coeff = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(items.len() + 8);
    let mut points = Vec::with_capacity(items.len() + 8);
    // Merged key terms: (key bytes, point, Σ zᵢkᵢ).
    let mut keys: Vec<([u8; 32], EdwardsPoint, Scalar)> = vec![];
    for (item, p) in items.iter().zip(&parsed) {
        let mut z = [0u8; 16];
        weights.fill(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        b_coeff += z * p.s;
        scalars.push(z);
        points.push(p.r);
        let zk = z * p.k;
        match keys.iter_mut().find(|(b, _, _)| *b == item.key.bytes) {
            Some((_, _, c)) => *c += zk,
            None => keys.push((item.key.bytes, item.key.point, zk)),
        }
    }
    for (_, point, c) in keys {
        scalars.push(c);
        points.push(point);
    }
    scalars.push(-b_coeff);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signer, SigningKey};

    /// Items of `key` over `msgs` with `sigs`, pairwise.
    fn one_key<'a>(key: &'a SigKey, msgs: &'a [Vec<u8>], sigs: &'a [[u8; 64]]) -> Vec<SigItem<'a>> {
        msgs.iter()
            .zip(sigs)
            .map(|(m, s)| SigItem {
                key,
                msg: m,
                sig: s,
            })
            .collect()
    }

    fn signer(n: u8) -> (SigningKey, SigKey) {
        let sk = SigningKey::from_bytes(&[n; 32]);
        let key = SigKey::from_bytes(sk.verifying_key().as_bytes()).unwrap();
        (sk, key)
    }

    /// A signature whose R carries a small-order component (what only the key's holder can
    /// make): `verify_strict` refuses it, the cofactored rule accepts it.
    fn torsion_signature(n: u8, msg: &[u8], t: usize) -> ([u8; 32], [u8; 64]) {
        let sk = SigningKey::from_bytes(&[n; 32]);
        let a = sk.to_scalar();
        let a_bytes = sk.verifying_key().to_bytes();
        let r = Scalar::from(1234567u64 + n as u64);
        let big_r = (EdwardsPoint::mul_base(&r) + EIGHT_TORSION[t]).compress();
        let mut h = Sha512::new();
        h.update(big_r.as_bytes());
        h.update(a_bytes);
        h.update(msg);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        (a_bytes, sig)
    }

    #[test]
    fn honest_signatures_pass_alone_and_in_batches() {
        let signers: Vec<_> = (1..=4).map(signer).collect();
        let msgs: Vec<Vec<u8>> = (0..40u32)
            .map(|i| i.to_le_bytes().repeat(i as usize % 7))
            .collect();
        let sigs: Vec<[u8; 64]> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| signers[i % 4].0.sign(m).to_bytes())
            .collect();
        let items: Vec<SigItem> = msgs
            .iter()
            .zip(&sigs)
            .enumerate()
            .map(|(i, (m, s))| SigItem {
                key: &signers[i % 4].1,
                msg: m,
                sig: s,
            })
            .collect();
        for it in &items {
            assert!(verify(it.key, it.msg, it.sig));
        }
        assert!(verify_batch(&items));
        assert!(verify_batch(&items[..1]));
        assert!(verify_batch(&[]));
    }

    #[test]
    fn one_bad_signature_fails_the_batch() {
        let (sk, key) = signer(7);
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 20]).collect();
        let mut sigs: Vec<[u8; 64]> = msgs.iter().map(|m| sk.sign(m).to_bytes()).collect();
        for flip in [0usize, 31, 33, 63] {
            let mut bad = sigs.clone();
            bad[4][flip] ^= 1;
            let items = one_key(&key, &msgs, &bad);
            assert!(!verify_batch(&items), "byte {flip} flipped");
            assert!(!verify(&key, &msgs[4], &bad[4]));
        }
        // Another message under a good signature.
        sigs.swap(2, 3);
        let items = one_key(&key, &msgs, &sigs);
        assert!(!verify_batch(&items));
    }

    #[test]
    fn non_canonical_s_and_r_and_small_order_r_or_key_are_refused() {
        let (sk, key) = signer(9);
        let msg = b"hello";
        let sig = sk.sign(msg).to_bytes();
        // s + ℓ: the same scalar, not canonical.
        let mut s = Scalar::from_bytes_mod_order(sig[32..].try_into().unwrap()).to_bytes();
        // ℓ = 2²⁵² + 27742317777372353535851937790883648493, little-endian.
        let mut l = [0u8; 32];
        l[..16].copy_from_slice(&0x14def9dea2f79cd65812631a5cf5d3ed_u128.to_le_bytes());
        l[31] = 0x10;
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s[i]) + u16::from(l[i]) + carry;
            s[i] = v as u8;
            carry = v >> 8;
        }
        let mut big_s = sig;
        big_s[32..].copy_from_slice(&s);
        assert!(!verify(&key, msg, &big_s));
        // R = identity (small order), and a non-canonical encoding of y = 1 (p + 1).
        let mut small = sig;
        small[..32].copy_from_slice(&EIGHT_TORSION[0].compress().to_bytes());
        assert!(!verify(&key, msg, &small));
        let mut p_plus_1 = [0xffu8; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        assert!(!canonical_y(&p_plus_1));
        small[..32].copy_from_slice(&p_plus_1);
        assert!(!verify(&key, msg, &small));
        assert!(canonical_y(&sig[..32].try_into().unwrap()));
        for t in EIGHT_TORSION {
            assert!(SigKey::from_bytes(&t.compress().to_bytes()).is_none());
        }
    }

    #[test]
    fn a_torsion_component_in_r_gives_the_same_answer_alone_and_in_batches() {
        let (sk, key) = signer(3);
        let msgs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 9]).collect();
        let mut sigs: Vec<[u8; 64]> = msgs.iter().map(|m| sk.sign(m).to_bytes()).collect();
        for (i, t) in [(1usize, 1usize), (3, 4), (5, 6)] {
            let (a, sig) = torsion_signature(3, &msgs[i], t);
            assert_eq!(&a, key.as_bytes());
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&a).unwrap();
            let strict = dalek.verify_strict(&msgs[i], &ed25519_dalek::Signature::from_bytes(&sig));
            assert!(strict.is_err(), "strict refuses a torsion component");
            assert!(verify(&key, &msgs[i], &sig));
            sigs[i] = sig;
        }
        let items = one_key(&key, &msgs, &sigs);
        assert!(verify_batch(&items));
    }

    #[test]
    fn agrees_with_strict_on_honest_signatures_of_many_keys() {
        for n in 0..64u8 {
            let (sk, key) = signer(n);
            let msg = vec![n; n as usize];
            let sig = sk.sign(&msg);
            assert!(sk.verifying_key().verify_strict(&msg, &sig).is_ok());
            assert!(verify(&key, &msg, &sig.to_bytes()));
            assert!(!verify(&key, b"other", &sig.to_bytes()));
        }
    }
}
