//! Progress on stderr: indicatif bars on a terminal, plain throttled lines
//! otherwise (logs, CI), nothing with `-q`.
//!
//! The library never draws anything: it emits events, and `render.rs` turns
//! them into calls on [`Progress`] (one track per phase: scan, upload,
//! indexing, job, download).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::output::Output;

/// How often a plain-line track may print an update.
const LINE_INTERVAL: Duration = Duration::from_secs(2);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// indicatif bars (stderr is a terminal).
    Bars,
    /// Plain lines, at most one per track every few seconds.
    Lines,
    /// Nothing (`-q`).
    Off,
}

impl Mode {
    /// Bars on a terminal, lines otherwise, nothing when quiet.
    pub(crate) fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }

    /// The draw target for the shared [`MultiProgress`].
    pub(crate) fn multi(self) -> MultiProgress {
        match self {
            Mode::Bars => MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            Mode::Lines | Mode::Off => {
                MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
            }
        }
    }
}

/// A phase of a run, one track each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Walking the input directory.
    Scan,
    /// Uploading files or shards.
    Upload,
    /// Waiting for the server to index what was uploaded.
    Index,
    /// The job running.
    Job,
    /// Downloading and extracting results.
    Download,
    /// Copying an export into a bucket (`--out s3://...`).
    BucketUpload,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Scan => "scan",
            Phase::Upload => "upload",
            Phase::Index => "indexing",
            Phase::Job => "job",
            Phase::Download => "download",
            Phase::BucketUpload => "to bucket",
        }
    }
}

/// What a track counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Items, named by the string ("files", "tasks", ...).
    Items(&'static str),
    /// Percent (0..=100) of something without a natural count.
    Percent,
}

#[derive(Debug)]
struct Track {
    unit: Unit,
    bar: Option<ProgressBar>,
    pos: u64,
    total: Option<u64>,
    message: String,
    started: Instant,
    last_line: Option<Instant>,
    last_printed: String,
}

/// The progress display of one command.
#[derive(Debug)]
pub(crate) struct Progress {
    mode: Mode,
    output: Output,
    tracks: BTreeMap<Phase, Track>,
}

impl Progress {
    /// A display that draws into `output`'s bars (or prints lines) per `mode`.
    pub(crate) fn new(output: &Output, mode: Mode) -> Self {
        Progress {
            mode,
            output: output.clone(),
            tracks: BTreeMap::new(),
        }
    }

    /// Starts (or restarts) the track of `phase`.
    pub(crate) fn begin(&mut self, phase: Phase, total: Option<u64>, unit: Unit) {
        if let Some(old) = self.tracks.remove(&phase)
            && let Some(bar) = old.bar
        {
            bar.finish_and_clear();
        }
        let bar = (self.mode == Mode::Bars).then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let bar = self.output.bars().add(bar);
            bar.set_style(style(unit, total.is_some()));
            bar.set_prefix(phase.label());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        self.tracks.insert(
            phase,
            Track {
                unit,
                bar,
                pos: 0,
                total,
                message: String::new(),
                started: Instant::now(),
                // The first plain line comes after an interval: short phases
                // print only their summary.
                last_line: Some(Instant::now()),
                last_printed: String::new(),
            },
        );
    }

    /// Whether `phase` has a track.
    pub(crate) fn has(&self, phase: Phase) -> bool {
        self.tracks.contains_key(&phase)
    }

    /// Sets the position of `phase`.
    pub(crate) fn set(&mut self, phase: Phase, pos: u64) {
        if let Some(track) = self.tracks.get_mut(&phase) {
            track.pos = pos;
            if let Some(bar) = &track.bar {
                bar.set_position(pos);
            }
        }
        self.line_update(phase);
    }

