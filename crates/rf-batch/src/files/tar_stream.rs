//! Tar shards built as a stream while they upload.
//!
//! A shard is never written to a temporary file and no image is ever held
//! whole in memory: [`tar_stream`] packs the ustar header of each member, the
//! member's bytes read from disk, its padding, and finally the two zero
//! blocks that end an archive into chunks of at most [`CHUNK_SIZE`] bytes.
//!
//! The packing runs on one blocking thread per shard (plain `std::fs` reads:
//! a shard of 500 small images costs 500 opens and about 500 reads, with no
//! hand-off to a thread pool per file), and hands chunks to the upload
//! through a channel of [`CHANNEL_DEPTH`] chunks. The channel is bounded, so
//! the packer never runs more than a few chunks ahead of what the HTTP body
//! has sent; it stops when the upload is dropped. The stream can be
//! re-created any number of times for a retry.
//!
//! Because every name fits a plain ustar header (see [`super::names`]), the
//! exact length is known in advance ([`tar_len`]), so the upload can send
//! `Content-Length`. If a file changed size after planning, the stream fails
//! with an error naming the file instead of sending a corrupt archive.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::mpsc;

/// Size of a tar block.
pub const BLOCK: u64 = 512;
/// Bytes that end an archive (two zero blocks).
pub const TAR_END_LEN: u64 = 2 * BLOCK;
/// Largest chunk handed to the upload (many small members share one chunk).
///
/// A shard in flight holds at most [`CHANNEL_DEPTH`] + 2 chunks (one being
/// packed, those queued, one being sent): 192 KiB, within the 256 KiB per
/// transfer that [`crate::limit::MEMORY_CAP`] allows. With 256 KiB chunks
/// and two queued (1 MiB a shard), a 100,000-file ingest whose adaptive
/// limit reached 128 shards peaked at 63-69 MiB; now 35-53 MiB
/// (docs/benchmarks.md, "Ingest memory").
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Chunks packed ahead of the upload, per shard.
pub const CHANNEL_DEPTH: usize = 1;

/// Where a member's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberSource {
    /// A file on disk, read in chunks when the stream is polled.
    File(PathBuf),
    /// A small in-memory member (e.g. `notification_config.json`).
    Bytes(Bytes),
}

/// One member of a tar shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Flat member name (at most 100 bytes).
    pub name: String,
    /// Where the bytes come from.
    pub source: MemberSource,
    /// Exact size in bytes.
    pub size: u64,
    /// Modification time written into the header (seconds since the epoch).
    pub mtime: u64,
}

/// Bytes one member takes in the archive: header plus contents padded to a block.
pub fn member_len(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

/// Exact length of the tar archive holding `members`.
pub fn tar_len(members: &[TarMember]) -> u64 {
    members.iter().map(|m| member_len(m.size)).sum::<u64>() + TAR_END_LEN
}

/// Builds the 512-byte ustar header of `member`.
pub fn header(member: &TarMember) -> io::Result<[u8; 512]> {
    if member.name.len() > 100 || member.name.is_empty() || member.name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "tar member name {:?} must be flat and 1-100 bytes long",
                member.name
            ),
        ));
    }
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut()
        .ok_or_else(|| io::Error::other("ustar header expected"))?
        .name[..member.name.len()]
        .copy_from_slice(member.name.as_bytes());
    h.set_size(member.size);
    h.set_mode(0o644);
    h.set_mtime(member.mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(*h.as_bytes())
}

/// A stream of the tar archive holding `members`; see the module docs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use futures::StreamExt;
/// use rf_batch::ingest::tar_stream::{tar_stream, tar_len, TarMember, MemberSource};
/// let members: std::sync::Arc<[TarMember]> = vec![TarMember {
///     name: "a.jpg".into(), source: MemberSource::Bytes("hello".into()), size: 5, mtime: 0,
/// }].into();
/// let mut total = 0u64;
/// let mut s = tar_stream(members.clone());
/// while let Some(chunk) = s.next().await { total += chunk.unwrap().len() as u64; }
/// assert_eq!(total, tar_len(&members));
/// # }
/// ```
pub fn tar_stream(members: Arc<[TarMember]>) -> BoxStream<'static, io::Result<Bytes>> {
    // The packer starts on the first poll, inside the runtime that polls.
    stream::once(async move {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        tokio::task::spawn_blocking(move || {
            let mut packer = Packer {
                tx,
                buf: BytesMut::with_capacity(CHUNK_SIZE),
            };
            if let Err(Stop::Failed(e)) = packer.pack(&members) {
                let _ = packer.tx.blocking_send(Err(e));
            }
        });
        stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await?;
            Some((item, rx))
        })
    })
    .flatten()
    .boxed()
}

/// Why packing stopped early.
enum Stop {
    /// A member could not be read as planned.
    Failed(io::Error),
    /// The upload dropped the stream.
    Dropped,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Failed(e)
    }
}

struct Packer {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl Packer {
    fn pack(&mut self, members: &[TarMember]) -> Result<(), Stop> {
        for member in members {
            self.member(member)?;
        }
        self.put(&[0u8; TAR_END_LEN as usize])?;
        self.flush()
    }

    /// Sends the current chunk.
    fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(CHUNK_SIZE);
        self.tx.blocking_send(Ok(chunk)).map_err(|_| Stop::Dropped)
    }

