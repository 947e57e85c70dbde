//! How a [`Report`] is shown: a text table with the ratios rumpnet/Linux,
//! rumpnet/smoltcp and rumpnet/limit, the floors judged on the same run, the
//! JSON of every figure, and an SVG bar chart.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::{json, Value};

use crate::suite::{Report, Row, Spread, Workload, LINUX_LO_DEFAULT_MTU};
use crate::systems::{metric_name, Placement, System, Transport};

/// The row rumpnet's `row` is compared with on `system`: same workload, connections and
/// message; same placement (smoltcp and memcpy have same-core only, which is then used
/// for rumpnet same-core alone); the matching MTU (ours, or large with large).
pub fn comparator<'a>(report: &'a Report, row: &Row, system: System) -> Option<&'a Row> {
    let c = &row.case;
    let large = |m: Option<usize>| m.is_some_and(|m| m > 9000);
    report.rows.iter().find(|r| {
        let o = &r.case;
        o.system == system
            && o.workload == c.workload
            && match system {
                // The ceilings were measured once per workload: memcpy (per byte,
                // any connection count), ping-pong (one frame in flight: one
                // connection).
                System::Limit => {
                    (o.placement == c.placement || o.mtu.is_none())
                        && (c.workload == Workload::Stream || o.conns == c.conns)
                }
                _ => o.conns == c.conns && o.msg == c.msg && o.placement == c.placement,
            }
            && match system {
                System::Linux => o.transport == Transport::Loopback && large(o.mtu) == large(c.mtu),
                System::Smoltcp => large(o.mtu) == large(c.mtu),
                _ => true,
            }
    })
}

fn ratio(report: &Report, row: &Row, system: System) -> Option<f64> {
    let mine = row.spread()?.median;
    let theirs = comparator(report, row, system)?.spread()?.median;
    (theirs > 0.0).then(|| mine / theirs)
}

/// Figures with three significant digits, thousands separated.
pub fn human(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_owned();
    }
    let a = x.abs();
    if a >= 1000.0 {
        let s = format!("{:.0}", x);
        let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn mtu_text(m: Option<usize>) -> String {
    m.map_or("-".to_owned(), |m| m.to_string())
}

/// The secondary figures worth a column, per workload.
fn detail(row: &Row) -> String {
    let get = |n: &str| row.extra(n).map(|s| s.median);
    match row.case.workload {
        Workload::Stream => get("cpu_cores").map_or(String::new(), |c| format!("cpu {c:.2} cores")),
        Workload::Rr | Workload::Crr => match (
            get("latency_p50_us"),
            get("latency_p99_us"),
            get("latency_p999_us"),
        ) {
            (Some(a), Some(b), Some(c)) => format!(
                "p50/p99/p99.9 {} / {} / {} µs",
                human(a),
                human(b),
                human(c)
            ),
            _ => String::new(),
        },
        Workload::Conns => match (get("open_s"), get("open_conn_per_s")) {
            (Some(s), Some(r)) => format!("open {s:.2} s ({}/s), all answered", human(r)),
            _ => String::new(),
        },
    }
}

/// The text table and everything printed around it.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(out, "rumpnet bench: {} build, {}", m.build, m.date);
    let _ = writeln!(
        out,
        "machine: {} ({} cores), {:.1} GiB, Linux {}, load {:.2} -> {:.2}",
        m.cpu,
        m.cores,
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        m.kernel,
        m.load_before,
        m.load_after
    );
    let o = &report.options;
    let _ = writeln!(
        out,
        "runs: {} rounds of {:.2} s each (+10% warm-up); MTU {} (large: rumpnet/smoltcp {}, Linux lo {}); \
         placement same-core = one thread (rumpnet, smoltcp) or both threads on core 0 (Linux), cross-core = cores 0 and 1",
        o.repeat,
        o.duration.as_secs_f64(),
        o.mtu,
        o.large_mtu,
        LINUX_LO_DEFAULT_MTU
    );
    let _ = writeln!(out);
    let headers = [
        "workload",
        "conns",
        "mtu",
        "system",
        "placement",
        "transport",
        "metric",
        "median",
        "min",
        "max",
        "x linux",
        "x smoltcp",
        "x limit",
        "detail",
    ];
    let mut lines: Vec<Vec<String>> = Vec::new();
    for row in &report.rows {
        let c = &row.case;
        let s = row.spread();
        let fmt = |f: fn(&Spread) -> f64| s.as_ref().map_or("-".to_owned(), |s| human(f(s)));
        let r = |sys| {
            if c.system == System::Rumpnet {
                ratio(report, row, sys).map_or(String::new(), |x| format!("{x:.2}"))
            } else {
                String::new()
            }
        };
        let mut detail = detail(row);
        if let Some(link) = c.link_detail() {
            detail = if detail.is_empty() {
                link.to_owned()
            } else {
                format!("{link}; {detail}")
            };
        }
        if let Some(e) = &row.error {
            detail = format!(
                "FAILED ({} of {} rounds ok): {e}",
                row.samples.len(),
                o.repeat
            );
        }
        lines.push(vec![
            c.workload.name().to_owned(),
            c.conns.to_string(),
            mtu_text(c.mtu),
            c.system.name().to_owned(),
            c.placement.name().to_owned(),
            c.transport.name().to_owned(),
            metric_name(c.workload.name()).to_owned(),
            fmt(|s| s.median),
            fmt(|s| s.min),
            fmt(|s| s.max),
            r(System::Linux),
            r(System::Smoltcp),
            r(System::Limit),
            detail,
        ]);
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric = |i: usize| (7..13).contains(&i) || i == 1;
    let put = |cells: &[String], out: &mut String| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if numeric(i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < cells.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    put(&headers.map(str::to_owned), &mut out);
    let mut last = None;
    for l in &lines {
        if last.is_some() && last != Some(&l[0]) {
            let _ = writeln!(out);
        }
        last = Some(&l[0]);
        put(l, &mut out);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "conns: bytes_per_conn is lower-better (both ends of each connection are in this process for rumpnet; Linux counts kernel slab + process growth)");
    let _ = writeln!(out);
    let _ = writeln!(out, "floors (medians of this run):");
    for f in floors(report) {
        let _ = writeln!(out, "  {} {}: {}", f.verdict(), f.name, f.detail);
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out);
        for n in &report.notes {
            let _ = writeln!(out, "note: {n}");
        }
    }
    let _ = writeln!(out, "\nran in {:.0} s", report.elapsed.as_secs_f64());
    out
}

/// One of the floors, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    pub name: &'static str,
    /// `None`: not measured in this run.
    pub met: Option<bool>,
    pub detail: String,
}