    /// Sets the position and the message of `phase` at once, so that a plain
    /// line never pairs the new position with the old message.
    pub(crate) fn update(&mut self, phase: Phase, pos: u64, message: impl Into<String>) {
        let message = message.into();
        if let Some(track) = self.tracks.get_mut(&phase) {
            track.pos = pos;
            if let Some(bar) = &track.bar {
                bar.set_position(pos);
                if track.message != message {
                    bar.set_message(message.clone());
                }
            }
            track.message = message;
        }
        self.line_update(phase);
    }

    /// Advances `phase` by `n`.
    pub(crate) fn inc(&mut self, phase: Phase, n: u64) {
        let pos = self.tracks.get(&phase).map_or(0, |t| t.pos);
        self.set(phase, pos.saturating_add(n));
    }

    /// Sets the text shown after the bar of `phase`.
    pub(crate) fn message(&mut self, phase: Phase, message: impl Into<String>) {
        let message = message.into();
        if let Some(track) = self.tracks.get_mut(&phase) {
            if track.message == message {
                return;
            }
            if let Some(bar) = &track.bar {
                bar.set_message(message.clone());
            }
            track.message = message;
        }
        self.line_update(phase);
    }

    /// Ends the track of `phase`, leaving `summary` as its last line.
    pub(crate) fn finish(&mut self, phase: Phase, summary: impl Into<String>) {
        let summary = summary.into();
        let Some(track) = self.tracks.remove(&phase) else {
            if self.mode != Mode::Off {
                self.output
                    .stderr_line(&format!("rf: {}: {summary}", phase.label()));
            }
            return;
        };
        let elapsed = track.started.elapsed();
        let text = format!("{summary} in {}", human_duration(elapsed));
        match (track.bar, self.mode) {
            // The finished line is printed above the bars, where it stays
            // (on screen and in the scrollback), and the bar goes: a
            // finished bar left in the drawn area is erased with it.
            (Some(bar), _) => {
                bar.finish_and_clear();
                self.output.bars().remove(&bar);
                self.output
                    .stderr_line(&format!("{:>9} {text}", phase.label()));
            }
            (None, Mode::Lines) => self
                .output
                .stderr_line(&format!("rf: {}: {text}", phase.label())),
            _ => {}
        }
    }

    /// Removes every bar still drawn (on errors and interrupts), so the
    /// error line is not mixed with a half-drawn bar.
    pub(crate) fn clear(&mut self) {
        for (_, track) in std::mem::take(&mut self.tracks) {
            if let Some(bar) = track.bar {
                bar.abandon();
            }
        }
    }

    /// In line mode, prints the state of `phase` if it is due.
    fn line_update(&mut self, phase: Phase) {
        if self.mode != Mode::Lines {
            return;
        }
        let Some(track) = self.tracks.get_mut(&phase) else {
            return;
        };
        let due = track.last_line.is_none_or(|t| t.elapsed() >= LINE_INTERVAL);
        if !due {
            return;
        }
        let text = describe(track);
        if text == track.last_printed {
            return;
        }
        track.last_line = Some(Instant::now());
        track.last_printed.clone_from(&text);
        self.output
            .stderr_line(&format!("rf: {}: {text}", phase.label()));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The plain-line text of a track: `12/40 files`, `3.0 MiB/9.0 MiB`, `40%`.
fn describe(track: &Track) -> String {
    let amount = match (track.unit, track.total) {
        (Unit::Items(what), Some(total)) => format!("{}/{total} {what}", track.pos),
        (Unit::Items(what), None) => format!("{} {what}", track.pos),
        (Unit::Percent, _) => format!("{}%", track.pos.min(100)),
    };
    if track.message.is_empty() {
        amount
    } else {
        format!("{amount} {}", track.message)
    }
}

fn style(unit: Unit, bounded: bool) -> ProgressStyle {
    let template = match (unit, bounded) {
        (Unit::Items(what), true) => format!(
            "{{prefix:>9.cyan}} [{{bar:30}}] {{pos}}/{{len}} {what} {{elapsed}}, {{eta_left}} {{msg}}"
        ),
        (Unit::Items(what), false) => {
            format!("{{prefix:>9.cyan}} {{spinner}} {{pos}} {what} {{elapsed}} {{msg}}")
        }
        // Percent tracks (the job) say their own elapsed time and ETA.
        (Unit::Percent, _) => "{prefix:>9.cyan} [{bar:30}] {pos:>3}% {msg}".to_owned(),
    };
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("eta_left", eta_left)
        .progress_chars("=> ")
}

/// `ETA 12s`, or `ETA --` before the first item: an estimate from nothing
/// done is no estimate.
fn eta_left(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = if state.pos() == 0 {
        write!(w, "ETA --")
    } else {
        write!(w, "ETA {}", human_duration(state.eta()))
    };
}

/// The estimated time left of something `progress` (0..=1) done after
/// `elapsed`: `None` until there is enough to go on (2% done).
pub(crate) fn eta(elapsed: Duration, progress: f64) -> Option<Duration> {
    if !(0.02..1.0).contains(&progress) {
        return None;
    }
    Some(elapsed.mul_f64((1.0 - progress) / progress))
}

/// `1.2s`, `3m04s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(unit: Unit, pos: u64, total: Option<u64>, message: &str) -> Track {
        Track {
            unit,
            bar: None,
            pos,
            total,
            message: message.to_owned(),
            started: Instant::now(),
            last_line: None,
            last_printed: String::new(),
        }
    }

