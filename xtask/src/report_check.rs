//! `cargo xtask report-check`: the page `rf run --report` writes, opened in
//! headless Chromium (Debian's `chromium`, installed by `.ci/run`).
//!
//! 1. `rf run --images samples/images --workflow color-blobs --report` on
//!    the embedded emulator, in a fresh directory.
//! 2. The page's DOM after its script ran (`--dump-dom`): where each
//!    card's picture is on the page (the script records it) and which
//!    cards and boxes a filter leaves.
//! 3. A screenshot at the same window size: at the edges of every
//!    prediction of the result files (scaled into the thumbnail, placed at
//!    the picture's position) the box colour is there, and a few pixels
//!    further inside mostly not.
//! 4. `#class=<the most frequent class>`: only that class's cards and
//!    boxes are shown, all of them.
//! 5. Chromium's net log of the screenshot: no request came from the page
//!    (the browser's own background requests have no page origin, and
//!    reach nothing: every host resolves to nothing and the proxy is a
//!    closed loopback port). A control page that does fetch must be
//!    caught, or the check itself is broken.
//!
//! With `CI=true`, a missing `chromium` fails; otherwise it is skipped with
//! a note. `--screenshot FILE` also saves a 1240×1000 screenshot (how
//! `docs/report.png` is made).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{project_root, run_command, target_dir};

/// The browser binary (Debian's package puts it here).
const CHROMIUM: &str = "/usr/bin/chromium";
/// Window of the checks: wide enough for four cards a row, tall enough for
/// every card of the twelve sample images.
const WINDOW: (u32, u32) = (1280, 2400);
/// Longest a browser run may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);
/// Largest difference per channel that still counts as the box colour.
const TOLERANCE: i32 = 40;

/// Runs the check.
pub(crate) fn report_check(args: &[String]) -> Result<(), String> {
    let save = args
        .iter()
        .position(|a| a == "--screenshot")
        .map(|i| {
            args.get(i + 1)
                .map(PathBuf::from)
                .ok_or("--screenshot needs a FILE")
        })
        .transpose()?;
    if !Path::new(CHROMIUM).is_file() {
        let msg = format!("{CHROMIUM} is missing (apt-get install -y chromium)");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(msg);
        }
        eprintln!("xtask: report-check skipped: {msg}");
        return Ok(());
    }
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let out = make_report(tmp.path())?;
    let page = out.join("report.html");
    let results = read_results(&out)?;
    let browser = Browser { tmp: tmp.path() };
    check_boxes(&browser, &page, &results)?;
    check_filter(&browser, &page, &results)?;
    check_control(&browser)?;
    if let Some(file) = save {
        browser.screenshot(&page, "", (1240, 1000), &project_root().join(&file))?;
        eprintln!("xtask: screenshot saved to {}", file.display());
    }
    eprintln!("xtask: report-check passed");
    Ok(())
}

/// Builds rf and runs the sample job with `--report`; the output directory.
fn make_report(tmp: &Path) -> Result<PathBuf, String> {
    run_command(Command::new("cargo").args(["build", "-p", "rf-cli"]))?;
    let rf = target_dir().join("debug/rf");
    let out = tmp.join("out");
    run_command(
        Command::new(&rf)
            .args(["-q", "run", "--images"])
            .arg(project_root().join("samples/images"))
            .args(["--workflow", "color-blobs", "--out"])
            .arg(&out)
            .arg("--report")
            .env("XDG_CACHE_HOME", tmp.join("cache"))
            .env_remove("ROBOFLOW_API_KEY")
            .env_remove("API_BASE_URL"),
    )?;
    Ok(out)
}

/// A prediction of the result files.
#[derive(Debug, Clone)]
struct Pred {
    class: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Each image's size and predictions, by file name.
type Results = BTreeMap<String, ((f64, f64), Vec<Pred>)>;

fn read_results(out: &Path) -> Result<Results, String> {
    let mut all = Results::new();
    let dir = out.join("results");
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: Value = serde_json::from_str(line).map_err(|e| format!("result line: {e}"))?;
            let (name, size, preds) = parse_record(&r).ok_or(format!("unexpected record {r}"))?;
            all.insert(name, (size, preds));
        }
    }
    Ok(all)
}