    /// Appends bytes, sending full chunks on the way.
    fn put(&mut self, mut bytes: &[u8]) -> Result<(), Stop> {
        while !bytes.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let n = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() == CHUNK_SIZE {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn member(&mut self, member: &TarMember) -> Result<(), Stop> {
        let head = header(member)?;
        match &member.source {
            MemberSource::Bytes(b) => {
                if b.len() as u64 != member.size {
                    return Err(Stop::Failed(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "member {} has {} bytes, not {}",
                            member.name,
                            b.len(),
                            member.size
                        ),
                    )));
                }
                self.put(&head)?;
                self.put(b)?;
            }
            MemberSource::File(path) => {
                let mut file = std::fs::File::open(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                })?;
                self.put(&head)?;
                self.file_body(member, &mut file)?;
            }
        }
        let pad = (member_len(member.size) - BLOCK - member.size) as usize;
        self.put(&[0u8; BLOCK as usize][..pad])
    }

    /// Reads exactly `member.size` bytes of `file` into the chunks; the file
    /// must end there.
    fn file_body(&mut self, member: &TarMember, file: &mut std::fs::File) -> Result<(), Stop> {
        let mut remaining = member.size;
        loop {
            if self.buf.len() == CHUNK_SIZE {
                self.flush()?;
            }
            let room = CHUNK_SIZE - self.buf.len();
            // One byte more than what is left: a regular file answers a
            // short read only at its end, so getting `remaining` bytes back
            // proves the size without a second read, and getting more
            // proves it grew.
            let want = usize::try_from(remaining.saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(room);
            let start = self.buf.len();
            self.buf.resize(start + want, 0);
            let n = read_retrying(file, &mut self.buf[start..]).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot read {}: {e}", member_path(member)),
                )
            });
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e.into());
                }
            };
            self.buf.truncate(start + n);
            if n as u64 > remaining {
                return Err(changed(member).into());
            }
            remaining -= n as u64;
            if n < want {
                // A short read: the end of the file.
                return if remaining == 0 {
                    Ok(())
                } else {
                    Err(changed(member).into())
                };
            }
        }
    }
}

/// `read`, retried when interrupted.
fn read_retrying(file: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn member_path(member: &TarMember) -> String {
    match &member.source {
        MemberSource::File(p) => p.display().to_string(),
        MemberSource::Bytes(_) => member.name.clone(),
    }
}

fn changed(member: &TarMember) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} changed size while the run was going (expected {} bytes); re-run to re-plan it",
            member_path(member),
            member.size
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(members: Arc<[TarMember]>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = tar_stream(members);
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    fn file_member(dir: &std::path::Path, name: &str, len: usize) -> TarMember {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let path = dir.join(name);
        std::fs::write(&path, &data).unwrap();
        TarMember {
            name: name.into(),
            source: MemberSource::File(path),
            size: len as u64,
            mtime: 1_700_000_000,
        }
    }

    #[tokio::test]
    async fn stream_is_a_valid_tar_of_exact_length() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [0usize, 1, 511, 512, 513, CHUNK_SIZE + 7, 3 * CHUNK_SIZE];
        let mut members: Vec<TarMember> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| file_member(dir.path(), &format!("f{i}.jpg"), n))
            .collect();
        members.push(TarMember {
            name: "notification_config.json".into(),
            source: MemberSource::Bytes(Bytes::from_static(b"{}")),
            size: 2,
            mtime: 0,
        });
        let members: Arc<[TarMember]> = members.into();
        let bytes = collect(members.clone()).await.unwrap();
        assert_eq!(bytes.len() as u64, tar_len(&members));
        // twice: the stream can be re-created for a retry
        assert_eq!(collect(members.clone()).await.unwrap(), bytes);

        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            seen.push((name, data));
        }
        assert_eq!(seen.len(), members.len());
        for (i, &n) in sizes.iter().enumerate() {
            assert_eq!(seen[i].0, format!("f{i}.jpg"));
            let expected: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            assert_eq!(seen[i].1, expected);
        }
        assert_eq!(seen[7].1, b"{}");
    }

    #[tokio::test]
    async fn small_members_share_full_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut members: Vec<TarMember> = (0..300)
            .map(|i| file_member(dir.path(), &format!("s{i}.jpg"), 4000 + i))
            .collect();
        members.push(file_member(dir.path(), "big.jpg", 3 * CHUNK_SIZE + 5));
        let members: Arc<[TarMember]> = members.into();
        let mut chunks = Vec::new();
        let mut s = tar_stream(members.clone());
        while let Some(c) = s.next().await {
            chunks.push(c.unwrap().len());
        }
        let total: usize = chunks.iter().sum();
        assert_eq!(total as u64, tar_len(&members));
        // Every chunk but the last is full: no chunk per file or per header.
        assert_eq!(chunks.len(), total.div_ceil(CHUNK_SIZE));
        assert!(chunks[..chunks.len() - 1].iter().all(|&n| n == CHUNK_SIZE));
    }

    #[tokio::test]
    async fn changed_file_fails_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = file_member(dir.path(), "grew.jpg", 10);
        m.size = 5;
        let err = collect(vec![m.clone()].into()).await.unwrap_err();
        assert!(err.to_string().contains("grew.jpg"), "{err}");
        m.size = 20;
        let err = collect(vec![m].into()).await.unwrap_err();
        assert!(err.to_string().contains("changed size"), "{err}");
    }

    #[tokio::test]
    async fn missing_file_and_bad_name_fail() {
        let m = TarMember {
            name: "x.jpg".into(),
            source: MemberSource::File("/nope/x.jpg".into()),
            size: 1,
            mtime: 0,
        };
        let err = collect(vec![m.clone()].into()).await.unwrap_err();
        assert!(err.to_string().contains("/nope/x.jpg"));
        let bad = TarMember {
            name: "a/b.jpg".into(),
            ..m
        };
        assert!(collect(vec![bad].into()).await.is_err());
    }
}
