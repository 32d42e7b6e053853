//! Upload planning: decides single uploads vs bulk tar shards and cuts shards.
//!
//! **Auto mode** uploads images one by one when there are at most
//! [`PlanOptions::single_max`] (default 32) of them, and in bulk tar shards
//! otherwise. Why 32 and not the documented "single up to 5,000":
//!
//! - a single upload costs one HTTP request per image; a shard costs two requests
//!   per up to 500 images, so past a few dozen images bulk is much faster (about
//!   250 times fewer requests at 500 per shard) and cheaper on rate limits;
//! - single uploads are visible at once, while shards are indexed in the
//!   background, so for a handful of images single uploads finish sooner;
//! - 32 is the official client's own threshold (`MIN_IMAGES_TO_FORM_SHARD`):
//!   a batch that one tool started and the other continues gets the same mode, so
//!   the server never sees the forbidden mix of single and bulk ingest.
//!
//! **Shards** hold at most [`PlanOptions::max_images_per_shard`] images (the
//! service's limit is 500) and at most [`PlanOptions::max_shard_bytes`] bytes of
//! tar. The number of shards is the smallest that respects both bounds, and
//! images are spread evenly across them (1,000 images become 2 × 500, 600 become
//! 2 × 300, not 500 + 100): each shard is one processing task in the job, so
//! even shards finish together. Order is the scan order, so the plan is
//! deterministic.
//!
//! **Videos** are always uploaded one by one through signed URLs.

use serde::{Deserialize, Serialize};

use super::names::flat_name;
use super::scan::{MediaKind, ScannedFile};
use super::tar_stream::{TAR_END_LEN, member_len};

pub use rf_types::MAX_IMAGES_PER_SHARD;

/// How images are sent to the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    /// One multipart POST per image (a `simple-batch`).
    Single,
    /// Tar shards PUT to signed URLs (a `sharded-batch`).
    Bulk,
}

/// Which upload mode to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModeChoice {
    /// Single uploads up to [`PlanOptions::single_max`] images, bulk above.
    #[default]
    Auto,
    /// Always single uploads.
    Single,
    /// Always bulk shards (even for one image).
    Bulk,
}

/// Options of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Mode choice (default auto).
    pub mode: ModeChoice,
    /// Auto mode uses single uploads for at most this many images (default 32).
    pub single_max: usize,
    /// Most images per shard (default and maximum 500).
    pub max_images_per_shard: usize,
    /// Most bytes of tar per shard (default 256 MiB; a shard with one larger
    /// image still holds that image).
    pub max_shard_bytes: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            mode: ModeChoice::Auto,
            single_max: 32,
            max_images_per_shard: MAX_IMAGES_PER_SHARD,
            max_shard_bytes: 256 * 1024 * 1024,
        }
    }
}

impl PlanOptions {
    /// The mode these options give for `images` images.
    pub fn mode_for(&self, images: usize) -> UploadMode {
        match self.mode {
            ModeChoice::Single => UploadMode::Single,
            ModeChoice::Bulk => UploadMode::Bulk,
            ModeChoice::Auto if images <= self.single_max => UploadMode::Single,
            ModeChoice::Auto => UploadMode::Bulk,
        }
    }
}

/// A file with the name it gets in the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItem {
    /// Path relative to the input root, `/`-separated.
    pub relative: String,
    /// Flat item name in the batch ([`flat_name`] of `relative`).
    pub name: String,
    /// Image or video.
    pub kind: MediaKind,
    /// Size in bytes at planning time.
    pub size: u64,
    /// Modification time at planning time (ns since the Unix epoch).
    pub mtime_ns: i64,
}

impl PlannedItem {
    /// Names a scanned file, taking its path.
    pub fn from_owned(file: ScannedFile) -> Self {
        PlannedItem {
            name: flat_name(&file.relative),
            relative: file.relative,
            kind: file.kind,
            size: file.size,
            mtime_ns: file.mtime_ns,
        }
    }

