//! Benchmark results as Markdown: the side-by-side table with ratios, the
//! goal check, the scaling table, the machine description, and the
//! replacement of a marked section of docs/benchmarks.md.

use std::fmt::Write as _;

use crate::bench_measure::Measured;

/// Who moved the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// The `rf` binary.
    Rf,
    /// The raw limit: tar/curl straight to signed URLs, no API client.
    Raw,
    /// The official Python client, inference-cli.
    Peer,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Rf => "rf",
            Tool::Raw => "raw (tar/curl)",
            Tool::Peer => "inference-cli 1.8.3",
        }
    }
}

/// Upload or download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Files into a batch.
    Ingest,
    /// An output batch's files onto disk.
    Export,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Ingest => "ingest",
            Op::Export => "export",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Upload or download.
    pub(crate) op: Op,
    /// Dataset label, e.g. `20,000 × 4 KB JPEG`.
    pub(crate) dataset: String,
    /// Files moved.
    pub(crate) files: u64,
    /// Bytes moved.
    pub(crate) bytes: u64,
    /// Who moved them.
    pub(crate) tool: Tool,
    /// What it cost.
    pub(crate) m: Measured,
    /// CPU seconds the emulator spent meanwhile.
    pub(crate) server_cpu: Option<f64>,
}

impl Row {
    fn same_group(&self, other: &Row) -> bool {
        self.op == other.op && self.dataset == other.dataset
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Groups rows by (op, dataset), keeping first-seen order.
fn groups(rows: &[Row]) -> Vec<Vec<&Row>> {
    let mut out: Vec<Vec<&Row>> = Vec::new();
    for row in rows {
        match out.iter_mut().find(|g| g[0].same_group(row)) {
            Some(g) => g.push(row),
            None => out.push(vec![row]),
        }
    }
    out
}

fn find(group: &[&Row], tool: Tool) -> Option<Row> {
    group.iter().find(|r| r.tool == tool).map(|r| (*r).clone())
}

/// One row per (op, dataset, tool), in first-seen order: of repeated runs
/// the one with the median wall time (the lower middle of an even count),
/// so CPU and memory come from the same run.
pub(crate) fn median_rows(rows: &[Row]) -> Vec<Row> {
    let mut keys: Vec<(Op, &str, Tool)> = Vec::new();
    for r in rows {
        let key = (r.op, r.dataset.as_str(), r.tool);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .filter_map(|(op, dataset, tool)| {
            let mut runs: Vec<&Row> = rows
                .iter()
                .filter(|r| r.op == op && r.dataset == dataset && r.tool == tool)
                .collect();
            runs.sort_by(|a, b| a.m.wall.total_cmp(&b.m.wall));
            runs.get((runs.len() - 1) / 2).map(|r| (*r).clone())
        })
        .collect()
}

/// The side-by-side table: one line per run, ratios against raw and rf.
pub(crate) fn render_table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| Op | Dataset | Tool | Wall s | CPU s | Peak RSS MiB | files/s | MB/s | Server CPU s | Wall ×raw | Peer/rf wall | Peer/rf CPU |\n");
    s.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for group in groups(rows) {
        let raw = find(&group, Tool::Raw);
        let rf = find(&group, Tool::Rf);
        for row in group {
            let wall = row.m.wall;
            let vs_raw = raw.as_ref().map(|r| wall / r.m.wall);
            let (peer_wall, peer_cpu) = match (&rf, row.tool) {
                (Some(rf), Tool::Peer) => (Some(wall / rf.m.wall), ratio(row.m.cpu, rf.m.cpu)),
                _ => (None, None),
            };
            let dash = |v: Option<f64>| v.map_or_else(|| "".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} | {} | {} | {:.0} | {:.1} | {} | {} | {} | {} |",
                row.op.label(),
                row.dataset,
                row.tool.label(),
                wall,
                opt(row.m.cpu, 3),
                opt(row.m.rss_mib(), 1),
                row.files as f64 / wall,
                row.bytes as f64 / 1e6 / wall,
                opt(row.server_cpu, 2),
                dash(vs_raw),
                dash(peer_wall),
                dash(peer_cpu),
            );
        }
    }
    s
}

/// The goals of issue 7.
pub(crate) const MAX_RF_OVER_RAW: f64 = 1.5;
/// rf must be at least this many times faster than the official client.
pub(crate) const MIN_PEER_OVER_RF: f64 = 5.0;
/// rf may use at most this fraction of the official client's CPU time.
pub(crate) const MAX_CPU_FRACTION: f64 = 0.2;
/// rf's peak RSS limit in MiB.
pub(crate) const MAX_RSS_MIB: f64 = 64.0;

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// One line per goal and group: the figure, the goal, met or missed.
pub(crate) fn render_goals(rows: &[Row]) -> String {
    let mut s = String::new();
    for group in groups(rows) {
        let Some(rf) = find(&group, Tool::Rf) else {
            continue;
        };
        let name = format!("{} {}", rf.op.label(), rf.dataset);
        if let Some(raw) = find(&group, Tool::Raw) {
            let r = rf.m.wall / raw.m.wall;
            let _ = writeln!(
                s,
                "- {name}: rf/raw wall {r:.2}× (goal ≤ {MAX_RF_OVER_RAW}×): {}",
                verdict(r <= MAX_RF_OVER_RAW)
            );
        }
        if let Some(peer) = find(&group, Tool::Peer) {
            let r = peer.m.wall / rf.m.wall;
            let _ = writeln!(
                s,
                "- {name}: peer/rf wall {r:.1}× (goal ≥ {MIN_PEER_OVER_RF}×): {}",
                verdict(r >= MIN_PEER_OVER_RF)
            );
            if let Some(c) = ratio(rf.m.cpu, peer.m.cpu) {
                let _ = writeln!(
                    s,
                    "- {name}: rf CPU = {c:.3} of peer CPU (goal ≤ {MAX_CPU_FRACTION}): {}",
                    verdict(c <= MAX_CPU_FRACTION)
                );
            }
        }
        if let Some(rss) = rf.m.rss_mib() {
            let _ = writeln!(
                s,
                "- {name}: rf peak RSS {rss:.1} MiB (goal < {MAX_RSS_MIB} MiB): {}",
                verdict(rss < MAX_RSS_MIB)
            );
        }
    }
    s
}

/// `rf --help` start-up: median wall and peak RSS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Startup {
    /// Median wall time of `rf --help` in milliseconds.
    pub(crate) median_ms: f64,
    /// Its peak RSS in MiB.
    pub(crate) rss_mib: Option<f64>,
    /// Runs measured.
    pub(crate) runs: usize,
}