    #[test]
    fn plain_lines_describe_the_amount() {
        assert_eq!(
            describe(&track(Unit::Items("files"), 3, Some(12), "")),
            "3/12 files"
        );
        assert_eq!(
            describe(&track(Unit::Items("files"), 2, Some(4), "1.00 KiB sent")),
            "2/4 files 1.00 KiB sent"
        );
        assert_eq!(
            describe(&track(Unit::Percent, 140, None, "export")),
            "100% export"
        );
    }

    #[test]
    fn a_plain_line_pairs_the_position_with_its_own_message() {
        // Quiet: the lines are formed but not written.
        let output = Output::new(false, true, MultiProgress::new());
        let mut p = Progress::new(&output, Mode::Lines);
        p.begin(Phase::Job, Some(100), Unit::Percent);
        // As if the line interval had passed.
        p.tracks.get_mut(&Phase::Job).unwrap().last_line = None;
        p.update(Phase::Job, 25, "processing: 0/1 tasks done, 1 running");
        assert_eq!(
            p.tracks[&Phase::Job].last_printed,
            "25% processing: 0/1 tasks done, 1 running"
        );
        p.tracks.get_mut(&Phase::Job).unwrap().last_line = None;
        p.update(Phase::Job, 100, "export");
        assert_eq!(p.tracks[&Phase::Job].last_printed, "100% export");
    }

    #[test]
    fn the_eta_waits_for_something_done_and_scales_what_is_left() {
        assert_eq!(eta(Duration::from_secs(10), 0.0), None);
        assert_eq!(eta(Duration::from_secs(10), 0.01), None);
        assert_eq!(
            eta(Duration::from_secs(10), 0.25),
            Some(Duration::from_secs(30))
        );
        assert_eq!(eta(Duration::from_secs(10), 1.0), None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_secs(184)), "3m04s");
        assert_eq!(human_duration(Duration::from_secs(7260)), "2h01m");
    }

    #[test]
    fn tracks_follow_begin_set_finish() {
        let out = Output::new(false, true, Mode::Off.multi());
        let mut p = Progress::new(&out, Mode::Off);
        p.begin(Phase::Upload, Some(100), Unit::Items("files"));
        p.inc(Phase::Upload, 40);
        p.inc(Phase::Upload, 2);
        assert_eq!(p.tracks[&Phase::Upload].pos, 42);
        assert_eq!(p.tracks[&Phase::Upload].total, Some(100));
        p.finish(Phase::Upload, "done");
        assert!(!p.has(Phase::Upload));
    }
}