    /// Names a scanned file.
    pub fn from_scanned(file: &ScannedFile) -> Self {
        PlannedItem {
            relative: file.relative.clone(),
            name: flat_name(&file.relative),
            kind: file.kind,
            size: file.size,
            mtime_ns: file.mtime_ns,
        }
    }
}

/// One tar shard: a list of items and the exact size of its tar stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// Position of the shard in the run (0-based, stable across resumes).
    pub index: usize,
    /// The images in the shard, in tar order.
    pub items: Vec<PlannedItem>,
    /// Exact length of the tar stream in bytes (sent as `Content-Length`).
    pub tar_bytes: u64,
}

/// The whole upload plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Mode for the images.
    pub mode: UploadMode,
    /// Items uploaded one by one (single-mode images, and every video).
    pub singles: Vec<PlannedItem>,
    /// Shards (bulk mode only).
    pub shards: Vec<ShardPlan>,
}

impl Plan {
    /// Number of items the batch will hold once everything is uploaded.
    pub fn item_count(&self) -> usize {
        self.singles.len() + self.shards.iter().map(|s| s.items.len()).sum::<usize>()
    }
}

/// Plans the upload of `files` (in scan order).
///
/// ```
/// use rf_batch::ingest::{plan, PlanOptions, ScannedFile, MediaKind, UploadMode};
/// let files: Vec<ScannedFile> = (0..1000)
///     .map(|i| ScannedFile { relative: format!("d/{i:04}.jpg"), kind: MediaKind::Image, size: 1000, mtime_ns: 0 })
///     .collect();
/// let p = plan(&files, &PlanOptions::default());
/// assert_eq!(p.mode, UploadMode::Bulk);
/// assert_eq!(p.shards.len(), 2);
/// assert_eq!(p.shards[1].items[0].name, "d__0500.jpg");
/// ```
pub fn plan(files: &[ScannedFile], options: &PlanOptions) -> Plan {
    let images = files.iter().filter(|f| f.kind == MediaKind::Image);
    let image_count = images.clone().count();
    let image_bytes: u64 = images.clone().map(|f| member_len(f.size)).sum();
    let mode = options.mode_for(image_count);
    let images = images.map(PlannedItem::from_scanned);
    let (mut singles, shards) = match mode {
        UploadMode::Single => (images.collect(), Vec::new()),
        UploadMode::Bulk => (
            Vec::new(),
            cut(images, image_count, image_bytes, options, 0),
        ),
    };
    singles.extend(
        files
            .iter()
            .filter(|f| f.kind == MediaKind::Video)
            .map(PlannedItem::from_scanned),
    );
    Plan {
        mode,
        singles,
        shards,
    }
}

/// Cuts `images` into shards numbered from `first_index` (see the module docs).
pub fn cut_shards(
    images: Vec<PlannedItem>,
    options: &PlanOptions,
    first_index: usize,
) -> Vec<ShardPlan> {
    let total_bytes: u64 = images.iter().map(|i| member_len(i.size)).sum::<u64>();
    let count = images.len();
    cut(images.into_iter(), count, total_bytes, options, first_index)
}

/// [`cut_shards`] over an iterator of `count` images of `total_bytes` tar bytes.
fn cut(
    images: impl Iterator<Item = PlannedItem>,
    count: usize,
    total_bytes: u64,
    options: &PlanOptions,
    first_index: usize,
) -> Vec<ShardPlan> {
    if count == 0 {
        return Vec::new();
    }
    let mut cutter = ShardCutter::new(count, total_bytes, options);
    let mut shards = Vec::with_capacity(cutter.shard_count());
    let mut current: Vec<PlannedItem> = Vec::new();
    for item in images {
        if let Some(tar_bytes) = cutter.push(item.size) {
            shards.push(ShardPlan {
                index: first_index + shards.len(),
                items: std::mem::take(&mut current),
                tar_bytes,
            });
        }
        current.push(item);
    }
    if let Some(tar_bytes) = cutter.finish() {
        shards.push(ShardPlan {
            index: first_index + shards.len(),
            items: current,
            tar_bytes,
        });
    }
    shards
}

