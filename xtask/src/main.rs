//! Project automation: `cargo xtask test` runs the whole suite (what CI runs), `cargo xtask check`
//! runs the architecture checks alone, `cargo xtask bench` runs the data-plane benchmark
//! (`crates/bench`) and writes its results into BENCHMARKS.md.
//!
//! The checks: crate dependencies point the way ARCHITECTURE.md says (`domain` pulls in no IO or
//! serde, `cli` never reaches `store` or `proxy`, `testkit` is only a dev-dependency), and every
//! Rust file starts with a `//!` module doc.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _};
use serde_json::Value;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => check(),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <check | test [--no-e2e] | bench [--quick] [agentnet-bench options]>");
            std::process::exit(2);
        }
    }
}

/// The workspace root. `cargo run` (the `cargo xtask` alias) tells the running binary where its
/// package is; the path compiled in is only a fallback: a binary reused from a target directory
/// shared with another checkout would point into that checkout.
fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.current_dir(root()).status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// The whole suite: architecture checks, formatting, lints, unit and integration tests, then the
/// end-to-end tests against real clients.
fn test(args: &[String]) -> anyhow::Result<()> {
    check()?;
    run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(Command::new("cargo").args(["test", "--workspace"]))?;
    if !args.iter().any(|a| a == "--no-e2e") {
        run(Command::new("bash").arg("tests/e2e/run.sh"))?;
    }
    Ok(())
}

/// The LiteLLM release the benchmark compares against (PyPI `litellm[proxy]`).
const LITELLM_VERSION: &str = "1.108.7";

/// The data-plane benchmark: installs what it measures against (Debian's wrk and nginx-light,
/// LiteLLM in a venv under the target directory), builds the release binaries, and runs
/// `agentnet-bench`, which prints the results and writes them into BENCHMARKS.md. `--quick` is a
/// short run that writes nothing (to check that the benchmark works); any other arguments go to
/// `agentnet-bench` (see its `--help`).
fn bench(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let passed: Vec<&String> = args.iter().filter(|a| *a != "--quick").collect();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    install_debian_tools()?;
    let litellm = install_litellm(&target_dir.join("bench-venv"))?;
    run(Command::new("cargo").args(["build", "--release", "-p", "cli", "-p", "bench"]))?;
    let release = target_dir.join("release");
    let mut cmd = Command::new(release.join("agentnet-bench"));
    cmd.arg("--agentnet-bin")
        .arg(release.join("agentnet"))
        .arg("--upstream-bin")
        .arg(release.join("bench-upstream"))
        .arg("--litellm")
        .arg(&litellm);
    let shown: Vec<&str> =
        std::iter::once("cargo xtask bench").chain(args.iter().map(String::as_str)).collect();
    cmd.arg("--command").arg(shown.join(" "));
    if quick {
        cmd.args(["--requests", "300", "--stream-requests", "30", "--connections", "16,64"]);
        cmd.args(["--load-seconds", "2", "--streams", "1000"]);
    } else {
        cmd.arg("--update").arg(root().join("BENCHMARKS.md"));
    }
    cmd.args(passed);
    run(&mut cmd)
}

/// wrk (the load generator) and nginx (the reverse-proxy baseline), from Debian, when missing.
/// `RUNLEVEL=1` keeps the package's scripts from starting an nginx service on port 80.
fn install_debian_tools() -> anyhow::Result<()> {
    let missing =
        |bin: &str| !["/usr/bin", "/usr/sbin"].iter().any(|d| Path::new(d).join(bin).exists());
    if !missing("wrk") && !missing("nginx") {
        return Ok(());
    }
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").env("RUNLEVEL", "1");
        run(&mut cmd)
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", "--no-install-recommends", "wrk", "nginx-light"])
        .context("cannot install wrk and nginx-light (run as root, or install them yourself)")
}

/// A venv with the pinned LiteLLM proxy; returns its `litellm` executable.
fn install_litellm(venv: &Path) -> anyhow::Result<PathBuf> {
    let litellm = venv.join("bin/litellm");
    let marker = venv.join(format!("litellm-{LITELLM_VERSION}.installed"));
    if litellm.exists() && marker.exists() {
        return Ok(litellm);
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "-q",
        "--disable-pip-version-check",
        &format!("litellm[proxy]=={LITELLM_VERSION}"),
    ]))?;
    std::fs::write(&marker, "")?;
    Ok(litellm)
}

fn check() -> anyhow::Result<()> {
    let mut problems = dependency_problems()?;
    problems.extend(tidy_problems()?);
    if problems.is_empty() {
        eprintln!("xtask check: architecture rules hold");
        return Ok(());
    }
    for p in &problems {
        eprintln!("xtask check: {p}");
    }
    bail!("{} architecture rule violation(s)", problems.len())
}

/// Normal (non-dev) dependencies of each workspace crate, from `cargo metadata`.
fn dependency_problems() -> anyhow::Result<Vec<String>> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1"])
        .current_dir(root())
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let meta: Value = serde_json::from_slice(&output.stdout).context("cargo metadata output")?;
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    for pkg in packages.iter().filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
    {
        let name = pkg["name"].as_str().unwrap_or_default();
        let normal: Vec<&str> = pkg["dependencies"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .filter(|d| d["kind"].is_null())
                    .filter_map(|d| d["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let forbid = |deps: &[&str], why: &str, problems: &mut Vec<String>| {
            for dep in deps {
                if normal.contains(dep) {
                    problems.push(format!("crate `{name}` must not depend on `{dep}`: {why}"));
                }
            }
        };
        match name {
            "domain" => forbid(
                &[
                    "tokio",
                    "hyper",
                    "sqlx",
                    "serde",
                    "serde_json",
                    "axum",
                    "reqwest",
                    "store",
                    "llm",
                ],
                "domain is pure (no IO, no serde)",
                &mut problems,
            ),
            "llm" => forbid(
                &["tokio", "hyper", "axum", "sqlx", "store"],
                "llm turns bytes into values",
                &mut problems,
            ),
            "cli" => forbid(
                &["store", "proxy", "control", "identity"],
                "the CLI talks to the server through api-types",
                &mut problems,
            ),
            "store" | "identity" | "overlay" => {
                forbid(&["proxy", "control", "server"], "dependencies point down", &mut problems)
            }
            "proxy" | "control" => {
                forbid(&["server", "cli"], "dependencies point down", &mut problems)
            }
            _ => {}
        }
        if name != "testkit" && normal.contains(&"testkit") {
            problems
                .push(format!("crate `{name}` has testkit as a normal dependency; it is dev-only"));
        }
    }
    Ok(problems)
}

/// Every `.rs` file under crates/ and xtask/ starts with a `//!` module doc.
fn tidy_problems() -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for dir in ["crates", "xtask"] {
        visit(&root().join(dir), &mut |path| {
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if !text.trim_start().starts_with("//!") {
                    problems
                        .push(format!("{} does not start with a `//!` module doc", path.display()));
                }
            }
        })?;
    }
    Ok(problems)
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path)) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target" || n == "node_modules") {
                continue;
            }
            visit(&path, f)?;
        } else {
            f(&path);
        }
    }
    Ok(())
}
