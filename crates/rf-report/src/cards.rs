//! The gallery's cards: each sampled image with its thumbnail and its
//! predictions placed in the thumbnail's pixels (boxes as positioned
//! elements, polygons as SVG in the source's coordinates).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::extract::Prediction;
use crate::sample::Sampled;
use crate::stats::fmt_num;
use crate::thumbs::{self, THUMB_SIDE};

/// Box colours, given to classes from the most frequent down.
const PALETTE: [&str; 12] = [
    "#ff2d55", "#00c7ff", "#ffcc00", "#34c759", "#af52de", "#ff9500", "#5ac8fa", "#ff3bd4",
    "#a2ff00", "#0a84ff", "#ff6961", "#30d5c8",
];
/// Colour of classes past the palette.
const REST: &str = "#d0d0d0";

/// The colour of each class.
#[derive(Debug, Default)]
pub(crate) struct Colours(HashMap<String, &'static str>);

impl Colours {
    /// Colours for `counts`, by frequency.
    pub(crate) fn new(counts: &BTreeMap<String, u64>) -> Self {
        let mut by_count: Vec<(&String, &u64)> = counts.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        Colours(
            by_count
                .into_iter()
                .zip(PALETTE.iter().copied().chain(std::iter::repeat(REST)))
                .map(|((c, _), colour)| (c.clone(), colour))
                .collect(),
        )
    }

    /// The colour of `class`.
    pub(crate) fn of(&self, class: &str) -> &'static str {
        self.0.get(class).copied().unwrap_or(REST)
    }
}

/// One prediction drawn on a card.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Drawn {
    pub(crate) class: String,
    /// Confidence for the filter (0 when the output gave none).
    pub(crate) conf: f64,
    pub(crate) label: String,
    pub(crate) colour: &'static str,
    /// Left, top, width, height in thumbnail pixels; `None` for a label
    /// (classification) with no box.
    pub(crate) rect: Option<[String; 4]>,
    /// SVG polygon points in source pixels ("" for none).
    pub(crate) points: String,
}

/// A card of the gallery.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Card {
    pub(crate) name: String,
    /// The thumbnail's `data:` URI, if there is one.
    pub(crate) src: Option<String>,
    /// Why there is no thumbnail.
    pub(crate) note: Option<String>,
    /// Drawn size and offset in the card's square frame.
    pub(crate) w: f64,
    pub(crate) h: f64,
    pub(crate) ox: f64,
    pub(crate) oy: f64,
    /// Source size (the predictions' coordinates), for SVG.
    pub(crate) sw: String,
    pub(crate) sh: String,
    pub(crate) top: String,
    pub(crate) preds: Vec<Drawn>,
    pub(crate) more: usize,
}

/// The card of `s`, whose source file may be known.
pub(crate) fn card(s: &Sampled, source: Option<&PathBuf>, colours: &Colours) -> Card {
    let (thumb, note) = match source.map(|p| thumbs::thumbnail(p)) {
        Some(Ok(t)) => (Some(t), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, Some("source image not found".to_string())),
    };
    let stated = s.image;
    let actual = thumb
        .as_ref()
        .map(|t| (f64::from(t.source.0), f64::from(t.source.1)));
    let src_size = stated.or(actual).unwrap_or_else(|| extent(&s.predictions));
    let (w, h) = thumbs::fit(src_size);
    let scale = (w / src_size.0, h / src_size.1);
    let side = f64::from(THUMB_SIDE);
    Card {
        name: s.name.clone(),
        src: thumb.map(|t| t.uri),
        note,
        w,
        h,
        ox: ((side - w) / 2.0).floor(),
        oy: ((side - h) / 2.0).floor(),
        sw: fmt_num(src_size.0),
        sh: fmt_num(src_size.1),
        top: format!("{:.2}", s.top),
        preds: s
            .predictions
            .iter()
            .map(|p| drawn(p, scale, colours))
            .collect(),
        more: s.more,
    }
}

/// The smallest image holding every box (when no size is known).
fn extent(preds: &[Prediction]) -> (f64, f64) {
    let (mut w, mut h) = (1.0f64, 1.0f64);
    for b in preds.iter().filter_map(|p| p.bbox) {
        w = w.max(b.x + b.width / 2.0);
        h = h.max(b.y + b.height / 2.0);
    }
    if preds.iter().all(|p| p.bbox.is_none()) {
        (f64::from(THUMB_SIDE), f64::from(THUMB_SIDE))
    } else {
        (w, h)
    }
}

fn drawn(p: &Prediction, (sx, sy): (f64, f64), colours: &Colours) -> Drawn {
    let px = |v: f64| format!("{v:.1}");
    let rect = p.bbox.map(|b| {
        [
            px((b.x - b.width / 2.0) * sx),
            px((b.y - b.height / 2.0) * sy),
            px(b.width * sx),
            px(b.height * sy),
        ]
    });
    let points = p
        .points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    let label = match p.confidence {
        Some(c) => format!("{} {:.2}", p.class, c),
        None => p.class.clone(),
    };
    Drawn {
        class: p.class.clone(),
        conf: p.confidence.unwrap_or(0.0),
        label,
        colour: colours.of(&p.class),
        rect,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::BoundingBox;

    #[test]
    fn boxes_scale_into_the_thumbnail() {
        let mut counts = BTreeMap::new();
        counts.insert("a".to_string(), 5);
        counts.insert("b".to_string(), 9);
        let colours = Colours::new(&counts);
        assert_eq!(colours.of("b"), PALETTE[0]);
        assert_eq!(colours.of("zzz"), REST);
        let p = Prediction {
            class: "a".into(),
            confidence: Some(0.5),
            bbox: Some(BoundingBox {
                x: 100.0,
                y: 50.0,
                width: 40.0,
                height: 20.0,
            }),
            points: vec![(1.0, 2.0)],
        };
        let s = Sampled::new("x.jpg".into(), Some((512.0, 256.0)), vec![p]);
        let c = card(&s, None, &colours);
        assert_eq!((c.w, c.h, c.ox, c.oy), (256.0, 128.0, 0.0, 64.0));
        let d = &c.preds[0];
        assert_eq!(
            d.rect.as_ref().unwrap(),
            &["40.0", "20.0", "20.0", "10.0"].map(String::from)
        );
        assert_eq!(d.points, "1.0,2.0");
        assert_eq!(d.label, "a 0.50");
        assert_eq!(c.note.as_deref(), Some("source image not found"));
    }
}