/// The shard-cutting rule of [`plan`] as a state machine over image sizes,
/// so that a plan too large to hold in memory can be cut while it is read
/// from disk: feed each image's size in order to [`ShardCutter::push`], which
/// says when the shard before that image is complete.
///
/// ```
/// use rf_batch::ingest::{PlanOptions, plan::ShardCutter};
/// // 1,000 images of 1 KB: two shards of 500.
/// let mut cutter = ShardCutter::new(1000, 1000 * 1536, &PlanOptions::default());
/// let closed: Vec<usize> = (0..1000).filter(|_| cutter.push(1024).is_some()).collect();
/// assert_eq!(closed.len(), 1); // the first shard closes before image 500
/// assert!(cutter.finish().is_some()); // and the second at the end
/// ```
#[derive(Debug, Clone)]
pub struct ShardCutter {
    max_images: usize,
    max_bytes: u64,
    base: usize,
    extra: usize,
    shard_count: usize,
    closed: usize,
    in_shard: usize,
    shard_bytes: u64,
}

impl ShardCutter {
    /// A cutter for `count` images whose tar members take `total_bytes`
    /// ([`member_len`] of each size, summed).
    pub fn new(count: usize, total_bytes: u64, options: &PlanOptions) -> Self {
        let max_images = options.max_images_per_shard.clamp(1, MAX_IMAGES_PER_SHARD);
        let max_bytes = options.max_shard_bytes.max(1);
        let by_count = count.div_ceil(max_images);
        let by_bytes = usize::try_from(total_bytes.div_ceil(max_bytes)).unwrap_or(usize::MAX);
        let shard_count = by_count.max(by_bytes).max(1);
        // Even split: the first `extra` shards take one image more.
        ShardCutter {
            max_images,
            max_bytes,
            base: count / shard_count,
            extra: count % shard_count,
            shard_count,
            closed: 0,
            in_shard: 0,
            shard_bytes: TAR_END_LEN,
        }
    }

    /// The number of shards the even split aims at (more may come when
    /// sizes push shards over the byte bound).
    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    fn target(&self) -> usize {
        (self.base + usize::from(self.closed < self.extra)).clamp(1, self.max_images)
    }

    /// Adds the next image, of `size` bytes. Returns the tar length of the
    /// shard that closes *before* this image (which then starts the next
    /// shard), or `None` when it joins the current one.
    pub fn push(&mut self, size: u64) -> Option<u64> {
        let len = member_len(size);
        let mut closed = None;
        if self.in_shard > 0
            && (self.in_shard >= self.target() || self.shard_bytes + len > self.max_bytes)
        {
            closed = Some(self.shard_bytes);
            self.closed += 1;
            self.in_shard = 0;
            self.shard_bytes = TAR_END_LEN;
        }
        self.in_shard += 1;
        self.shard_bytes += len;
        closed
    }

    /// Closes the last shard: its tar length, or `None` if no image came.
    pub fn finish(&mut self) -> Option<u64> {
        if self.in_shard == 0 {
            return None;
        }
        let bytes = self.shard_bytes;
        self.closed += 1;
        self.in_shard = 0;
        self.shard_bytes = TAR_END_LEN;
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: usize, size: u64) -> Vec<ScannedFile> {
        (0..n)
            .map(|i| ScannedFile {
                relative: format!("dir/{i:05}.jpg"),
                kind: MediaKind::Image,
                size,
                mtime_ns: 1,
            })
            .collect()
    }

