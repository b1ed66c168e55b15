//! `agentnet login`, `agentnet enroll` and `agentnet logout`: opening a session at a server's
//! admin listener and storing it (see `session`), or ending it.
//!
//! `login` uses the device flow (RFC 8628: a code the person enters in any browser) or, with
//! `--browser`, auth code + PKCE with a loopback redirect (RFC 7636, RFC 8252). Either way the
//! server brokers the sign-in to the company IdP or checks a local account; the CLI talks only
//! to agentnet. `enroll` trades a setup key, read from an environment variable or a file, for an
//! agent's session. Messages for the person go to stderr; stdout gets only the outcome.

mod browser;
mod device;

#[cfg(test)]
mod tests;

use std::{
    future::Future,
    io::{IsTerminal, Read, Write},
    path::Path,
    pin::Pin,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use api_types::{EnrollRequest, SessionIdentity};

use crate::{
    args::{EnrollArgs, LoginArgs, DEFAULT_ADMIN_URL},
    auth,
    remote::Remote,
    session::{unix_now, Session, SessionFile},
};

/// How long a sign-in may wait for the person, in either flow.
const TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub(crate) async fn run_login(args: LoginArgs) -> anyhow::Result<()> {
    let file = SessionFile::default_location()?;
    let hooks = Hooks {
        open: Box::new(|url: &str| open_browser(url, &|var| std::env::var(var).ok())),
        clock: Box::new(SystemClock),
        ui: Ui::new(Box::new(std::io::stderr()), std::io::stderr().is_terminal()),
    };
    print!("{}", login(&file, &args, &hooks).await?);
    Ok(())
}

pub(crate) async fn run_enroll(args: EnrollArgs) -> anyhow::Result<()> {
    let file = SessionFile::default_location()?;
    let key = read_setup_key(&args, &|var| std::env::var(var).ok(), &mut std::io::stdin())?;
    print!("{}", enroll(&file, &args, key).await?);
    Ok(())
}

pub(crate) async fn run_logout() -> anyhow::Result<()> {
    let file = SessionFile::default_location()?;
    let (out, warning) = logout(&file).await?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    print!("{out}");
    Ok(())
}

/// What a sign-in needs from its surroundings, replaced in tests: a browser, a clock to pace
/// polling, and a place for messages.
pub(crate) struct Hooks {
    /// Opens a link in the person's browser: `Ok(false)` when there is none, an error when it
    /// could not.
    pub(crate) open: Box<Opener>,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) ui: Ui,
}

/// Opens a link in a browser: `Ok(false)` when there is none, an error when it could not.
pub(crate) type Opener = dyn Fn(&str) -> Result<bool, String> + Send + Sync;

/// Time, for the device flow's polling.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Messages for the person (stderr), with a status line updated in place on a terminal.
pub(crate) struct Ui {
    out: Mutex<Box<dyn Write + Send>>,
    tty: bool,
}

impl Ui {
    pub(crate) fn new(out: Box<dyn Write + Send>, tty: bool) -> Self {
        Self { out: Mutex::new(out), tty }
    }

