//! `/cyclon/2.0.0`'s framing: each message is an unsigned-varint length, then that many bytes
//! (the protobuf of one [`Frame`](crate::secure::wire::Frame)). The length is checked against
//! the maximum message size before anything is buffered.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most bytes of an unsigned varint of a `u64`.
const MAX_VARINT_LEN: usize = 10;

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The length prefix announces more than the maximum message size.
    TooLarge(usize),
    /// The length prefix is not a minimal varint of at most 10 bytes.
    BadPrefix,
    /// The stream failed or ended inside a frame.
    Io(io::Error),
}

impl From<io::Error> for FrameError {
    fn from(error: io::Error) -> Self {
        FrameError::Io(error)
    }
}

/// Reads one frame of at most `max_size` bytes. `Ok(None)` if the stream ends cleanly before
/// a frame starts; the end of the stream inside a frame is an error.
pub(crate) async fn read_frame<S>(
    stream: &mut S,
    max_size: usize,
) -> Result<Option<Vec<u8>>, FrameError>
where
    S: AsyncRead + Unpin,
{
    let mut len: u64 = 0;
    let mut byte = [0u8; 1];
    for k in 0..MAX_VARINT_LEN {
        if stream.read(&mut byte).await? == 0 {
            if k == 0 {
                return Ok(None);
            }
            return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let b = byte[0];
        if k > 0 && b == 0 {
            return Err(FrameError::BadPrefix);
        }
        len |= u64::from(b & 0x7f) << (7 * k);
        if b & 0x80 == 0 {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > max_size {
                return Err(FrameError::TooLarge(len));
            }
            let mut buf = vec![0u8; len];
            stream.read_exact(&mut buf).await?;
            return Ok(Some(buf));
        }
    }
    Err(FrameError::BadPrefix)
}

/// Writes one frame (length prefix and bytes) and flushes.
pub(crate) async fn write_frame<S>(stream: &mut S, bytes: &[u8]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let mut out = Vec::with_capacity(bytes.len() + MAX_VARINT_LEN);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};

    use super::*;

    #[test]
    fn frames_round_trip_and_limits_hold() {
        block_on(async {
            let mut buf = Cursor::new(Vec::new());
            write_frame(&mut buf, &[7u8; 300]).await.unwrap();
            write_frame(&mut buf, &[]).await.unwrap();
            let bytes = buf.into_inner();
            assert_eq!(&bytes[..2], &[0xac, 0x02], "300 as a varint");
            let mut r = Cursor::new(bytes.clone());
            assert_eq!(read_frame(&mut r, 300).await.unwrap(), Some(vec![7u8; 300]));
            assert_eq!(read_frame(&mut r, 300).await.unwrap(), Some(Vec::new()));
            assert_eq!(read_frame(&mut r, 300).await.unwrap(), None);
            // Over the limit: refused from the prefix alone.
            let mut r = Cursor::new(bytes.clone());
            assert!(matches!(
                read_frame(&mut r, 299).await,
                Err(FrameError::TooLarge(300))
            ));
            // Cut inside a frame.
            let mut r = Cursor::new(bytes[..100].to_vec());
            assert!(read_frame(&mut r, 300).await.is_err());
            // A non-minimal prefix.
            let mut r = Cursor::new(vec![0x81, 0x00, 0x01]);
            assert!(matches!(
                read_frame(&mut r, 300).await,
                Err(FrameError::BadPrefix)
            ));
        });
    }
}
