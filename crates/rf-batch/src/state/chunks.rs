//! The journal of reference chunks the service accepted: one JSON line per
//! chunk, appended and synced as each is accepted, so a re-run of a bucket
//! ingest knows which chunks not to send again (after checking them with
//! the service). A line torn by a crash is skipped (that chunk is checked
//! and sent again; the service answers a repeat as `duplicated`). A line
//! about another batch or source is ignored.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StateError;

/// One accepted chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// The batch it went to.
    pub batch: String,
    /// Where its references came from (the bucket URL).
    pub source: String,
    /// Its ingest ID.
    pub ingest_id: String,
    /// References in it.
    pub references: u64,
    /// Shards the service announced for it (images only).
    pub shard_ids: Vec<String>,
}

/// The journal of accepted chunks of one source into one batch.
#[derive(Debug)]
pub struct ChunkJournal {
    path: PathBuf,
    batch: String,
    source: String,
    chunks: HashMap<String, ChunkRecord>,
    out: fs::File,
}

impl ChunkJournal {
    /// Opens (creating if needed) the journal at `path` of `source` into
    /// `batch`, reading the chunks recorded so far.
    pub fn open(path: &Path, batch: &str, source: &str) -> Result<ChunkJournal, StateError> {
        let io_err = |action: &'static str| {
            move |source| StateError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err("create the directory of"))?;
        }
        let out = fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_err("open"))?;
        let (chunks, torn) = read_records(&out, batch, source).map_err(io_err("read"))?;
        if torn {
            // Whatever is appended next starts on a line of its own.
            (&out).write_all(b"\n").map_err(io_err("write"))?;
        }
        Ok(ChunkJournal {
            path: path.to_path_buf(),
            batch: batch.to_owned(),
            source: source.to_owned(),
            chunks,
            out,
        })
    }

    /// The record of chunk `ingest_id`, if it was accepted before.
    pub fn get(&self, ingest_id: &str) -> Option<&ChunkRecord> {
        self.chunks.get(ingest_id)
    }

    /// How many chunks are recorded.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether no chunk is recorded.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Records an accepted chunk, synced to disk before it returns.
    pub fn append(
        &mut self,
        ingest_id: &str,
        references: u64,
        shard_ids: Vec<String>,
    ) -> Result<(), StateError> {
        let record = ChunkRecord {
            batch: self.batch.clone(),
            source: self.source.clone(),
            ingest_id: ingest_id.to_owned(),
            references,
            shard_ids,
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| StateError::Io {
            action: "encode",
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|()| self.out.sync_data())
            .map_err(|source| StateError::Io {
                action: "write",
                path: self.path.clone(),
                source,
            })?;
        self.chunks.insert(record.ingest_id.clone(), record);
        Ok(())
    }
}

/// The records of `batch` and `source` in the file, and whether its last
/// line is torn (no newline at its end).
fn read_records(
    file: &fs::File,
    batch: &str,
    source: &str,
) -> io::Result<(HashMap<String, ChunkRecord>, bool)> {
    let mut reader = io::BufReader::new(file);
    let mut chunks = HashMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok((chunks, false));
        }
        if line.last() != Some(&b'\n') {
            return Ok((chunks, true));
        }
        if let Ok(record) = serde_json::from_slice::<ChunkRecord>(&line)
            && record.batch == batch
            && record.source == source
        {
            chunks.insert(record.ingest_id.clone(), record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/chunks.jsonl");
        let mut j = ChunkJournal::open(&path, "b", "s3://x/").unwrap();
        assert!(j.is_empty());
        j.append("id-0", 3, vec!["s1".into()]).unwrap();
        drop(j);
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"batch\":\"b\",\"sou")
            .unwrap();
        let mut j = ChunkJournal::open(&path, "b", "s3://x/").unwrap();
        assert_eq!(j.len(), 1);
        j.append("id-1", 2, vec![]).unwrap();
        drop(j);
        let j = ChunkJournal::open(&path, "b", "s3://x/").unwrap();
        assert_eq!(j.len(), 2, "the line after a torn one is read");
        assert_eq!(j.get("id-0").unwrap().shard_ids, ["s1"]);
        assert!(
            ChunkJournal::open(&path, "other", "s3://x/")
                .unwrap()
                .is_empty()
        );
    }
}