    fn write(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    /// A line.
    pub(crate) fn say(&self, line: &str) {
        self.write(&format!("{line}\n"));
    }

    /// A status line: redrawn in place on a terminal; elsewhere only `first` is printed, once.
    fn status(&self, line: &str, first: bool) {
        if self.tty {
            self.write(&format!("\r\x1b[K{line}"));
        } else if first {
            self.say(line);
        }
    }

    /// Erases the status line (on a terminal).
    fn clear_status(&self) {
        if self.tty {
            self.write("\r\x1b[K");
        }
    }
}

/// Signs in at the server of `args` and stores the session; returns what to print.
pub(crate) async fn login(
    file: &SessionFile,
    args: &LoginArgs,
    hooks: &Hooks,
) -> anyhow::Result<String> {
    // A session file that does not load is replaced; it cannot be used anyway.
    let previous = file.load().ok().flatten();
    let server = match (&args.server, &previous) {
        (Some(server), _) => server.clone(),
        (None, Some(previous)) => previous.server.clone(),
        (None, None) => DEFAULT_ADMIN_URL.to_owned(),
    };
    let remote = Remote::new(&server)?;
    let label = device_label();
    let open = !args.no_open;
    let tokens = if args.browser {
        browser::sign_in(&remote, label.as_deref(), open, hooks).await?
    } else {
        device::sign_in(&remote, label.as_deref(), open, hooks).await?
    };
    let session = Session::new(remote.base(), tokens, unix_now()?);
    file.save(&session)?;
    if let Some(previous) = previous.filter(|p| p.refresh_token != session.refresh_token) {
        end_quietly(&previous).await;
    }
    Ok(format!(
        "Signed in as {} ({}), {}\n",
        session.identity.name,
        session.identity.kind,
        groups(&session.identity)
    ))
}

/// Revokes a session being replaced, best effort and briefly: its tokens are forgotten anyway.
async fn end_quietly(session: &Session) {
    let Ok(remote) = Remote::new(&session.server) else { return };
    let _ =
        tokio::time::timeout(Duration::from_secs(5), auth::revoke(&remote, &session.refresh_token))
            .await;
}

/// `groups: a, b`, or `in no groups`.
pub(crate) fn groups(identity: &SessionIdentity) -> String {
    if identity.groups.is_empty() {
        "in no groups".to_owned()
    } else {
        format!("groups: {}", identity.groups.join(", "))
    }
}

/// Enrolls as an agent with `key` and stores the session; returns what to print.
pub(crate) async fn enroll(
    file: &SessionFile,
    args: &EnrollArgs,
    key: String,
) -> anyhow::Result<String> {
    let remote = Remote::new(&args.server)?;
    let request = EnrollRequest { setup_key: key, name: args.name.clone(), client: device_label() };
    let tokens = match auth::enroll(&remote, &request).await? {
        Ok(tokens) => tokens,
        Err(err) if err.error == "invalid_setup_key" => {
            bail!("the setup key was refused: {}", auth::describe(&err))
        }
        Err(err) => bail!("enrollment failed: {}", auth::describe(&err)),
    };
    let previous = file.load().ok().flatten();
    let session = Session::new(remote.base(), tokens, unix_now()?);
    file.save(&session)?;
    if let Some(previous) = previous {
        end_quietly(&previous).await;
    }
    Ok(format!(
        "Enrolled as {} {}, {}\n",
        session.identity.kind,
        session.identity.name,
        groups(&session.identity)
    ))
}

/// The setup key, from `--setup-key-env` or `--setup-key-file` (`-`: `stdin`), trimmed.
pub(crate) fn read_setup_key(
    args: &EnrollArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
) -> anyhow::Result<String> {
    let (key, source) = match (&args.setup_key_env, &args.setup_key_file) {
        (Some(var), None) => (
            env(var)
                .with_context(|| format!("environment variable {var} is not set (or not UTF-8)"))?,
            format!("environment variable {var}"),
        ),
        (None, Some(path)) if path == Path::new("-") => {
            let mut key = String::new();
            stdin.read_to_string(&mut key).context("cannot read the setup key from stdin")?;
            (key, "stdin".to_owned())
        }
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the setup key from {}", path.display()))?,
            path.display().to_string(),
        ),
        // clap's argument group insists on exactly one.
        _ => bail!("give exactly one of --setup-key-env VAR or --setup-key-file FILE"),
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        bail!("{source} holds no setup key");
    }
    Ok(key)
}

/// Ends the stored session at its server (best effort) and deletes it. Returns what to print,
/// and a warning when the server could not be told.
pub(crate) async fn logout(file: &SessionFile) -> anyhow::Result<(String, Option<String>)> {
    let Some(session) = file.load()? else {
        return Ok(("Not signed in\n".to_owned(), None));
    };
    let told = match Remote::new(&session.server) {
        Ok(remote) => auth::revoke(&remote, &session.refresh_token).await,
        Err(err) => Err(err),
    };
    file.delete()?;
    let warning = told.err().map(|err| {
        format!(
            "could not tell the server at {} to end the session ({err:#}); it ends by itself at {}",
            session.server, session.identity.session_expires_at
        )
    });
    Ok(("Signed out\n".to_owned(), warning))
}

/// This machine's name, as the label of its sessions.
pub(crate) fn device_label() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let name = from_kernel.or_else(|| {
        let out = std::process::Command::new("hostname")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Opens `url` in a browser: `$BROWSER URL` if set, else `xdg-open URL` when there is a
/// graphical session; otherwise the person opens the printed link.
fn open_browser(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    let Some((program, args)) = browser_command(url, env) else {
        return Ok(false);
    };
    let mut child = std::process::Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    // Reaped in the background: a browser may keep running after the sign-in.
    std::thread::spawn(move || child.wait());
    Ok(true)
}

/// The program and arguments that open `url`, if any.
pub(crate) fn browser_command(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, Vec<String>)> {
    let set = |var: &str| env(var).filter(|v| !v.trim().is_empty());
    if let Some(browser) = set("BROWSER") {
        return Some((browser.trim().to_owned(), vec![url.to_owned()]));
    }
    if set("DISPLAY").is_some() || set("WAYLAND_DISPLAY").is_some() {
        return Some(("xdg-open".to_owned(), vec![url.to_owned()]));
    }
    None
}

/// Opens `url` unless told not to, saying so when that fails; never fails the sign-in.
fn open(hooks: &Hooks, url: &str, open: bool) {
    if !open {
        return;
    }
    match (hooks.open)(url) {
        Ok(true) => hooks.ui.say("(opened in your browser)"),
        Ok(false) => {}
        Err(why) => hooks.ui.say(&format!("(could not open a browser: {why})")),
    }
}
