//! The few Kafka protocol primitives the Connect group protocol is made of (`Type.java`): big-endian
//! integers, int16-length strings, int32-length nullable bytes and int32-count arrays, in a
//! Struct's field order with no framing.

use crate::{Error, Result};

/// Reads primitives from a byte slice, front to back.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// What is being decoded, for error messages.
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Truncated {
                what: self.what,
                field,
                needed: n,
                left: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub fn i16(&mut self, field: &'static str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    pub fn i32(&mut self, field: &'static str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    pub fn i64(&mut self, field: &'static str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    /// `STRING`: int16 length, UTF-8 bytes; a negative length (null) is refused, as Java does.
    pub fn string(&mut self, field: &'static str) -> Result<String> {
        let len = self.i16(field)?;
        let len = usize::try_from(len).map_err(|_| Error::Invalid {
            what: self.what,
            field,
            reason: format!("string length {len} is negative (null is not allowed)"),
        })?;
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Invalid {
            what: self.what,
            field,
            reason: "not valid UTF-8".into(),
        })
    }

    /// `NULLABLE_BYTES`: int32 length (-1 for null), bytes.
    pub fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<&'a [u8]>> {
        let len = self.i32(field)?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len, field).map(Some)
    }

    /// The element count of an `ARRAY` (-1 for null when `nullable`), checked against the bytes
    /// left so that a hostile count cannot make the caller allocate gigabytes: every element takes
    /// at least `min_element` bytes.
    pub fn array_len(
        &mut self,
        field: &'static str,
        nullable: bool,
        min_element: usize,
    ) -> Result<Option<usize>> {
        let n = self.i32(field)?;
        if n < 0 {
            if nullable {
                return Ok(None);
            }
            return Err(Error::Invalid {
                what: self.what,
                field,
                reason: format!("array count {n} is negative (null is not allowed)"),
            });
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n.saturating_mul(min_element) > self.buf.len() {
            return Err(Error::Truncated {
                what: self.what,
                field,
                needed: n.saturating_mul(min_element),
                left: self.buf.len(),
            });
        }
        Ok(Some(n))
    }
}

/// Appends primitives to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Strings longer than 32767 bytes cannot be written (Java throws too).
    pub fn string(&mut self, field: &'static str, s: &str) -> Result<()> {
        let len = i16::try_from(s.len()).map_err(|_| Error::TooLong {
            field,
            len: s.len(),
        })?;
        self.i16(len);
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }

    pub fn nullable_bytes(&mut self, field: &'static str, b: Option<&[u8]>) -> Result<()> {
        match b {
            None => self.i32(-1),
            Some(b) => {
                let len = i32::try_from(b.len()).map_err(|_| Error::TooLong {
                    field,
                    len: b.len(),
                })?;
                self.i32(len);
                self.buf.extend_from_slice(b);
            }
        }
        Ok(())
    }

    /// An array count; `None` writes null (-1).
    pub fn array_len(&mut self, field: &'static str, n: Option<usize>) -> Result<()> {
        match n {
            None => self.i32(-1),
            Some(n) => self.i32(i32::try_from(n).map_err(|_| Error::TooLong { field, len: n })?),
        }
        Ok(())
    }
}
