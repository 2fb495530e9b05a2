//! The report as one table, for people: a figure per row, the volume stage's first, then a
//! section per other kind.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{Idle, KindCreation, ProcessFigures, Report};

impl Report {
    /// One table, for people: a figure per row; a section per kind after the volumes'.
    pub fn table(&self) -> String {
        let c = &self.controller;
        let cr = &self.creation;
        let limits = if c.default_limits {
            "default limits".to_owned()
        } else {
            "RAISED limits, report apart from the default-limit run".to_owned()
        };
        let mut rows: Vec<Row> = vec![
            row("objects", format!("{} gp3 EbsVolumes", self.n)),
            row("controller", format!("{} build ({})", c.build, c.binary)),
            row("commit", self.commit.clone()),
            row(
                "machine",
                format!(
                    "{} CPUs, {:.1} GiB",
                    self.machine.cpus, self.machine.memory_gib
                ),
            ),
            row(
                "limits",
                format!(
                    "--aws-rate-fraction {} --aws-rate-scale {} ({limits}); CreateVolume bucket {} + {}/s",
                    c.aws_rate_fraction,
                    c.aws_rate_scale,
                    c.create_volume_bucket.burst,
                    c.create_volume_bucket.refill_per_second
                ),
            ),
            row("resync", format!("{} s", c.resync_seconds)),
        ];
        rows.extend(ready_rows(&cr.common, self.n));
        rows.extend([
            row(
                "rate floor (CreateVolume bucket)",
                secs(cr.rate_floor_seconds),
            ),
            row(
                "ratio to the floor",
                opt(cr.ratio_to_floor, |r| format!("{r:.2}x")),
            ),
            row(
                "last CreateVolume at",
                opt(cr.last_create_volume_seconds, secs),
            ),
            row(
                "Ready after CreateVolume p50/p90/max",
                opt(cr.ready_after_create_volume_seconds, |p| {
                    format!("{:.1} / {:.1} / {:.1} s", p.p50, p.p90, p.max)
                }),
            ),
            row(
                "Ready after available p50/p90/max",
                opt(cr.ready_after_available_seconds, |p| {
                    format!(
                        "{:.1} / {:.1} / {:.1} s (AWS creating for {})",
                        p.p50,
                        p.p90,
                        p.max,
                        opt(cr.aws_creation_seconds, secs)
                    )
                }),
            ),
        ]);
        rows.extend(creation_rows(&cr.common));
        rows.extend(idle_rows(&self.idle));
        rows.extend(self.processes.iter().flat_map(process_rows));
        for kind in [&self.amis, &self.migrations].into_iter().flatten() {
            rows.push(Row::Heading(format!(
                "{} {}: {} (a bed of its own{}; set up in {})",
                kind.objects,
                kind.kind,
                kind.setup,
                if kind.controller_args.is_empty() {
                    String::new()
                } else {
                    format!(", controller {}", kind.controller_args.join(" "))
                },
                secs(kind.setup_seconds)
            )));
            rows.extend(ready_rows(&kind.creation, kind.objects));
            rows.extend(creation_rows(&kind.creation));
            rows.push(row(
                "idle: resyncs counted by",
                kind.resyncs_counted_by.clone(),
            ));
            rows.extend(idle_rows(&kind.idle));
            // The controller only: the other processes are the emulator's and the shared
            // control plane's (in the JSON).
            rows.extend(kind.processes.iter().take(1).flat_map(process_rows));
        }
        let width = rows
            .iter()
            .filter_map(|r| match r {
                Row::Figure(k, _) => Some(k.len()),
                Row::Heading(_) => None,
            })
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for r in rows {
            match r {
                Row::Figure(key, value) => {
                    let _ = writeln!(out, "{key:<width$}  {value}");
                }
                Row::Heading(text) => {
                    let _ = writeln!(out, "\n{text}");
                }
            }
        }
        out
    }
}

/// A line of the table.
enum Row {
    /// A figure: its name and its value.
    Figure(String, String),
    /// The start of a kind's section, after a blank line.
    Heading(String),
}

fn row(key: &str, value: String) -> Row {
    Row::Figure(key.to_owned(), value)
}

/// How long until the objects were accepted, and until all were Ready.
fn ready_rows(c: &KindCreation, objects: usize) -> [Row; 2] {
    [
        row(
            "objects accepted by the apiserver",
            secs(c.objects_created_seconds),
        ),
        row(
            "time to all Ready",
            format!(
                "{} ({} of {objects} Ready)",
                secs(c.all_ready_seconds),
                c.ready
            ),
        ),
    ]
}

/// The creation window's calls and writes.
fn creation_rows(c: &KindCreation) -> [Row; 4] {
    [
        row(
            "creation: AWS calls",
            format!(
                "{} (window {})",
                calls(&c.aws_calls),
                secs(c.window_seconds)
            ),
        ),
        row(
            "creation: reads / mutating calls",
            format!("{} / {}", c.reads, c.mutating_calls),
        ),
        row(
            "creation: reads naming ids / other reads",
            format!(
                "{} / {} (on-demand reads of waiting objects / sweeps and the rest)",
                c.reads_naming_ids,
                c.reads - c.reads_naming_ids
            ),
        ),
        row(
            "creation: status writes",
            format!(
                "{} ({:.2} per object)",
                c.status_writes, c.status_writes_per_object
            ),
        ),
    ]
}

/// The idle window's figures.
fn idle_rows(idle: &Idle) -> [Row; 4] {
    [
        row(
            "idle: window, resyncs seen",
            format!("{}, {}", secs(idle.window_seconds), idle.resyncs),
        ),
        row(
            "idle: AWS calls per resync",
            opt(idle.aws_calls_per_resync.as_ref(), |m| {
                if m.is_empty() {
                    "none".to_owned()
                } else {
                    m.iter()
                        .map(|(a, n)| format!("{a} {n:.1}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            }),
        ),
        row(
            "idle: reads per 1,000 objects per resync",
            opt(idle.reads_per_1000_objects_per_resync, |r| {
                format!("{r:.2}")
            }),
        ),
        row(
            "idle: mutating calls / status writes",
            format!("{} / {}", idle.mutating_calls, idle.status_writes),
        ),
    ]
}

fn process_rows(p: &ProcessFigures) -> [Row; 2] {
    [
        Row::Figure(
            format!("{}: RSS empty / idle / peak", p.name),
            format!(
                "{:.1} / {:.1} / {:.1} MiB",
                p.rss_empty_mib, p.rss_idle_mib, p.rss_peak_mib
            ),
        ),
        Row::Figure(
            format!("{}: CPU creation / idle", p.name),
            format!(
                "{:.1} / {:.1} s",
                p.cpu_seconds_creation, p.cpu_seconds_idle
            ),
        ),
    ]
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

fn opt<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "n/a".to_owned(), show)
}

fn calls(calls: &BTreeMap<String, u64>) -> String {
    if calls.is_empty() {
        return "none".to_owned();
    }
    calls
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
