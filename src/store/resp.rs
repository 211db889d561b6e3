//! RESP, the Redis wire protocol: encoding a command, reading an MGET reply or a script's array
//! of rows (RESP2 and RESP3).

use super::StoreError;

pub fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The values of an MGET reply: an array of bulk strings (or nulls, or integers).
pub fn parse_mget_reply(reply: &[u8]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    let mut reader = Reader { reply, at: 0 };
    let count = reader.array_header()?;
    let values = (0..count)
        .map(|_| reader.value())
        .collect::<Result<Vec<_>, _>>()?;
    reader.finish()?;
    Ok(values)
}

struct Reader<'a> {
    reply: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// One `<type><text>\r\n` line.
    fn line(&mut self) -> Result<(u8, &'a [u8]), StoreError> {
        let rest = self.reply.get(self.at..).unwrap_or_default();
        let end = rest
            .windows(2)
            .position(|pair| pair == b"\r\n")
            .ok_or_else(|| StoreError::BadReply("truncated reply".into()))?;
        let (&kind, text) = rest[..end]
            .split_first()
            .ok_or_else(|| StoreError::BadReply("empty line".into()))?;
        self.at += end + 2;
        Ok((kind, text))
    }

    /// The length of the array the reply must be; an error reply is refused with its text.
    fn array_header(&mut self) -> Result<usize, StoreError> {
        let (kind, header) = self.line()?;
        let count = match kind {
            b'*' => header_number(header, "array length")?,
            b'-' => {
                return Err(StoreError::BadReply(format!(
                    "error reply: {}",
                    String::from_utf8_lossy(header)
                )))
            }
            other => {
                return Err(StoreError::BadReply(format!(
                    "expected an array, got type {:?}",
                    other as char
                )))
            }
        };
        usize::try_from(count).map_err(|_| StoreError::BadReply("null array".into()))
    }

    fn finish(&self) -> Result<(), StoreError> {
        if self.at != self.reply.len() {
            return Err(StoreError::BadReply(format!(
                "{} trailing bytes",
                self.reply.len() - self.at
            )));
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let (kind, text) = self.line()?;
        match kind {
            b'$' => {
                let len = header_number(text, "bulk length")?;
                if len < 0 {
                    return Ok(None);
                }
                // On wasm32 a length past 4 GiB is no `usize` (it was read as a null) and
                // `at + len` can overflow: both mean more bytes than the reply holds.
                let start = self.at;
                let bytes = usize::try_from(len)
                    .ok()
                    .and_then(|len| start.checked_add(len))
                    .and_then(|end| self.reply.get(start..end))
                    .ok_or_else(|| StoreError::BadReply("truncated bulk string".into()))?;
                let end = start + bytes.len();
                if self.reply.get(end..end + 2) != Some(b"\r\n") {
                    return Err(StoreError::BadReply("bulk string not terminated".into()));
                }
                self.at = end + 2;
                Ok(Some(bytes.to_vec()))
            }
            b':' | b'+' | b',' => Ok(Some(text.to_vec())),
            b'_' => Ok(None),
            other => Err(StoreError::BadReply(format!(
                "unexpected value type {:?}",
                other as char
            ))),
        }
    }
}

fn header_number(text: &[u8], what: &str) -> Result<i64, StoreError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::BadReply(format!("bad {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_arrays_of_bulk_strings() {
        assert_eq!(
            encode_command(&["MGET", "a", "é"]),
            b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$2\r\n\xc3\xa9\r\n".to_vec()
        );
    }

    #[test]
    fn reads_bulk_strings_nulls_integers_and_resp3_nulls() {
        let reply = b"*5\r\n$2\r\n90\r\n$-1\r\n:7\r\n_\r\n$0\r\n\r\n";
        assert_eq!(
            parse_mget_reply(reply).unwrap(),
            vec![
                Some(b"90".to_vec()),
                None,
                Some(b"7".to_vec()),
                None,
                Some(Vec::new())
            ]
        );
    }

    #[test]
    fn bulk_strings_may_hold_crlf() {
        let reply = b"*1\r\n$4\r\na\r\nb\r\n";
        assert_eq!(
            parse_mget_reply(reply).unwrap(),
            vec![Some(b"a\r\nb".to_vec())]
        );
    }

    #[test]
    fn refuses_errors_and_malformed_replies() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"-ERR wrong number of arguments\r\n",
                "error reply: ERR wrong number of arguments",
            ),
            (b"+OK\r\n", "expected an array, got type '+'"),
            (b"*2\r\n$2\r\n90\r\n", "truncated reply"),
            (b"*1\r\n$5\r\n90\r\n", "truncated bulk string"),
            // Past 4 GiB: no null on wasm32, where it is no `usize`.
            (b"*2\r\n$4294967296\r\n:5\r\n", "truncated bulk string"),
            (
                b"*1\r\n$9223372036854775807\r\n90\r\n",
                "truncated bulk string",
            ),
            (b"*1\r\n$2\r\n90xx", "bulk string not terminated"),
            (b"*x\r\n", "bad array length"),
            (b"*-1\r\n", "null array"),
            (b"*1\r\n$1\r\n9\r\nextra", "5 trailing bytes"),
            (b"", "truncated reply"),
            (b"*1\r\n*1\r\n", "unexpected value type '*'"),
        ];
        for (reply, message) in cases {
            assert_eq!(
                parse_mget_reply(reply).unwrap_err(),
                StoreError::BadReply((*message).into()),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }
}
