//! Video results: a summary per video (frames, duration, rate, size,
//! predictions) and its predictions over time. A video's frames come either
//! as a `frames` list in its record (what `video-properties` writes) or as
//! one record per frame (with `frame_number` or `frame_timestamp`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::extract;
use crate::stats::fmt_num;

/// Most videos summarised; more are counted.
pub(crate) const MAX_VIDEOS: usize = 200;
/// Points kept per video's timeline (pairs are merged beyond twice this).
const MAX_POINTS: usize = 300;
/// Width and height of a timeline's drawing, in SVG units.
const PLOT: (f64, f64) = (600.0, 80.0);

const TIME_KEYS: [&str; 4] = [
    "timestamp_seconds",
    "frame_timestamp",
    "timestamp",
    "time_seconds",
];
const INDEX_KEYS: [&str; 4] = ["frame_number", "frame", "frame_id", "frame_index"];

#[derive(Debug, Default)]
struct Video {
    frames: u64,
    predictions: u64,
    duration: Option<f64>,
    fps: Option<f64>,
    size: Option<(f64, f64)>,
    /// (time, predictions summed, frames summed)
    points: Vec<(f64, f64, u32)>,
}

/// Every video seen.
#[derive(Debug, Default)]
pub(crate) struct Videos {
    videos: BTreeMap<String, Video>,
    /// Video records past [`MAX_VIDEOS`] videos.
    pub(crate) untracked: u64,
}

/// A video as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VideoView {
    pub(crate) name: String,
    pub(crate) frames: u64,
    pub(crate) predictions: u64,
    pub(crate) duration: String,
    pub(crate) fps: String,
    pub(crate) size: String,
    /// SVG polyline points of predictions per frame over time, if any.
    pub(crate) timeline: String,
    pub(crate) peak: String,
}

fn num(m: &Map<String, Value>, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .find_map(|k| m.get(*k).and_then(Value::as_f64))
        .filter(|v| v.is_finite())
}

/// Whether `record` is (part of) a video result.
pub(crate) fn is_video(record: &Map<String, Value>) -> bool {
    record.get("frames").is_some_and(Value::is_array)
        || num(record, &INDEX_KEYS).is_some()
        || num(record, &["duration_seconds", "frame_count"]).is_some()
}

impl Videos {
    /// Counts a video record of `name` whose own predictions are
    /// `predictions` (one frame's, for a record per frame).
    pub(crate) fn add(&mut self, name: &str, record: &Map<String, Value>, predictions: usize) {
        let full = self.videos.len() >= MAX_VIDEOS;
        let video = match self.videos.get_mut(name) {
            Some(v) => v,
            None if full => {
                self.untracked += 1;
                return;
            }
            None => self.videos.entry(name.to_string()).or_default(),
        };
        video.duration = video.duration.or(num(record, &["duration_seconds"]));
        video.fps = video.fps.or(num(record, &["fps", "sampled_fps"]));
        if video.size.is_none() {
            video.size = num(record, &["width"]).zip(num(record, &["height"]));
        }
        if let Some(frames) = record.get("frames").and_then(Value::as_array) {
            for frame in frames {
                let count = extract::find_in(frame).predictions.len();
                let at = frame.as_object().and_then(|f| video.time_of(f));
                video.frame(at, count);
            }
        } else if num(record, &INDEX_KEYS).is_some() || num(record, &TIME_KEYS).is_some() {
            let at = video.time_of(record);
            video.frame(at, predictions);
        }
    }

    /// The summaries, by name.
    pub(crate) fn views(&self) -> Vec<VideoView> {
        self.videos.iter().map(|(n, v)| v.view(n)).collect()
    }
}

impl Video {
    fn time_of(&self, frame: &Map<String, Value>) -> Option<f64> {
        num(frame, &TIME_KEYS).or_else(|| {
            let i = num(frame, &INDEX_KEYS)?;
            Some(self.fps.filter(|f| *f > 0.0).map_or(i, |f| i / f))
        })
    }

    fn frame(&mut self, at: Option<f64>, predictions: usize) {
        self.frames += 1;
        self.predictions += predictions as u64;
        if let Some(t) = at {
            self.points.push((t, predictions as f64, 1));
            if self.points.len() >= 2 * MAX_POINTS {
                self.merge();
            }
        }
    }

    /// Halves the points: sorted by time, neighbours summed.
    fn merge(&mut self) {
        self.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.points = self
            .points
            .chunks(2)
            .map(|c| {
                c.iter()
                    .fold((c[0].0, 0.0, 0), |acc, p| (acc.0, acc.1 + p.1, acc.2 + p.2))
            })
            .collect();
    }

    fn view(&self, name: &str) -> VideoView {
        let mut points = self.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rates: Vec<(f64, f64)> = points
            .iter()
            .map(|(t, sum, n)| (*t, sum / f64::from((*n).max(1))))
            .collect();
        let peak = rates.iter().map(|r| r.1).fold(0.0, f64::max);
        VideoView {
            name: name.to_string(),
            frames: self.frames,
            predictions: self.predictions,
            duration: self
                .duration
                .map_or("-".into(), |d| format!("{} s", fmt_num(d))),
            fps: self.fps.map_or("-".into(), fmt_num),
            size: self.size.map_or("-".into(), |(w, h)| {
                format!("{}×{}", fmt_num(w), fmt_num(h))
            }),
            timeline: polyline(&rates, peak),
            peak: fmt_num(peak),
        }
    }
}

/// SVG polyline points of `(time, value)` scaled into [`PLOT`].
fn polyline(rates: &[(f64, f64)], peak: f64) -> String {
    let (Some(first), Some(last)) = (rates.first(), rates.last()) else {
        return String::new();
    };
    let span = (last.0 - first.0).max(f64::EPSILON);
    let top = peak.max(1.0);
    rates
        .iter()
        .map(|(t, v)| {
            let x = (t - first.0) / span * PLOT.0;
            let y = PLOT.1 - v / top * PLOT.1;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_list_and_records_per_frame() {
        let mut v = Videos::default();
        let r = json!({"file_name": "a.mp4", "duration_seconds": 2.0, "fps": 2.0, "width": 64, "height": 48,
            "frames": [{"frame": 0, "timestamp_seconds": 0.0},
                       {"frame": 1, "timestamp_seconds": 0.5, "predictions": [{"class": "x", "confidence": 0.5}]}]});
        assert!(is_video(r.as_object().unwrap()));
        v.add("a.mp4", r.as_object().unwrap(), 0);
        for i in 0..3 {
            let f = json!({"file_name": "b.mp4", "frame_number": i});
            v.add("b.mp4", f.as_object().unwrap(), i as usize);
        }
        let views = v.views();
        assert_eq!(views[0].frames, 2);
        assert_eq!(views[0].predictions, 1);
        assert_eq!(views[0].size, "64×48");
        assert_eq!(views[0].timeline, "0.0,80.0 600.0,0.0");
        assert_eq!(views[1].frames, 3);
        assert_eq!(views[1].predictions, 3);
        assert_eq!(views[1].peak, "2");
    }

    #[test]
    fn long_videos_stay_bounded() {
        let mut v = Videos::default();
        for i in 0..10_000 {
            let f = json!({"frame_number": i});
            v.add("long.mp4", f.as_object().unwrap(), 1);
        }
        assert!(v.videos["long.mp4"].points.len() < 2 * MAX_POINTS);
        assert_eq!(v.views()[0].frames, 10_000);
        assert_eq!(v.views()[0].peak, "1");
    }
}
