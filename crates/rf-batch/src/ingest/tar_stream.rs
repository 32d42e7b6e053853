//! Tar shards built as a stream while they upload.
//!
//! A shard is never written to a temporary file and no image is ever held
//! whole in memory: [`tar_stream`] yields the ustar header of each member, then
//! the member's bytes read from disk in chunks of [`CHUNK_SIZE`], then the
//! padding, and finally the two zero blocks that end an archive. The stream is
//! pull-based (a chunk is read only when the HTTP body asks for the next one),
//! so at most one chunk per upload is buffered here, and it can be re-created
//! any number of times for a retry.
//!
//! Because every name fits a plain ustar header (see [`super::names`]), the
//! exact length is known in advance ([`tar_len`]), so the upload can send
//! `Content-Length`. If a file changed size after planning, the stream fails
//! with an error naming the file instead of sending a corrupt archive.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::io::AsyncReadExt;

/// Size of a tar block.
pub const BLOCK: u64 = 512;
/// Bytes that end an archive (two zero blocks).
pub const TAR_END_LEN: u64 = 2 * BLOCK;
/// Bytes read from disk per chunk.
pub const CHUNK_SIZE: usize = 128 * 1024;

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

enum Phase {
    Header,
    Body {
        file: Option<tokio::fs::File>,
        remaining: u64,
    },
    Padding,
    End,
    Done,
}

struct State {
    members: Arc<[TarMember]>,
    index: usize,
    phase: Phase,
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
    let state = State {
        members,
        index: 0,
        phase: Phase::Header,
    };
    stream::unfold(state, |mut st| async move {
        match next_chunk(&mut st).await {
            Ok(Some(bytes)) => Some((Ok(bytes), st)),
            Ok(None) => None,
            Err(e) => {
                st.phase = Phase::Done;
                Some((Err(e), st))
            }
        }
    })
    .boxed()
}

async fn next_chunk(st: &mut State) -> io::Result<Option<Bytes>> {
    loop {
        match &mut st.phase {
            Phase::Done => return Ok(None),
            Phase::End => {
                st.phase = Phase::Done;
                return Ok(Some(Bytes::from_static(&[0u8; TAR_END_LEN as usize])));
            }
            Phase::Header => {
                let Some(member) = st.members.get(st.index) else {
                    st.phase = Phase::End;
                    continue;
                };
                let head = header(member)?;
                match &member.source {
                    MemberSource::Bytes(b) => {
                        if b.len() as u64 != member.size {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "member {} has {} bytes, not {}",
                                    member.name,
                                    b.len(),
                                    member.size
                                ),
                            ));
                        }
                        let mut out = BytesMut::with_capacity(member_len(member.size) as usize);
                        out.extend_from_slice(&head);
                        out.extend_from_slice(b);
                        out.resize(member_len(member.size) as usize, 0);
                        st.index += 1;
                        return Ok(Some(out.freeze()));
                    }
                    MemberSource::File(path) => {
                        let file = tokio::fs::File::open(path).await.map_err(|e| {
                            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                        })?;
                        st.phase = Phase::Body {
                            file: Some(file),
                            remaining: member.size,
                        };
                        return Ok(Some(Bytes::copy_from_slice(&head)));
                    }
                }
            }
            Phase::Body { file, remaining } => {
                let member = &st.members[st.index];
                let Some(f) = file.as_mut() else {
                    st.phase = Phase::Padding;
                    continue;
                };
                if *remaining == 0 {
                    // The file must end exactly where the plan said.
                    let mut probe = [0u8; 1];
                    if f.read(&mut probe).await? != 0 {
                        return Err(changed(member));
                    }
                    st.phase = Phase::Padding;
                    continue;
                }
                let want = (*remaining).min(CHUNK_SIZE as u64) as usize;
                // Read exactly `want` bytes: never past the planned size.
                let mut buf = vec![0u8; want];
                let mut filled = 0;
                while filled < want {
                    let n = f.read(&mut buf[filled..]).await.map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("cannot read {}: {e}", member_path(member)),
                        )
                    })?;
                    if n == 0 {
                        return Err(changed(member));
                    }
                    filled += n;
                }
                *remaining -= want as u64;
                return Ok(Some(Bytes::from(buf)));
            }
            Phase::Padding => {
                let member = &st.members[st.index];
                let pad = (member_len(member.size) - BLOCK - member.size) as usize;
                st.index += 1;
                st.phase = Phase::Header;
                if pad > 0 {
                    return Ok(Some(Bytes::from(vec![0u8; pad])));
                }
            }
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
    use std::io::Read;

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
