//! The run's results as Markdown: what BENCHMARKS.md holds and what the runner prints. Every
//! comparison is a difference or ratio within this one run.

use std::fmt::Write as _;

use crate::{
    latency::LatencySeries,
    load::{self, LoadResult},
    stats::Samples,
    streams::StreamMemory,
};

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Results {
    pub machine: String,
    pub command: String,
    pub latency: Vec<LatencySeries>,
    /// Per target, every load run of the sweep.
    pub load: Vec<(String, Vec<LoadResult>)>,
    pub p99_bound_ms: f64,
    /// Per target, memory with N streams open.
    pub memory: Vec<(String, Vec<StreamMemory>)>,
    /// Peak resident memory of the agentnet process over the whole run, in KiB.
    pub agentnet_peak_rss_kib: Option<u64>,
    pub notes: Vec<String>,
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "–".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

impl Results {
    fn series(&self, name: &str) -> Option<&LatencySeries> {
        self.latency.iter().find(|s| s.target == name)
    }

    fn loads(&self, name: &str) -> Option<&[LoadResult]> {
        self.load.iter().find(|(t, _)| t == name).map(|(_, r)| r.as_slice())
    }

    /// Added latency (target minus direct) at `p` for one pair of series.
    fn added(&self, name: &str, pick: fn(&LatencySeries) -> &Samples, p: f64) -> f64 {
        match (self.series(name), self.series("direct")) {
            (Some(t), Some(d)) => pick(t).percentile(p) - pick(d).percentile(p),
            _ => f64::NAN,
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "Machine: {}\n\nCommand: `{}`\n", self.machine, self.command);
        self.latency_tables(&mut md);
        self.load_table(&mut md);
        self.memory_table(&mut md);
        self.goals(&mut md);
        if !self.notes.is_empty() {
            let _ = writeln!(md, "Notes from this run:\n");
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
            md.push('\n');
        }
        md
    }

    fn latency_tables(&self, md: &mut String) {
        if self.latency.is_empty() {
            return;
        }
        let _ = writeln!(md, "#### Latency, one request at a time (ms)\n");
        let _ = writeln!(
            md,
            "| target | requests | p50 | p99 | stream first event p50 | p99 | stream end p50 | p99 | event lag p50 | p99 |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in &self.latency {
            let _ = writeln!(
                md,
                "| {} | {} + {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.target,
                s.whole.len(),
                s.stream_last.len(),
                ms(s.whole.p50()),
                ms(s.whole.p99()),
                ms(s.stream_first.p50()),
                ms(s.stream_first.p99()),
                ms(s.stream_last.p50()),
                ms(s.stream_last.p99()),
                ms(s.event_lag.p50()),
                ms(s.event_lag.p99()),
            );
        }
        for s in self.latency.iter().filter(|s| s.reconnects > 0) {
            let _ = writeln!(
                md,
                "\n{} closed the kept-alive connection {} times (reopened outside the timing).",
                s.target, s.reconnects
            );
        }
        let _ =
            writeln!(md, "\nAdded by the proxy (its figure minus direct's, same percentile):\n");
        let _ = writeln!(
            md,
            "| target | p50 | p99 | stream first event p50 | p99 | event lag p50 | p99 |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        for s in self.latency.iter().filter(|s| s.target != "direct") {
            let t = s.target.as_str();
            let _ = writeln!(
                md,
                "| {t} | {} | {} | {} | {} | {} | {} |",
                ms(self.added(t, |s| &s.whole, 50.0)),
                ms(self.added(t, |s| &s.whole, 99.0)),
                ms(self.added(t, |s| &s.stream_first, 50.0)),
                ms(self.added(t, |s| &s.stream_first, 99.0)),
                ms(self.added(t, |s| &s.event_lag, 50.0)),
                ms(self.added(t, |s| &s.event_lag, 99.0)),
            );
        }
        md.push('\n');
    }

    fn load_table(&self, md: &mut String) {
        if self.load.is_empty() {
            return;
        }
        let bound = self.p99_bound_ms;
        let nginx = self
            .loads("nginx")
            .and_then(|r| load::best_within(r, bound))
            .map(|r| r.requests_per_second);
        let _ = writeln!(
            md,
            "#### Throughput with p99 ≤ {bound} ms (wrk, non-streaming, kept-alive connections)\n"
        );
        let _ = writeln!(
            md,
            "| target | req/s | connections | p50 ms | p99 ms | proxy CPU ms per 1k requests | × nginx | peak req/s (any p99) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for (name, runs) in &self.load {
            let peak = load::peak(runs).map(|r| {
                format!(
                    "{:.0} (c={}, p99 {} ms)",
                    r.requests_per_second,
                    r.connections,
                    ms(r.p99_ms)
                )
            });
            let peak = peak.unwrap_or_else(|| "–".into());
            match load::best_within(runs, bound) {
                Some(r) => {
                    let _ = writeln!(
                        md,
                        "| {name} | {:.0} | {} | {} | {} | {} | {} | {peak} |",
                        r.requests_per_second,
                        r.connections,
                        ms(r.p50_ms),
                        ms(r.p99_ms),
                        if r.cpu_ms_per_1k.is_nan() {
                            "–".into()
                        } else {
                            format!("{:.0}", r.cpu_ms_per_1k)
                        },
                        ratio(r.requests_per_second, nginx.unwrap_or(f64::NAN)),
                    );
                }
                None => {
                    let _ = writeln!(md, "| {name} | none within the bound | | | | | | {peak} |");
                }
            }
        }
        let _ = writeln!(md, "\nEvery run of the sweep (connections: req/s, p99 ms):\n");
        for (name, runs) in &self.load {
            let steps: Vec<String> = runs
                .iter()
                .map(|r| {
                    let errors =
                        if r.errors > 0 { format!(", {} errors", r.errors) } else { String::new() };
                    format!(
                        "{}: {:.0}, {}{errors}",
                        r.connections,
                        r.requests_per_second,
                        ms(r.p99_ms)
                    )
                })
                .collect();
            let _ = writeln!(md, "- {name}: {}", steps.join(" · "));
        }
        md.push('\n');
    }

    fn memory_table(&self, md: &mut String) {
        if self.memory.is_empty() && self.agentnet_peak_rss_kib.is_none() {
            return;
        }
        let _ =
            writeln!(md, "#### Memory per open stream (resident, all of the proxy's processes)\n");
        let _ = writeln!(
            md,
            "| target | open streams | idle RSS MiB | RSS with streams open MiB | KiB per stream |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for (name, rows) in &self.memory {
            for m in rows {
                let _ = writeln!(
                    md,
                    "| {name} | {} | {:.1} | {:.1} | {:.1} |",
                    m.streams,
                    m.idle_rss_kib as f64 / 1024.0,
                    m.open_rss_kib as f64 / 1024.0,
                    m.per_stream_kib()
                );
            }
        }
        if let Some(peak) = self.agentnet_peak_rss_kib {
            let _ = writeln!(
                md,
                "\nagentnet's peak RSS over the whole run: {:.1} MiB",
                peak as f64 / 1024.0
            );
        }
        md.push('\n');
    }

    fn goals(&self, md: &mut String) {
        let mut rows: Vec<(String, String, Option<bool>)> = Vec::new();
        let p50 = self.added("agentnet", |s| &s.whole, 50.0);
        let p99 = self.added("agentnet", |s| &s.whole, 99.0);
        if !p50.is_nan() {
            rows.push((
                "added latency p50 ≤ 0.15 ms".into(),
                format!("{} ms", ms(p50)),
                Some(p50 <= 0.15),
            ));
            rows.push((
                "added latency p99 ≤ 0.5 ms".into(),
                format!("{} ms", ms(p99)),
                Some(p99 <= 0.5),
            ));
        }
        let lag = self.added("agentnet", |s| &s.event_lag, 99.0);
        if !lag.is_nan() {
            rows.push((
                "SSE events forwarded within 1 ms (added event lag, p99)".into(),
                format!("{} ms", ms(lag)),
                Some(lag <= 1.0),
            ));
        }
        let bound = self.p99_bound_ms;
        let best = |name: &str| {
            self.loads(name)
                .and_then(|r| load::best_within(r, bound))
                .map(|r| r.requests_per_second)
        };
        let peak =
            |name: &str| self.loads(name).and_then(load::peak).map(|r| r.requests_per_second);
        if let (Some(a), Some(n)) = (best("agentnet"), best("nginx")) {
            rows.push(("throughput ≥ 0.8× nginx's".into(), ratio(a, n), Some(a >= 0.8 * n)));
            // Not a goal of its own: how much of the gap is the per-request signature.
            if let Some(u) = best("agentnet-unsigned") {
                rows.push(("(the same without the signed assertion)".into(), ratio(u, n), None));
            }
        }
        if let Some((_, rows_mem)) = self.memory.iter().find(|(t, _)| t == "agentnet") {
            for m in rows_mem {
                let kib = m.per_stream_kib();
                rows.push((
                    format!("≤ 64 KiB per open stream ({} streams)", m.streams),
                    format!("{kib:.1} KiB"),
                    Some(kib <= 64.0),
                ));
            }
        }
        let litellm_added = self.added("litellm", |s| &s.whole, 50.0);
        if !litellm_added.is_nan() && !p50.is_nan() {
            rows.push((
                "≥ 50× lower added latency than LiteLLM (p50)".into(),
                ratio(litellm_added, p50),
                Some(litellm_added >= 50.0 * p50),
            ));
        }
        if let (Some(a), Some(l)) = (best("agentnet").or(peak("agentnet")), peak("litellm")) {
            rows.push((
                "≥ 50× LiteLLM's throughput (agentnet within the bound, LiteLLM's peak)".into(),
                ratio(a, l),
                Some(a >= 50.0 * l),
            ));
        }
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(md, "#### Goals\n\n| goal | measured | met |\n|---|---:|---|");
        for (goal, measured, met) in rows {
            let met = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(md, "| {goal} | {measured} | {met} |");
        }
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, whole_ms: f64, lag_ms: f64) -> LatencySeries {
        let mut s = LatencySeries { target: name.into(), ..Default::default() };
        for _ in 0..10 {
            s.whole.push_ms(whole_ms);
            s.stream_first.push_ms(whole_ms);
            s.stream_last.push_ms(whole_ms + 20.0);
            s.event_lag.push_ms(lag_ms);
        }
        s
    }

    fn run(connections: u32, rate: f64, p99_ms: f64) -> LoadResult {
        LoadResult {
            connections,
            requests_per_second: rate,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            errors: 0,
            cpu_ms_per_1k: 50.0,
        }
    }

    #[test]
    fn goals_compare_within_the_run() {
        let results = Results {
            p99_bound_ms: 10.0,
            latency: vec![
                series("direct", 0.03, 0.04),
                series("agentnet", 0.13, 0.09),
                series("litellm", 9.0, 0.5),
            ],
            load: vec![
                ("agentnet".into(), vec![run(16, 900.0, 4.0), run(64, 950.0, 12.0)]),
                ("agentnet-unsigned".into(), vec![run(16, 1100.0, 3.0)]),
                ("nginx".into(), vec![run(64, 1000.0, 3.0)]),
                ("litellm".into(), vec![run(4, 10.0, 30.0)]),
            ],
            memory: vec![(
                "agentnet".into(),
                vec![StreamMemory { streams: 1000, idle_rss_kib: 10_000, open_rss_kib: 80_000 }],
            )],
            ..Default::default()
        };
        let md = results.markdown();
        // 0.13 - 0.03 ms added at p50: within 0.15.
        assert!(md.contains("| added latency p50 ≤ 0.15 ms | 0.100 ms | yes |"), "{md}");
        // 900 within the bound (not the 950 past it) against nginx's 1000.
        assert!(md.contains("| throughput ≥ 0.8× nginx's | 0.90× | yes |"), "{md}");
        assert!(md.contains("| (the same without the signed assertion) | 1.10× | – |"), "{md}");
        // 70,000 KiB over 1,000 streams.
        assert!(
            md.contains("| ≤ 64 KiB per open stream (1000 streams) | 70.0 KiB | **no** |"),
            "{md}"
        );
        // LiteLLM adds 8.97 ms against agentnet's 0.10: 89.7×.
        assert!(
            md.contains("| ≥ 50× lower added latency than LiteLLM (p50) | 89.70× | yes |"),
            "{md}"
        );
        assert!(md.contains("| ≥ 50× LiteLLM's throughput (agentnet within the bound, LiteLLM's peak) | 90.00× | yes |"), "{md}");
        assert!(md.contains("| litellm | none within the bound |"), "{md}");
    }
}