    #[test]
    fn images_keep_scan_order_and_videos_follow_them() {
        for n in [0, 5, 1001] {
            let mut all = files(n, 700);
            for i in [0, n / 2, n] {
                all.insert(
                    i.min(all.len()),
                    ScannedFile {
                        relative: format!("v/{i}.mp4"),
                        kind: MediaKind::Video,
                        size: 9,
                        mtime_ns: 2,
                    },
                );
            }
            let options = PlanOptions::default();
            let p = plan(&all, &options);
            // Images in scan order (in shards, or first among the singles),
            // then the videos in scan order.
            let named = |kind| {
                all.iter()
                    .filter(|f| f.kind == kind)
                    .map(PlannedItem::from_scanned)
                    .collect::<Vec<_>>()
            };
            let mut expected = named(MediaKind::Image);
            let mut got: Vec<PlannedItem> = p.shards.iter().flat_map(|s| s.items.clone()).collect();
            got.extend(p.singles.iter().cloned());
            expected.extend(named(MediaKind::Video));
            assert_eq!(got, expected);
            assert_eq!(p.mode, options.mode_for(n));
            for s in &p.shards {
                let members: u64 = s.items.iter().map(|i| member_len(i.size)).sum();
                assert_eq!(s.tar_bytes, members + TAR_END_LEN);
            }
        }
    }

    #[test]
    fn small_sets_go_single_large_sets_bulk() {
        let o = PlanOptions::default();
        assert_eq!(plan(&files(32, 10), &o).mode, UploadMode::Single);
        assert_eq!(plan(&files(32, 10), &o).singles.len(), 32);
        let p = plan(&files(33, 10), &o);
        assert_eq!(p.mode, UploadMode::Bulk);
        assert_eq!(p.shards.len(), 1);
        assert_eq!(p.item_count(), 33);
    }

    #[test]
    fn forced_modes() {
        let single = PlanOptions {
            mode: ModeChoice::Single,
            ..Default::default()
        };
        assert_eq!(plan(&files(5000, 1), &single).mode, UploadMode::Single);
        let bulk = PlanOptions {
            mode: ModeChoice::Bulk,
            ..Default::default()
        };
        let p = plan(&files(1, 1), &bulk);
        assert_eq!(
            (p.mode, p.shards.len(), p.singles.len()),
            (UploadMode::Bulk, 1, 0)
        );
    }

    #[test]
    fn shards_are_even_and_bounded_by_count() {
        let p = plan(&files(1001, 10), &PlanOptions::default());
        let sizes: Vec<usize> = p.shards.iter().map(|s| s.items.len()).collect();
        assert_eq!(sizes, [334, 334, 333]);
        let p = plan(&files(600, 10), &PlanOptions::default());
        let sizes: Vec<usize> = p.shards.iter().map(|s| s.items.len()).collect();
        assert_eq!(sizes, [300, 300]);
        assert_eq!(p.shards[1].index, 1);
        assert_eq!(p.shards[1].items[0].relative, "dir/00300.jpg");
    }

    #[test]
    fn shards_are_bounded_by_bytes() {
        let o = PlanOptions {
            max_shard_bytes: 10 * 1024,
            ..Default::default()
        };
        let p = plan(&files(40, 1000), &o);
        for s in &p.shards {
            assert!(s.tar_bytes <= 10 * 1024, "{}", s.tar_bytes);
            let expected: u64 =
                TAR_END_LEN + s.items.iter().map(|i| member_len(i.size)).sum::<u64>();
            assert_eq!(s.tar_bytes, expected);
        }
        assert_eq!(p.item_count(), 40);
        // one oversized image still gets its own shard
        let p = plan(&files(34, 50_000), &o);
        assert_eq!(p.shards.len(), 34);
    }

    #[test]
    fn videos_are_always_single() {
        let mut f = files(40, 1);
        f.push(ScannedFile {
            relative: "v/clip.mp4".into(),
            kind: MediaKind::Video,
            size: 9,
            mtime_ns: 0,
        });
        let p = plan(&f, &PlanOptions::default());
        assert_eq!(p.mode, UploadMode::Bulk);
        assert_eq!(p.singles.len(), 1);
        assert_eq!(p.singles[0].name, "v__clip.mp4");
        assert_eq!(p.item_count(), 41);
    }
}
