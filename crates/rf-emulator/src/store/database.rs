//! The state database: one redb file (`state.redb`) with a table per kind
//! of record (batches, jobs, reference-ingest entries, webhook
//! notifications waiting for delivery) holding each record
//! as a JSON value, and the creation counter. A commit is one write
//! transaction, durable (fsynced) when it returns; the store groups the
//! changes of many requests into one ([`super::Store::commit`]).
//!
//! A data dir of an older emulator holds a JSON snapshot (`state.json`)
//! instead: it is read once, written into the database in one transaction,
//! then renamed `state.json.migrated`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};

use crate::error::EmulatorError;
use crate::model::{Db, Record};

/// The database file in the data dir.
pub(super) const DATABASE_FILE: &str = "state.redb";
/// The JSON snapshot of older emulators, migrated on first start.
pub(super) const SNAPSHOT_FILE: &str = "state.json";
/// What the snapshot is renamed to once migrated.
const MIGRATED_FILE: &str = "state.json.migrated";

const BATCHES: TableDefinition<&str, &[u8]> = TableDefinition::new("batches");
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const INGESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("ingests");
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SEQ: &str = "seq";

/// The record tables, in the order [`key_of`] numbers them.
const TABLES: [TableDefinition<&str, &[u8]>; 5] = [BATCHES, JOBS, INGESTS, OUTBOX, TASKS];

/// A record's table (index into [`TABLES`]) and key: `<workspace>/<id>`
/// (workspaces never hold a `/`), or the ID of a webhook notification.
fn key_of(record: &Record) -> (usize, String) {
    match record {
        Record::Batch { ws, id } => (0, format!("{ws}/{id}")),
        Record::Job { ws, id } => (1, format!("{ws}/{id}")),
        Record::Ingest { ws, key } => (2, format!("{ws}/{key}")),
        Record::Outbox { id } => (3, id.clone()),
        Record::Task { ws, id } => (4, format!("{ws}/{id}")),
    }
}

/// The record stored under `key` in table `table` (see [`key_of`]).
fn record_of(table: usize, key: &str) -> Record {
    if table == 3 {
        return Record::Outbox { id: key.into() };
    }
    let (ws, id) = key.split_once('/').unwrap_or(("", key));
    let (ws, id) = (ws.to_string(), id.to_string());
    match table {
        0 => Record::Batch { ws, id },
        1 => Record::Job { ws, id },
        2 => Record::Ingest { ws, key: id },
        _ => Record::Task { ws, id },
    }
}

/// A record and its stored form (`None`: the record is gone).
pub(super) type Encoded = (Record, Option<Vec<u8>>);

/// The open database.
pub(super) struct Database {
    db: redb::Database,
    path: PathBuf,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Database {
    fn error(&self) -> impl FnOnce(redb::Error) -> EmulatorError + '_ {
        |source| EmulatorError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens (or creates) the database of `root` and reads the state: the
    /// database's, or a JSON snapshot's, migrated first.
    pub(super) fn open(root: &Path) -> Result<(Self, Db), EmulatorError> {
        let path = root.join(DATABASE_FILE);
        let db = redb::Database::create(&path).map_err(|e| EmulatorError::Database {
            path: path.clone(),
            source: e.into(),
        })?;
        let me = Self { db, path };
        me.create_tables()?;
        let snapshot = root.join(SNAPSHOT_FILE);
        if let Some(mut old) = read_snapshot(&snapshot)? {
            // All or nothing: the snapshot goes only once its records are
            // committed; a crash before that migrates it again.
            old.touch_all();
            let changes = old.take_changes();
            me.write(&old, &changes)?;
            std::fs::rename(&snapshot, root.join(MIGRATED_FILE)).map_err(|source| {
                EmulatorError::Io {
                    path: snapshot.clone(),
                    source,
                }
            })?;
            tracing::info!(from = %snapshot.display(), "state snapshot migrated into the database");
        }
        let state = me.load()?;
        Ok((me, state))
    }

    fn create_tables(&self) -> Result<(), EmulatorError> {
        let run = || -> Result<(), redb::Error> {
            let tx = self.db.begin_write()?;
            for t in TABLES {
                tx.open_table(t)?;
            }
            tx.open_table(META)?;
            tx.commit()?;
            Ok(())
        };
        run().map_err(self.error())
    }

    /// Reads every record.
    fn load(&self) -> Result<Db, EmulatorError> {
        let mut db = Db::default();
        let tx = self.db.begin_read().map_err(|e| self.error()(e.into()))?;
        let corrupt = |source| EmulatorError::State {
            path: self.path.clone(),
            source,
        };
        for (i, table) in TABLES.into_iter().enumerate() {
            let t = tx.open_table(table).map_err(|e| self.error()(e.into()))?;
            for entry in t.iter().map_err(|e| self.error()(e.into()))? {
                let (k, v) = entry.map_err(|e| self.error()(e.into()))?;
                db.load(record_of(i, k.value()), v.value())
                    .map_err(corrupt)?;
            }
        }
        let meta = tx.open_table(META).map_err(|e| self.error()(e.into()))?;
        if let Some(seq) = meta.get(SEQ).map_err(|e| self.error()(e.into()))? {
            db.seq = seq.value();
        }
        Ok(db)
    }

    /// Writes the `changes` records of `state` (and its counter) in one
    /// durable transaction.
    pub(super) fn write(
        &self,
        state: &Db,
        changes: &BTreeSet<Record>,
    ) -> Result<(), EmulatorError> {
        let encoded = encode(state, changes, &self.path)?;
        self.write_encoded(&encoded, state.seq)
    }

    /// Writes records already encoded (`None`: deleted) and the counter in
    /// one durable transaction.
    pub(super) fn write_encoded(&self, encoded: &[Encoded], seq: u64) -> Result<(), EmulatorError> {
        let run = || -> Result<(), redb::Error> {
            let tx = self.db.begin_write()?;
            {
                // Every record table, in `key_of`'s numbering.
                let mut tables = TABLES
                    .into_iter()
                    .map(|t| tx.open_table(t))
                    .collect::<Result<Vec<_>, _>>()?;
                for (record, value) in encoded {
                    let (i, key) = key_of(record);
                    let t = &mut tables[i];
                    match value {
                        Some(v) => t.insert(key.as_str(), v.as_slice()).map(drop)?,
                        None => t.remove(key.as_str()).map(drop)?,
                    }
                }
                tx.open_table(META)?.insert(SEQ, seq)?;
            }
            tx.commit()?;
            Ok(())
        };
        run().map_err(self.error())
    }
}

/// The stored form of each of `changes` (`None`: the record is gone).
pub(super) fn encode(
    state: &Db,
    changes: &BTreeSet<Record>,
    path: &Path,
) -> Result<Vec<Encoded>, EmulatorError> {
    changes
        .iter()
        .map(|r| Ok((r.clone(), state.encode(r)?)))
        .collect::<Result<_, serde_json::Error>>()
        .map_err(|source| EmulatorError::State {
            path: path.to_path_buf(),
            source,
        })
}

/// The JSON snapshot of an older emulator, if the data dir has one.
fn read_snapshot(path: &Path) -> Result<Option<Db>, EmulatorError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| EmulatorError::State {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EmulatorError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}