/// Goal lines for `rf --help`.
pub(crate) fn render_startup(st: &Startup) -> String {
    let mut s = format!(
        "- `rf --help`: {:.1} ms median of {} runs (goal < 20 ms): {}\n",
        st.median_ms,
        st.runs,
        verdict(st.median_ms < 20.0)
    );
    if let Some(rss) = st.rss_mib {
        let _ = writeln!(
            s,
            "- `rf --help`: {rss:.1} MiB peak RSS (goal < 10 MiB): {}",
            verdict(rss < 10.0)
        );
    }
    s
}

/// One scaling point: rf (and raw) ingest at one dataset size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalePoint {
    /// Files in the dataset.
    pub(crate) files: u64,
    /// Bytes in the dataset.
    pub(crate) bytes: u64,
    /// rf's run.
    pub(crate) rf: Measured,
    /// The raw baseline's run, if measured.
    pub(crate) raw: Option<Measured>,
    /// rf's export of the same files, if measured.
    pub(crate) export_rf: Option<Measured>,
    /// The raw export, if measured.
    pub(crate) export_raw: Option<Measured>,
}

/// The scaling table and the linearity verdict (time per file and peak
/// RSS of the largest run against the second smallest; the smallest is
/// dominated by start-up).
pub(crate) fn render_scaling(points: &[ScalePoint]) -> String {
    let mut s = String::new();
    s.push_str("| Files | MB | Ingest: rf wall s | rf µs/file | rf CPU s | rf peak RSS MiB | raw wall s | rf/raw | Export: rf wall s | rf µs/file | rf peak RSS MiB | raw wall s | rf/raw |\n");
    s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let na = || "n/a".to_string();
    for p in points {
        let per_file = |m: &Measured| format!("{:.1}", m.wall / p.files as f64 * 1e6);
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.files,
            p.bytes as f64 / 1e6,
            p.rf.wall,
            per_file(&p.rf),
            opt(p.rf.cpu, 3),
            opt(p.rf.rss_mib(), 1),
            p.raw.map_or_else(na, |r| format!("{:.3}", r.wall)),
            p.raw
                .map_or_else(na, |r| format!("{:.2}", p.rf.wall / r.wall)),
            p.export_rf.map_or_else(na, |m| format!("{:.3}", m.wall)),
            p.export_rf.as_ref().map_or_else(na, per_file),
            opt(p.export_rf.and_then(|m| m.rss_mib()), 1),
            p.export_raw.map_or_else(na, |r| format!("{:.3}", r.wall)),
            p.export_rf
                .zip(p.export_raw)
                .map_or_else(na, |(a, b)| format!("{:.2}", a.wall / b.wall)),
        );
    }
    if let Some(v) = scaling_verdict(points) {
        s.push('\n');
        s.push_str(&v);
        s.push('\n');
    }
    s
}

