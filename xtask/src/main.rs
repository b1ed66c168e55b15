//! Project automation: `cargo xtask test` runs the whole suite (what CI runs), `cargo xtask check`
//! runs the architecture checks alone.
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
        _ => {
            eprintln!("usage: cargo xtask <check | test [--no-e2e]>");
            std::process::exit(2);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
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