fn parse_record(r: &Value) -> Option<(String, (f64, f64), Vec<Pred>)> {
    let out = &r["predictions"];
    let size = (
        out["image"]["width"].as_f64()?,
        out["image"]["height"].as_f64()?,
    );
    let preds = out["predictions"]
        .as_array()?
        .iter()
        .map(|p| {
            Some(Pred {
                class: p["class"].as_str()?.to_string(),
                x: p["x"].as_f64()?,
                y: p["y"].as_f64()?,
                w: p["width"].as_f64()?,
                h: p["height"].as_f64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((r["file_name"].as_str()?.to_string(), size, preds))
}

/// A card of the dumped DOM.
#[derive(Debug)]
struct Card {
    name: String,
    shown: bool,
    /// The picture's page position and drawn size.
    at: (f64, f64),
    size: (f64, f64),
    /// Boxes: class, colour, shown.
    boxes: Vec<(String, String, bool)>,
}

/// The value of attribute `name` in the tag text `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(
        tag[start..start + len]
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\""),
    )
}

/// The number in a `style` attribute's property `prop` (`left:12.5px`).
fn style_px(style: &str, prop: &str) -> Option<f64> {
    let key = format!("{prop}:");
    let rest = &style[style.find(&key)? + key.len()..];
    rest.trim_start().split("px").next()?.trim().parse().ok()
}

/// The opening tag that starts at the first `needle` of `text`.
fn tag_at<'a>(text: &'a str, needle: &str) -> Option<&'a str> {
    let start = text.find(needle)?;
    let end = text[start..].find('>')? + start;
    Some(&text[start..end])
}

fn hidden(tag: &str) -> bool {
    attr(tag, "style").is_some_and(|s| s.replace(' ', "").contains("display:none"))
}

fn parse_cards(dom: &str) -> Result<Vec<Card>, String> {
    let mut cards = Vec::new();
    for chunk in dom.split("<figure class=\"card\"").skip(1) {
        let chunk = chunk.split("</figure>").next().unwrap_or(chunk);
        let head = &chunk[..chunk.find('>').unwrap_or(0)];
        let stage = tag_at(chunk, "<div class=\"stage\"").ok_or("a card without its stage")?;
        let style = attr(stage, "style").unwrap_or_default();
        let num = |k: &str| attr(stage, k).and_then(|v| v.parse::<f64>().ok());
        let (Some(x), Some(y)) = (num("data-page-x"), num("data-page-y")) else {
            return Err("the page's script did not record where the cards are".into());
        };
        let name =
            attr(tag_at(chunk, "<div class=\"name\"").unwrap_or(""), "title").unwrap_or_default();
        let boxes = chunk
            .split("<div class=\"pred box\"")
            .skip(1)
            .map(|b| {
                let tag = &b[..b.find('>').unwrap_or(0)];
                let tag = format!(" {tag}");
                (
                    attr(&tag, "data-class").unwrap_or_default(),
                    attr(&tag, "data-colour").unwrap_or_default(),
                    !hidden(&tag),
                )
            })
            .collect();
        cards.push(Card {
            name,
            shown: !hidden(&format!(" {head}")),
            at: (x, y),
            size: (
                style_px(&style, "width").unwrap_or(0.0),
                style_px(&style, "height").unwrap_or(0.0),
            ),
            boxes,
        });
    }
    Ok(cards)
}

/// Runs headless Chromium, each run with a fresh profile.
struct Browser<'a> {
    tmp: &'a Path,
}

impl Browser<'_> {
    /// A chromium command for `url` at `window`, nothing reaching the
    /// network, with a fresh profile named `run`.
    fn command(&self, run: &str, window: (u32, u32)) -> Command {
        let mut c = Command::new(CHROMIUM);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-pings",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=http://127.0.0.1:9",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--virtual-time-budget=3000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            self.tmp.join(format!("profile-{run}")).display()
        ))
        .arg(format!("--window-size={},{}", window.0, window.1));
        c
    }

    /// The DOM of `page` (with fragment `frag`) after its script ran.
    fn dump_dom(&self, page: &Path, frag: &str) -> Result<String, String> {
        let mut c = self.command(&format!("dom{}", frag.len()), WINDOW);
        c.arg("--dump-dom").arg(url(page, frag));
        let out = finish(c)?;
        String::from_utf8(out).map_err(|e| format!("chromium's DOM: {e}"))
    }

    /// A screenshot of `page` into `png`.
    fn screenshot(
        &self,
        page: &Path,
        frag: &str,
        window: (u32, u32),
        png: &Path,
    ) -> Result<(), String> {
        let mut c = self.command(&format!("shot{}", window.1), window);
        c.arg(format!("--screenshot={}", png.display()))
            .arg(url(page, frag));
        finish(c).map(drop)
    }

    /// The URLs the page at `url` requested (from a net log).
    fn page_requests(&self, run: &str, url: &str) -> Result<Vec<String>, String> {
        let log = self.tmp.join(format!("{run}-net.json"));
        let mut c = self.command(run, (800, 600));
        c.arg(format!("--log-net-log={}", log.display()))
            .arg("--dump-dom")
            .arg(url);
        finish(c)?;
        let text = std::fs::read_to_string(&log).map_err(|e| format!("net log: {e}"))?;
        page_requests(&text)
    }
}