/// Linearity: time per file may not grow by more than half and peak RSS
/// may not double from the second point to the last (ingest, and export
/// where measured).
pub(crate) fn scaling_verdict(points: &[ScalePoint]) -> Option<String> {
    if points.len() < 3 {
        return None;
    }
    let (a, b) = (&points[1], &points[points.len() - 1]);
    let mut s = one_verdict("Ingest", a.files, b.files, &a.rf, &b.rf);
    if let (Some(ea), Some(eb)) = (&a.export_rf, &b.export_rf) {
        s.push(' ');
        s.push_str(&one_verdict("Export", a.files, b.files, ea, eb));
    }
    Some(s)
}

fn one_verdict(what: &str, na: u64, nb: u64, a: &Measured, b: &Measured) -> String {
    let growth = (b.wall / nb as f64) / (a.wall / na as f64);
    let mut s = format!(
        "{what}: time per file from {na} to {nb} files ×{growth:.2} (linear if ≤ 1.5): {}.",
        verdict(growth <= 1.5)
    );
    if let (Some(ra), Some(rb)) = (a.rss_mib(), b.rss_mib()) {
        let _ = write!(
            s,
            " Peak RSS {ra:.1} → {rb:.1} MiB (flat if < ×2 and < {MAX_RSS_MIB} MiB): {}.",
            verdict(rb < 2.0 * ra && rb < MAX_RSS_MIB)
        );
    }
    s
}