impl Floor {
    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "MET   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        }
    }
}

fn find(
    report: &Report,
    w: Workload,
    conns: usize,
    placement: Placement,
    mtu: usize,
) -> Option<&Row> {
    report.rows.iter().find(|r| {
        let c = &r.case;
        c.system == System::Rumpnet
            && c.workload == w
            && (w == Workload::Conns || c.conns == conns)
            && c.placement == placement
            && c.mtu == Some(mtu)
    })
}

/// The floors, on this run's medians.
pub fn floors(report: &Report) -> Vec<Floor> {
    let mtu = report.options.mtu;
    let mut out = Vec::new();
    let mut ratio_floor = |name, w, conns, min_linux: f64, min_smol: Option<f64>| {
        let row = find(report, w, conns, Placement::SameCore, mtu);
        let linux = row.and_then(|r| ratio(report, r, System::Linux));
        let smol = row.and_then(|r| ratio(report, r, System::Smoltcp));
        let mut parts = vec![format!(
            "rumpnet/Linux {} (floor {min_linux})",
            linux.map_or("n/a".to_owned(), |x| format!("{x:.2}"))
        )];
        let mut met = linux.map(|x| x >= min_linux);
        if let Some(min_smol) = min_smol {
            parts.push(format!(
                "rumpnet/smoltcp {} (floor {min_smol})",
                smol.map_or("n/a".to_owned(), |x| format!("{x:.2}"))
            ));
            met = match (met, smol) {
                (Some(a), Some(s)) => Some(a && s >= min_smol),
                _ => None,
            };
        }
        out.push(Floor {
            name,
            met,
            detail: parts.join(", "),
        });
    };
    ratio_floor(
        "rr, 1 connection, same core",
        Workload::Rr,
        1,
        10.0,
        Some(2.0),
    );
    ratio_floor("crr, same core", Workload::Crr, 1, 10.0, None);
    ratio_floor(
        "stream, 1 connection, MTU 1500, same core",
        Workload::Stream,
        1,
        1.0,
        Some(1.5),
    );
    let conns = find(report, Workload::Conns, 0, Placement::SameCore, mtu);
    out.push(match conns.and_then(|r| r.spread().map(|s| (r, s))) {
        Some((r, s)) => {
            let per_end = s.median / 2.0;
            Floor {
                name: "conns: <= 4 KB per connection beyond its socket buffers",
                met: (r.case.conns >= 1_000_000).then_some(s.median <= 4096.0),
                detail: format!(
                    "{} connections open and answering, {} bytes per connection ({} per end){}",
                    human(r.case.conns as f64),
                    human(s.median),
                    human(per_end),
                    if r.case.conns < 1_000_000 {
                        "; the floor is judged at 1,000,000 (--conns 1000000)"
                    } else {
                        ""
                    }
                ),
            }
        }
        None => Floor {
            name: "conns: <= 4 KB per connection beyond its socket buffers",
            met: None,
            detail: "not run".to_owned(),
        },
    });
    out
}

