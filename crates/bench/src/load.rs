//! Throughput under load, from `wrk` (a real load generator, Debian's package): one run at a given
//! number of kept-alive connections, its rate, latency percentiles, errors, and the CPU the proxy
//! spent per request.

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{bail, Context as _};
use serde::Deserialize;

use crate::{procs, targets::Target};

/// One wrk run.
#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    pub connections: u32,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Socket errors, timeouts and non-2xx answers.
    pub errors: u64,
    /// The proxy's CPU (all its processes) per 1,000 requests, in milliseconds; NaN for `direct`.
    pub cpu_ms_per_1k: f64,
}

/// What the Lua `done` hook prints.
#[derive(Deserialize)]
struct WrkSummary {
    requests: u64,
    duration_us: u64,
    errors: u64,
    p50_us: f64,
    p99_us: f64,
}

const MARK: &str = "WRK-SUMMARY ";

/// Writes the wrk script for `target`: a POST of `body` with its headers, and a summary line.
pub fn write_script(dir: &Path, target: &Target, body: &str) -> anyhow::Result<std::path::PathBuf> {
    let mut lua = String::from("wrk.method = \"POST\"\n");
    lua += &format!("wrk.body = {}\n", lua_string(body));
    lua += "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
    for (name, value) in &target.headers {
        lua += &format!("wrk.headers[ {} ] = {}\n", lua_string(name), lua_string(value));
    }
    lua += &format!(
        r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("{MARK}{{\"requests\":%d,\"duration_us\":%d,\"errors\":%d,\"p50_us\":%f,\"p99_us\":%f}}\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#
    );
    let path = dir.join(format!("wrk-{}.lua", target.name));
    fs::write(&path, lua)?;
    Ok(path)
}

fn lua_string(s: &str) -> String {
    // A long bracket string takes everything verbatim; the level is chosen to not occur in `s`.
    let mut level = String::new();
    while s.contains(&format!("]{level}]")) {
        level.push('=');
    }
    format!("[{level}[{s}]{level}]")
}

/// Runs wrk against `target` with `connections` connections for `duration`.
pub fn run(
    wrk: &Path,
    script: &Path,
    target: &Target,
    connections: u32,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let threads = connections.min(2);
    let url = format!("http://{}{}", target.addr, target.path);
    let pids = target.pid.map(procs::tree).unwrap_or_default();
    let cpu_before = procs::cpu_seconds(&pids);
    let out = Command::new(wrk)
        .args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs()), "--timeout", "10s", "-s"])
        .arg(script)
        .arg(&url)
        .output()
        .with_context(|| format!("cannot run {}", wrk.display()))?;
    let cpu = procs::cpu_seconds(&pids) - cpu_before;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix(MARK)) else {
        bail!(
            "wrk printed no summary ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s: WrkSummary =
        serde_json::from_str(line).with_context(|| format!("wrk summary: {line}"))?;
    let seconds = s.duration_us as f64 / 1e6;
    Ok(LoadResult {
        connections,
        requests_per_second: s.requests as f64 / seconds,
        p50_ms: s.p50_us / 1e3,
        p99_ms: s.p99_us / 1e3,
        errors: s.errors,
        cpu_ms_per_1k: if pids.is_empty() || s.requests == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / s.requests as f64
        },
    })
}

/// Sweeps connection counts upward and returns every run. It stops once two steps have been
/// past `bound_ms` (or had errors) and the last of them no longer raised the peak rate by 5 %:
/// beyond that, more connections only queue.
pub fn sweep(
    wrk: &Path,
    script: &Path,
    target: &Target,
    steps: &[u32],
    duration: Duration,
    bound_ms: f64,
) -> anyhow::Result<Vec<LoadResult>> {
    let mut runs: Vec<LoadResult> = Vec::new();
    for &c in steps {
        let r = run(wrk, script, target, c, duration)?;
        eprintln!(
            "  {:<10} c={:<4} {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}  cpu {:.1} ms/1k",
            target.name, c, r.requests_per_second, r.p50_ms, r.p99_ms, r.errors, r.cpu_ms_per_1k
        );
        runs.push(r);
        if saturated(&runs, bound_ms) {
            break;
        }
    }
    Ok(runs)
}

/// Whether more connections would only queue: two steps past the bound (or with errors), the
/// last of them without raising the peak rate by 5 %.
fn saturated(runs: &[LoadResult], bound_ms: f64) -> bool {
    let past = |r: &LoadResult| r.p99_ms > bound_ms || r.errors > 0;
    let Some((last, before)) = runs.split_last() else { return false };
    // Every earlier step counts here, failing ones too: a target that fails at every step must
    // still end the sweep.
    let best_before = before.iter().map(|r| r.requests_per_second).fold(0.0, f64::max);
    past(last)
        && runs.iter().filter(|r| past(r)).count() >= 2
        && last.requests_per_second < 1.05 * best_before
}

/// The best rate among runs within the bound and without errors.
pub fn best_within(runs: &[LoadResult], bound_ms: f64) -> Option<LoadResult> {
    runs.iter()
        .filter(|r| r.p99_ms <= bound_ms && r.errors == 0)
        .copied()
        .max_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second))
}

/// The best rate among runs without errors, whatever their latency.
pub fn peak(runs: &[LoadResult]) -> Option<LoadResult> {
    runs.iter()
        .filter(|r| r.errors == 0)
        .copied()
        .max_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(connections: u32, rate: f64, p99_ms: f64, errors: u64) -> LoadResult {
        LoadResult {
            connections,
            requests_per_second: rate,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            errors,
            cpu_ms_per_1k: f64::NAN,
        }
    }

    #[test]
    fn the_best_rate_within_the_bound_ignores_slow_and_failing_steps() {
        let runs = [
            step(1, 100.0, 1.0, 0),
            step(4, 300.0, 5.0, 0),
            step(16, 500.0, 20.0, 0),
            step(64, 600.0, 8.0, 3),
        ];
        assert_eq!(best_within(&runs, 10.0).map(|r| r.connections), Some(4));
        assert_eq!(peak(&runs).map(|r| r.connections), Some(16));
        assert!(best_within(&runs[2..3], 10.0).is_none());
    }

    #[test]
    fn the_sweep_goes_on_while_a_slow_target_still_gains() {
        // Past the bound from the first step, but the rate keeps rising: not saturated.
        let rising = [step(1, 100.0, 12.0, 0), step(4, 220.0, 27.0, 0)];
        assert!(!saturated(&rising, 10.0));
        // A second step past the bound that gains nothing: saturated.
        let flat = [step(1, 100.0, 12.0, 0), step(4, 220.0, 27.0, 0), step(16, 221.0, 300.0, 0)];
        assert!(saturated(&flat, 10.0));
        // Within the bound: never.
        let fast = [step(1, 100.0, 1.0, 0), step(4, 100.0, 2.0, 0)];
        assert!(!saturated(&fast, 10.0));
        // Errors count as past the bound.
        let failing = [step(1, 100.0, 1.0, 1), step(4, 90.0, 1.0, 5)];
        assert!(saturated(&failing, 10.0));
    }

    #[test]
    fn lua_strings_take_any_text_verbatim() {
        assert_eq!(lua_string("a\"b"), "[[a\"b]]");
        assert_eq!(lua_string("x]]y"), "[=[x]]y]=]");
    }
}
