//! [`Manifest::reconcile`]: brings a plan in line with a fresh scan of the
//! input, and the [`Reconciliation`] saying what changed.

use std::collections::HashMap;

use crate::files::plan::{PlanOptions, PlannedItem, UploadMode, cut_shards};
use crate::files::scan::{MediaKind, ScannedFile};

use super::*;

/// What changed in the input since the manifest was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Already uploaded, but the file changed since (not re-uploaded: the
    /// service cannot replace an item of a sharded batch).
    pub changed_after_upload: Vec<String>,
    /// Not yet uploaded and changed: re-planned with the new size.
    pub changed_pending: Vec<String>,
    /// Not yet uploaded and gone: dropped from the plan.
    pub vanished_pending: Vec<String>,
    /// Uploaded and gone locally (harmless: the batch has it).
    pub vanished_after_upload: Vec<String>,
    /// New files, added to the plan.
    pub added: Vec<String>,
    /// Files the service refused that were changed since (fixed): the count
    /// check sends them again.
    pub refused_fixed: Vec<String>,
    /// Files the service refused that are gone: no longer expected.
    pub refused_removed: Vec<String>,
}

impl Reconciliation {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed_after_upload.is_empty()
            && self.changed_pending.is_empty()
            && self.vanished_pending.is_empty()
            && self.vanished_after_upload.is_empty()
            && self.added.is_empty()
            && self.refused_fixed.is_empty()
            && self.refused_removed.is_empty()
    }

    /// Moves the files the service refused (`refused`) out of the uploaded
    /// ones that changed or vanished: a refused file that was fixed or
    /// removed is what the user was asked to do, not a change the batch
    /// ignores. Settled ones (sent again or no longer expected by an earlier
    /// attempt) are not told again.
    pub fn split_refused(&mut self, refused: &[RefusedFile]) {
        if refused.is_empty() {
            return;
        }
        let by_name: HashMap<&str, bool> = refused
            .iter()
            .map(|r| (r.relative.as_str(), r.settled))
            .collect();
        let fixed = take_refused(&mut self.changed_after_upload, &by_name);
        let removed = take_refused(&mut self.vanished_after_upload, &by_name);
        self.refused_fixed.extend(fixed);
        self.refused_removed.extend(removed);
    }
}

/// Takes the refused names out of `names`; returns the unsettled ones.
fn take_refused(names: &mut Vec<String>, refused: &HashMap<&str, bool>) -> Vec<String> {
    let mut unsettled = Vec::new();
    names.retain(|name| match refused.get(name.as_str()) {
        None => true,
        Some(true) => false,
        Some(false) => {
            unsettled.push(name.clone());
            false
        }
    });
    unsettled
}

impl Manifest {
    /// Brings the plan in line with a fresh scan (`files`, of this run's kind):
    /// pending items that changed are re-planned, vanished pending ones are
    /// dropped, new files are added (shards re-cut from the pending images);
    /// uploaded items are never touched. Returns what changed.
    ///
    /// Reads the shards' items from the items file one shard at a time; the
    /// re-cut shards are held in memory until the next [`Manifest::save`]
    /// appends them to it.
    pub fn reconcile(
        &mut self,
        files: &[ScannedFile],
        options: &PlanOptions,
    ) -> Result<Reconciliation, StateError> {
        let mut r = Reconciler {
            current: files.iter().map(|f| (f.relative.as_str(), f)).collect(),
            rec: Reconciliation::default(),
        };
        self.reconcile_singles(&mut r);
        let (pending_shards, mut pending_images) = self.reconcile_shards(&mut r)?;
        self.add_new_files(files, &mut r, &mut pending_images);
        let rec = r.rec;
        let pending_unchanged = rec.changed_pending.is_empty()
            && rec.vanished_pending.is_empty()
            && rec.added.is_empty();
        if pending_unchanged {
            // Keep the original cut and indexes.
            self.ingest.shards.extend(pending_shards);
        } else {
            self.recut(&pending_shards, pending_images, options);
        }
        self.ingest.shards.sort_by_key(|s| s.index);
        Ok(rec)
    }

