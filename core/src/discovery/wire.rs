//! A tiny length-prefixed binary codec for discovery records and messages: explicit, bounded,
//! and byte-exact (signatures cover encoded bytes, never a re-encoding).

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended early.
    #[error("truncated")]
    Truncated,
    /// A length or count exceeds its bound.
    #[error("{0} too long")]
    TooLong(&'static str),
    /// A tag or flag has no meaning.
    #[error("unknown {0}")]
    Unknown(&'static str),
    /// A string is not UTF-8.
    #[error("invalid UTF-8 in {0}")]
    Utf8(&'static str),
    /// Bytes were left after the value.
    #[error("trailing bytes")]
    Trailing,
}

/// Appends encoded values to a buffer.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }
    pub(crate) fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    /// A byte string of at most `u16::MAX` bytes (callers bound lengths far below that).
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.u16(len).raw(&v[..usize::from(len)])
    }
    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
}

/// Reads encoded values, checking every bound.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self(b)
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, WireError> {
        Ok(f64::from_bits(self.u64()?))
    }
    pub(crate) fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(WireError::TooLong(what));
        }
        self.take(len)
    }
    pub(crate) fn str(&mut self, max: usize, what: &'static str) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(max, what)?).map_err(|_| WireError::Utf8(what))
    }
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Trailing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let mut w = Writer::default();
        w.u8(1).u16(2).u64(4).f64(1.5).str("hé").bytes(&[9; 3]);
        let mut r = Reader::new(&w.0);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u64(), Ok(4));
        assert_eq!(r.f64(), Ok(1.5));
        assert_eq!(r.str(8, "s"), Ok("hé"));
        assert_eq!(r.bytes(2, "b"), Err(WireError::TooLong("b")));
        let mut r = Reader::new(&[0, 5, 1]);
        assert_eq!(r.bytes(10, "b"), Err(WireError::Truncated));
        let mut r = Reader::new(&[0, 2, 0xff, 0xfe]);
        assert_eq!(r.str(10, "s"), Err(WireError::Utf8("s")));
        assert_eq!(Reader::new(&[1]).finish(), Err(WireError::Trailing));
    }
}