fn url(page: &Path, frag: &str) -> String {
    format!("file://{}{frag}", page.display())
}

/// Runs `c` to its end within [`BROWSER_DEADLINE`]; its stdout.
fn finish(mut c: Command) -> Result<Vec<u8>, String> {
    let out_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let stdout = out_file.reopen().map_err(|e| e.to_string())?;
    let mut child = c
        .stdout(stdout)
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start {CHROMIUM}: {e}"))?;
    let deadline = Instant::now() + BROWSER_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                return Err(format!("chromium failed ({status})"));
            }
            return std::fs::read(out_file.path()).map_err(|e| e.to_string());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("chromium did not finish in {BROWSER_DEADLINE:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The URLs requested by a page in a Chromium net log: a request the page
/// made has the page's origin as its initiator; the browser's own have
/// "not an origin".
fn page_requests(log: &str) -> Result<Vec<String>, String> {
    let log: Value = serde_json::from_str(log).map_err(|e| format!("net log: {e}"))?;
    let start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .ok_or("net log without URL_REQUEST_START_JOB")?;
    let events = log["events"].as_array().ok_or("net log without events")?;
    Ok(events
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start))
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect())
}

/// Boxes where the predictions say, in a screenshot; the page fetched
/// nothing while drawn.
fn check_boxes(b: &Browser<'_>, page: &Path, results: &Results) -> Result<(), String> {
    let cards = parse_cards(&b.dump_dom(page, "")?)?;
    if cards.len() != results.len() {
        return Err(format!(
            "{} cards for {} results",
            cards.len(),
            results.len()
        ));
    }
    let png = b.tmp.join("shot.png");
    b.screenshot(page, "", WINDOW, &png)?;
    let shot = image::open(&png)
        .map_err(|e| format!("screenshot: {e}"))?
        .into_rgb8();
    let (mut edges, mut hits, mut inside, mut inside_hits) = (0, 0, 0, 0);
    for card in &cards {
        let ((iw, ih), preds) = results
            .get(&card.name)
            .ok_or(format!("card {} has no result", card.name))?;
        let scale = (card.size.0 / iw, card.size.1 / ih);
        for p in preds {
            let colour = card
                .boxes
                .iter()
                .find(|(class, _, _)| *class == p.class)
                .map(|(_, c, _)| parse_colour(c))
                .ok_or(format!("{}: no {} box drawn", card.name, p.class))??;
            let left = card.at.0 + (p.x - p.w / 2.0) * scale.0;
            let top = card.at.1 + (p.y - p.h / 2.0) * scale.1;
            let (w, h) = (p.w * scale.0, p.h * scale.1);
            let mid = top + h / 2.0;
            for x in [left.floor() + 1.0, (left + w).ceil() - 2.0] {
                edges += 1;
                hits += u32::from(near(&shot, x, mid, colour));
            }
            if w > 16.0 {
                inside += 1;
                inside_hits += u32::from(near(&shot, left + 8.0, mid, colour));
            }
        }
    }
    eprintln!(
        "xtask: box edges with the box colour: {hits}/{edges}; 8 px inside: {inside_hits}/{inside}"
    );
    if edges < 20 || f64::from(hits) < 0.9 * f64::from(edges) {
        return Err(format!(
            "boxes not where the predictions say: {hits} of {edges} edge pixels have the box colour"
        ));
    }
    if f64::from(inside_hits) > 0.5 * f64::from(inside.max(1)) {
        return Err(format!(
            "the box colour is everywhere ({inside_hits} of {inside} pixels inside the boxes)"
        ));
    }
    let fetched = b.page_requests("page", &url(page, ""))?;
    if !fetched.is_empty() {
        return Err(format!("the page fetched {fetched:?}"));
    }
    Ok(())
}