/// Every figure as JSON: `{"machine": {...}, "results": [...], "floors": [...]}`.
pub fn json(report: &Report) -> Value {
    let results: Vec<Value> = report
        .rows
        .iter()
        .filter_map(|row| {
            let c = &row.case;
            let s = row.spread()?;
            let extra: serde_json::Map<String, Value> = row
                .extra_names()
                .into_iter()
                .filter_map(|n| {
                    row.extra(n)
                        .map(|e| (n.to_owned(), json!({"min": e.min, "median": e.median, "max": e.max})))
                })
                .collect();
            Some(json!({
                "workload": c.workload.name(),
                "system": c.system.name(),
                "placement": c.placement.name(),
                "transport": c.transport.name(),
                "link": c.link_detail(),
                "mtu": c.mtu,
                "conns": c.conns,
                "msg_bytes": c.msg,
                "metric": metric_name(c.workload.name()),
                "min": s.min,
                "median": s.median,
                "max": s.max,
                "samples": row.samples.iter().map(|s| s.value).collect::<Vec<_>>(),
                "vs_linux": if c.system == System::Rumpnet { ratio(report, row, System::Linux) } else { None },
                "vs_smoltcp": if c.system == System::Rumpnet { ratio(report, row, System::Smoltcp) } else { None },
                "vs_limit": if c.system == System::Rumpnet { ratio(report, row, System::Limit) } else { None },
                "extra": extra,
                "error": row.error,
            }))
        })
        .collect();
    let failed: Vec<Value> = report
        .rows
        .iter()
        .filter(|r| r.samples.is_empty())
        .map(|r| json!({"case": r.case.label(), "error": r.error}))
        .collect();
    let floors: Vec<Value> = floors(report)
        .into_iter()
        .map(|f| json!({"floor": f.name, "met": f.met, "detail": f.detail}))
        .collect();
    let o = &report.options;
    json!({
        "machine": report.machine,
        "options": {
            "duration_s": o.duration.as_secs_f64(),
            "repeat": o.repeat,
            "mtu": o.mtu,
            "large_mtu": o.large_mtu,
            "stream_msg": o.stream_msg,
            "rr_msg": o.rr_msg,
        },
        "results": results,
        "failed": failed,
        "floors": floors,
        "notes": report.notes,
        "elapsed_s": report.elapsed.as_secs_f64(),
    })
}

fn color(system: System) -> RGBColor {
    match system {
        System::Rumpnet => RGBColor(0xd9, 0x5f, 0x02),
        System::Linux => RGBColor(0x1b, 0x9e, 0x77),
        System::Smoltcp => RGBColor(0x75, 0x70, 0xb3),
        System::Limit => RGBColor(0x99, 0x99, 0x99),
    }
}

/// Draw the comparison as SVG: one panel per workload and connection count, one
/// horizontal bar per system/placement/transport/MTU (median, with a min-max whisker),
/// each panel scaled to its own largest figure. The machine's ceiling is named in the
/// panel's title rather than drawn: memcpy is ten times any stack and would flatten
/// every other bar.
pub fn plot(report: &Report, path: &Path) -> Result<(), String> {
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in report.rows.iter().filter(|r| r.spread().is_some()) {
        let c = &row.case;
        let key = format!(
            "{} / {} conn{} ({}{})",
            c.workload.name(),
            if c.conns >= 1000 {
                human(c.conns as f64)
            } else {
                c.conns.to_string()
            },
            if c.conns == 1 { "" } else { "s" },
            metric_name(c.workload.name()),
            if c.workload == Workload::Conns {
                ", lower is better"
            } else {
                ""
            }
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    if groups.is_empty() {
        return Err("nothing to plot".to_owned());
    }
    let cols = 2usize;
    let grid_rows = groups.len().div_ceil(cols);
    let most_bars = groups.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    let panel_h = 70 + 26 * most_bars as u32;
    let root = SVGBackend::new(path, (1400, panel_h * grid_rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((grid_rows, cols));
    for ((title, all), area) in groups.iter().zip(panels.iter()) {
        let limit = all
            .iter()
            .find(|r| r.case.system == System::Limit)
            .and_then(|r| r.spread());
        let title = match limit {
            Some(l) => format!("{title}; limit {}", human(l.median)),
            None => title.clone(),
        };
        let bars: Vec<&Row> = all
            .iter()
            .copied()
            .filter(|r| r.case.system != System::Limit)
            .collect();
        let labels: Vec<String> = bars
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}{}",
                    r.case.system.name(),
                    r.case.placement.name(),
                    r.case.transport.name(),
                    r.case.mtu.map_or(String::new(), |m| format!(" {m}"))
                )
            })
            .collect();
        let max = bars
            .iter()
            .filter_map(|r| r.spread().map(|s| s.max))
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(&title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(210)
            .build_cartesian_2d(0f64..max * 1.05, (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(6)
            .x_label_formatter(&|v| human(*v))
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, row) in bars.iter().enumerate() {
            let Some(s) = row.spread() else { continue };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (s.median, SegmentValue::Exact(i + 1)),
                ],
                color(row.case.system).filled(),
            );
            bar.set_margin(3, 3, 0, 0);
            chart
                .draw_series(std::iter::once(bar))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![
                        (s.min, SegmentValue::CenterOf(i)),
                        (s.max, SegmentValue::CenterOf(i)),
                    ],
                    BLACK.stroke_width(2),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(human(1234567.0), "1,234,567");
        assert_eq!(human(-1234.0), "-1,234");
        assert_eq!(human(999.4), "999");
        assert_eq!(human(12.345), "12.3");
        assert_eq!(human(1.2345), "1.23");
        assert_eq!(human(0.12345), "0.123");
    }
}