/// Replaces the text between `<!-- {name}:begin -->` and `<!-- {name}:end -->`
/// in `doc` with `body`; appends the marked section when it is missing.
pub(crate) fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let body = body.trim_end_matches('\n');
    let section = format!("{begin}\n{body}\n{end}");
    if let Some(b) = doc.find(&begin) {
        if let Some(e) = doc[b..].find(&end) {
            let after = b + e + end.len();
            return format!("{}{section}{}", &doc[..b], &doc[after..]);
        }
    }
    let mut out = doc.trim_end_matches('\n').to_string();
    out.push_str("\n\n");
    out.push_str(&section);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(wall: f64, cpu: f64, rss_kib: u64) -> Measured {
        Measured {
            wall,
            cpu: Some(cpu),
            max_rss_kib: Some(rss_kib),
        }
    }

    fn row(op: Op, tool: Tool, wall: f64, cpu: f64) -> Row {
        Row {
            op,
            dataset: "20,000 × 4 KB JPEG".into(),
            files: 20_000,
            bytes: 80_000_000,
            tool,
            m: m(wall, cpu, 30 * 1024),
            server_cpu: Some(0.5),
        }
    }

    #[test]
    fn table_has_one_line_per_run_and_ratios() {
        let rows = vec![
            row(Op::Ingest, Tool::Raw, 0.2, 0.1),
            row(Op::Ingest, Tool::Rf, 0.25, 0.2),
            row(Op::Ingest, Tool::Peer, 4.0, 6.0),
        ];
        let t = render_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[2].starts_with("| ingest | 20,000 × 4 KB JPEG | raw (tar/curl) | 0.200 |"));
        // rf: 1.25× raw; 80,000 files/s; 320 MB/s.
        assert!(lines[3].contains("| 80000 | 320.0 |"), "{}", lines[3]);
        assert!(lines[3].contains("| 1.25 |"), "{}", lines[3]);
        // peer: 16× rf wall, 30× rf CPU.
        assert!(
            lines[4].ends_with("| 20.00 | 16.00 | 30.00 |"),
            "{}",
            lines[4]
        );
    }

    #[test]
    fn repeated_runs_give_their_median() {
        let runs = vec![
            row(Op::Ingest, Tool::Raw, 0.3, 0.1),
            row(Op::Ingest, Tool::Rf, 0.9, 0.9),
            row(Op::Ingest, Tool::Raw, 0.2, 0.2),
            row(Op::Ingest, Tool::Rf, 0.4, 0.4),
            row(Op::Ingest, Tool::Raw, 0.25, 0.3),
            row(Op::Ingest, Tool::Rf, 0.5, 0.5),
        ];
        let m = median_rows(&runs);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].tool, m[0].m.wall, m[0].m.cpu),
            (Tool::Raw, 0.25, Some(0.3))
        );
        assert_eq!((m[1].tool, m[1].m.wall), (Tool::Rf, 0.5));
        // Even counts take the lower middle; single runs stay as they are.
        assert_eq!(median_rows(&runs[..4])[1].m.wall, 0.4);
        assert_eq!(median_rows(&runs[..2]), runs[..2].to_vec());
    }

    #[test]
    fn goals_name_what_is_missed() {
        let rows = vec![
            row(Op::Ingest, Tool::Raw, 0.2, 0.1),
            row(Op::Ingest, Tool::Rf, 0.4, 0.2),
            row(Op::Ingest, Tool::Peer, 4.0, 6.0),
        ];
        let g = render_goals(&rows);
        assert!(
            g.contains("rf/raw wall 2.00× (goal ≤ 1.5×): **missed**"),
            "{g}"
        );
        assert!(g.contains("peer/rf wall 10.0× (goal ≥ 5×): met"), "{g}");
        assert!(
            g.contains("rf CPU = 0.033 of peer CPU (goal ≤ 0.2): met"),
            "{g}"
        );
        assert!(
            g.contains("rf peak RSS 30.0 MiB (goal < 64 MiB): met"),
            "{g}"
        );
        // Groups without an rf run give no goal lines.
        assert_eq!(render_goals(&rows[..1]), "");
    }

    #[test]
    fn missing_cpu_shows_na() {
        let mut r = row(Op::Export, Tool::Rf, 1.0, 0.0);
        r.m.cpu = None;
        r.m.max_rss_kib = None;
        let t = render_table(&[r]);
        assert!(t.contains("| n/a | n/a |"), "{t}");
    }

    #[test]
    fn startup_lines() {
        let s = render_startup(&Startup {
            median_ms: 3.04,
            rss_mib: Some(12.0),
            runs: 20,
        });
        assert!(
            s.contains("3.0 ms median of 20 runs (goal < 20 ms): met"),
            "{s}"
        );
        assert!(
            s.contains("12.0 MiB peak RSS (goal < 10 MiB): **missed**"),
            "{s}"
        );
    }

    #[test]
    fn scaling_checks_time_per_file_and_memory() {
        let p = |files: u64, wall: f64, rss: u64| ScalePoint {
            files,
            bytes: files * 4096,
            rf: m(wall, wall, rss * 1024),
            raw: None,
            export_rf: None,
            export_raw: None,
        };
        let linear = [p(2000, 0.1, 20), p(20_000, 0.5, 25), p(200_000, 5.5, 30)];
        let v = scaling_verdict(&linear).unwrap();
        assert!(v.starts_with("Ingest: time per file"), "{v}");
        assert!(v.contains("×1.10 (linear if ≤ 1.5): met"), "{v}");
        assert!(v.contains("Peak RSS 25.0 → 30.0 MiB"), "{v}");
        assert!(v.ends_with(": met."), "{v}");
        let quadratic = [p(2000, 0.1, 20), p(20_000, 0.5, 25), p(200_000, 50.0, 80)];
        let v = scaling_verdict(&quadratic).unwrap();
        assert_eq!(v.matches("**missed**").count(), 2, "{v}");
        assert_eq!(scaling_verdict(&linear[..2]), None);
        let t = render_scaling(&linear);
        assert!(t.contains("| 200000 | 819 | 5.500 | 27.5 |"), "{t}");
        assert!(t.contains("| n/a | n/a | n/a | n/a | n/a |"), "{t}");
        // With exports: their own verdict, and rf/raw of the export.
        let mut with_export = linear.to_vec();
        for (pt, wall) in with_export.iter_mut().zip([0.2, 2.0, 40.0]) {
            pt.export_rf = Some(m(wall, wall, 20 * 1024));
            pt.export_raw = Some(m(wall / 2.0, 1.0, 10 * 1024));
        }
        let v = scaling_verdict(&with_export).unwrap();
        assert!(
            v.contains("Export: time per file from 20000 to 200000 files ×2.00 (linear if ≤ 1.5): **missed**"),
            "{v}"
        );
        let t = render_scaling(&with_export);
        assert!(
            t.contains("| 40.000 | 200.0 | 20.0 | 20.000 | 2.00 |"),
            "{t}"
        );
    }

    #[test]
    fn section_replacement() {
        let doc = "# B\n\nintro\n\n<!-- x:begin -->\nold\n<!-- x:end -->\n\nafter\n";
        let out = replace_section(doc, "x", "new\n");
        assert_eq!(
            out,
            "# B\n\nintro\n\n<!-- x:begin -->\nnew\n<!-- x:end -->\n\nafter\n"
        );
        // Idempotent, and other sections untouched.
        assert_eq!(replace_section(&out, "x", "new"), out);
        let appended = replace_section("# B\n", "y", "body");
        assert_eq!(appended, "# B\n\n<!-- y:begin -->\nbody\n<!-- y:end -->\n");
        // A begin marker without an end appends a fresh section.
        let broken = replace_section("<!-- z:begin -->\n", "z", "b");
        assert!(broken.ends_with("<!-- z:begin -->\nb\n<!-- z:end -->\n"));
    }
}