fn parse_colour(hex: &str) -> Result<[u8; 3], String> {
    let h = hex.trim_start_matches('#');
    let byte = |i: usize| h.get(i..i + 2).and_then(|s| u8::from_str_radix(s, 16).ok());
    match (h.len(), byte(0), byte(2), byte(4)) {
        (6, Some(r), Some(g), Some(b)) => Ok([r, g, b]),
        _ => Err(format!("not a colour: {hex}")),
    }
}

/// Whether the pixel at page position (x, y) is `colour`.
fn near(shot: &image::RgbImage, x: f64, y: f64, colour: [u8; 3]) -> bool {
    let (x, y) = (x.round(), y.round());
    if x < 0.0 || y < 0.0 || x >= f64::from(shot.width()) || y >= f64::from(shot.height()) {
        return false;
    }
    let px = shot.get_pixel(x as u32, y as u32).0;
    px.iter()
        .zip(colour)
        .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= TOLERANCE)
}

/// `#class=C` shows exactly the cards with a C prediction, and only C's boxes.
fn check_filter(b: &Browser<'_>, page: &Path, results: &Results) -> Result<(), String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, preds) in results.values() {
        for p in preds {
            *counts.entry(p.class.as_str()).or_default() += 1;
        }
    }
    let class = counts
        .iter()
        .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
        .map(|(c, _)| (*c).to_string())
        .ok_or("no prediction in the results")?;
    let dom = b.dump_dom(page, &format!("#class={class}"))?;
    let cards = parse_cards(&dom)?;
    let mut shown = 0;
    for card in &cards {
        let has = results[&card.name].1.iter().any(|p| p.class == class);
        if card.shown != has {
            return Err(format!(
                "#class={class}: card {} shown {} but has the class {has}",
                card.name, card.shown
            ));
        }
        if let Some((c, _, _)) = card.boxes.iter().find(|(c, _, on)| *on != (*c == class)) {
            return Err(format!(
                "#class={class}: on {}, a {c} box is wrongly shown or hidden",
                card.name
            ));
        }
        shown += usize::from(card.shown);
    }
    if shown == 0 || shown == cards.len() {
        return Err(format!(
            "#class={class} shows {shown} of {} cards: not a test of the filter",
            cards.len()
        ));
    }
    eprintln!(
        "xtask: #class={class} shows {shown} of {} cards, only {class} boxes",
        cards.len()
    );
    Ok(())
}

/// A page that fetches is caught by the same net-log check.
fn check_control(b: &Browser<'_>) -> Result<(), String> {
    let control = b.tmp.join("control.html");
    std::fs::write(
        &control,
        "<!doctype html><img src=\"http://report-check.invalid/x.png\"><script>fetch('https://report-check.invalid/y')</script>",
    )
    .map_err(|e| e.to_string())?;
    let fetched = b.page_requests("control", &url(&control, ""))?;
    if fetched.len() < 2 {
        return Err(format!(
            "the net-log check missed a control page's requests (saw {fetched:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cards_from_a_dom() {
        let dom = r##"<figure class="card" data-top="0.9" style="display: none;"><div class="frame"><div class="stage" style="left:0.0px;top:32.0px;width:256.0px;height:192.0px" data-page-x="60" data-page-y="400"><div class="pred box" data-class="a&amp;b" data-conf="0.9" data-colour="#ff2d55" style="left:1px"></div><div class="pred box" data-class="c" data-colour="#00c7ff" style="display: none;"></div></div></div><figcaption><div class="name" title="x.png">x.png</div></figcaption></figure>"##;
        let cards = parse_cards(dom).unwrap();
        assert_eq!(cards.len(), 1);
        let c = &cards[0];
        assert_eq!(
            (c.name.as_str(), c.shown, c.at, c.size),
            ("x.png", false, (60.0, 400.0), (256.0, 192.0))
        );
        assert_eq!(c.boxes[0], ("a&b".to_string(), "#ff2d55".to_string(), true));
        assert!(!c.boxes[1].2);
        assert_eq!(parse_colour("#ff2d55").unwrap(), [255, 45, 85]);
    }

    #[test]
    fn page_requests_are_told_from_the_browsers_own() {
        let log = r#"{"constants": {"logEventTypes": {"URL_REQUEST_START_JOB": 7}}, "events": [
            {"type": 7, "params": {"initiator": "not an origin", "url": "https://update.example/"}},
            {"type": 7, "params": {"initiator": "null", "url": "http://x.invalid/a.png"}},
            {"type": 8, "params": {"url": "http://y.invalid/"}}]}"#;
        assert_eq!(page_requests(log).unwrap(), ["http://x.invalid/a.png"]);
    }
}