    /// Singles: keep uploaded ones, refresh pending ones.
    fn reconcile_singles(&mut self, r: &mut Reconciler<'_>) {
        let singles = std::mem::take(&mut self.ingest.singles);
        for s in singles {
            match r.check(&s.item, s.uploaded) {
                Some(item) => self.ingest.singles.push(SingleRecord {
                    item,
                    uploaded: s.uploaded,
                }),
                // The batch still holds it: it stays counted.
                None if s.uploaded => self.ingest.singles.push(s),
                None => {}
            }
        }
    }

    /// Shards: uploaded (or attempted) ones stay as they are; the pending
    /// ones are returned with their images pooled for a re-cut. On an error
    /// every shard record is kept as it was.
    fn reconcile_shards(
        &mut self,
        r: &mut Reconciler<'_>,
    ) -> Result<(Vec<ShardRecord>, Vec<PlannedItem>), StateError> {
        let shards = std::mem::take(&mut self.ingest.shards);
        let mut pending_shards = Vec::new();
        let mut pending_images = Vec::new();
        let mut shards = shards.into_iter();
        while let Some(s) = shards.next() {
            let items = match s.load(self.items_file.as_deref()) {
                Ok(plan) => plan.items,
                Err(e) => {
                    self.ingest.shards.extend(pending_shards);
                    self.ingest.shards.push(s);
                    self.ingest.shards.extend(shards);
                    self.ingest.shards.sort_by_key(|s| s.index);
                    return Err(e);
                }
            };
            // A shard that may have reached the service is kept as it is.
            if s.uploaded || s.attempted {
                for item in &items {
                    r.check(item, true);
                }
                self.ingest.shards.push(s);
            } else {
                pending_images.extend(items.iter().filter_map(|i| r.check(i, false)));
                pending_shards.push(s);
            }
        }
        Ok((pending_shards, pending_images))
    }

    /// New files, in scan order: images of a bulk run join the pending
    /// images, anything else becomes a single upload.
    fn add_new_files(
        &mut self,
        files: &[ScannedFile],
        r: &mut Reconciler<'_>,
        pending_images: &mut Vec<PlannedItem>,
    ) {
        for f in files {
            if r.current.remove(f.relative.as_str()).is_some() {
                r.rec.added.push(f.relative.clone());
                let item = PlannedItem::from_scanned(f);
                match (self.ingest.mode, f.kind) {
                    (UploadMode::Bulk, MediaKind::Image) => pending_images.push(item),
                    _ => self.ingest.singles.push(SingleRecord {
                        item,
                        uploaded: false,
                    }),
                }
            }
        }
    }

    /// The pending images cut into new shards, numbered after every shard
    /// the plan had.
    fn recut(
        &mut self,
        pending_shards: &[ShardRecord],
        pending_images: Vec<PlannedItem>,
        options: &PlanOptions,
    ) {
        let next_index = self
            .ingest
            .shards
            .iter()
            .chain(pending_shards.iter())
            .map(|s| s.index + 1)
            .max()
            .unwrap_or(0);
        let recut = cut_shards(pending_images, options, next_index);
        self.ingest
            .shards
            .extend(recut.into_iter().map(|plan| ShardRecord {
                index: plan.index,
                tar_bytes: plan.tar_bytes,
                items: ShardItems::Inline(plan.items),
                uploaded: false,
                attempted: false,
            }));
    }
}

/// A reconcile in progress: the scanned files not matched yet, and what
/// changed so far.
struct Reconciler<'a> {
    current: HashMap<&'a str, &'a ScannedFile>,
    rec: Reconciliation,
}

impl Reconciler<'_> {
    /// The planned `item` checked against the scan: kept, refreshed (pending
    /// and changed) or `None` (gone), with the change recorded.
    fn check(&mut self, item: &PlannedItem, uploaded: bool) -> Option<PlannedItem> {
        let rec = &mut self.rec;
        match self.current.remove(item.relative.as_str()) {
            None if uploaded => {
                rec.vanished_after_upload.push(item.relative.clone());
                None
            }
            None => {
                rec.vanished_pending.push(item.relative.clone());
                None
            }
            Some(f) if f.size == item.size && f.mtime_ns == item.mtime_ns => Some(item.clone()),
            Some(_) if uploaded => {
                rec.changed_after_upload.push(item.relative.clone());
                Some(item.clone())
            }
            Some(f) => {
                rec.changed_pending.push(item.relative.clone());
                Some(PlannedItem::from_scanned(f))
            }
        }
    }
}
