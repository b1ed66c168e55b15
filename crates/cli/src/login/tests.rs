//! `login` (device flow and browser flow), `enroll` and `logout` against a fake server, with the
//! browser and the clock replaced: the browser is a function that fetches the sign-in link the
//! way a browser would (following the redirect to the loopback receiver); the clock records how
//! long the device flow waited between polls instead of sleeping.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use expect_test::expect;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use super::{browser::callback_outcome, *};
use crate::fake_server::{session_file, FakeServer, DEVICE_CODE, SETUP_KEY, USER_CODE};

/// Messages the sign-in wrote, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A clock that only moves when slept on, recording each sleep.
struct TestClock {
    start: Instant,
    slept: Mutex<Vec<Duration>>,
}

impl Clock for Arc<TestClock> {
    fn now(&self) -> Instant {
        self.start + self.slept.lock().unwrap().iter().sum::<Duration>()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.slept.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

impl TestClock {
    fn slept_secs(&self) -> Vec<u64> {
        self.slept.lock().unwrap().iter().map(Duration::as_secs).collect()
    }
}

struct Rig {
    hooks: Hooks,
    clock: Arc<TestClock>,
    ui: Captured,
    opened: Arc<Mutex<Vec<String>>>,
}

/// Hooks whose browser records the links it is given and then runs `browse` on them.
fn rig(browse: impl Fn(&str) + Send + Sync + 'static) -> Rig {
    let clock = Arc::new(TestClock { start: Instant::now(), slept: Mutex::default() });
    let ui = Captured::default();
    let opened: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = opened.clone();
    let hooks = Hooks {
        open: Box::new(move |url: &str| {
            seen.lock().unwrap().push(url.to_owned());
            browse(url);
            Ok(true)
        }),
        clock: Box::new(clock.clone()),
        ui: Ui::new(Box::new(ui.clone()), false),
    };
    Rig { hooks, clock, ui, opened }
}

fn args(server: &FakeServer, browser: bool) -> LoginArgs {
    LoginArgs { server: Some(server.url.clone()), browser, no_open: false }
}

#[tokio::test]
async fn the_device_flow_polls_until_approved() {
    let server = FakeServer::start().await;
    server.lock().device_script.extend(["authorization_pending", "slow_down", "ok"]);
    let (file, _, _dir) = session_file("login-device");
    let rig = rig(|_| {});

    let out = login(&file, &args(&server, false), &rig.hooks).await.unwrap();
    assert_eq!(out, "Signed in as alice@example.com (user), groups: engineering, sre\n");

    // Polled after 1 s, again after 1 s, then (slow_down) after 6 s.
    assert_eq!(rig.clock.slept_secs(), [1, 1, 6]);
    let polls = server.requests_to("/auth/token");
    assert_eq!(polls.len(), 3);
    for poll in &polls {
        assert_eq!(poll.fields["grant_type"], "urn:ietf:params:oauth:grant-type:device_code");
        assert_eq!(poll.fields["device_code"], DEVICE_CODE);
    }
    let started = server.requests_to("/auth/device");
    assert_eq!(started[0].fields.get("client").cloned(), device_label());

    let verification = format!("{}/auth/activate", server.url);
    assert_eq!(
        rig.ui.text(),
        format!(
            "To sign in, open {verification} and enter the code {USER_CODE}\n\
             or open this link, which has the code filled in:\n  {verification}?code={USER_CODE}\n\
             (opened in your browser)\n\
             waiting for approval…\n"
        )
    );
    assert_eq!(*rig.opened.lock().unwrap(), [format!("{verification}?code={USER_CODE}")]);

    let session = file.load().unwrap().unwrap();
    assert_eq!(session.server, server.url);
    assert_eq!(session.access_token, "agentnet_at_1");
    assert_eq!(session.refresh_token, "agentnet_rt_1");
    assert_eq!(session.identity.name, "alice@example.com");
}

#[tokio::test]
async fn a_denied_or_expired_device_sign_in_says_so() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("login-denied");
    let run = |script: &'static [&'static str], no_open: bool| {
        let (server, file) = (&server, &file);
        async move {
            server.lock().device_script = script.iter().copied().collect();
            let rig = rig(|_| {});
            let args = LoginArgs { no_open, ..args(server, false) };
            let err = login(file, &args, &rig.hooks).await.unwrap_err().to_string();
            let opened = rig.opened.lock().unwrap().len();
            (err, opened)
        }
    };
    let (err, opened) = run(&["authorization_pending", "access_denied"], true).await;
    expect!["the sign-in was denied: scripted access_denied (access_denied)"].assert_eq(&err);
    assert_eq!(opened, 0, "--no-open opens nothing");
    let (err, _) = run(&["expired_token"], false).await;
    expect!["the sign-in code expired before it was approved; run `agentnet login` again"]
        .assert_eq(&err);
    assert!(file.load().unwrap().is_none());

    // Pending until the code's lifetime (here shorter than 5 minutes) is used up.
    server.lock().expires_in = 3;
    let (err, _) = run(&[], false).await;
    expect!["the sign-in code expired before it was approved; run `agentnet login` again"]
        .assert_eq(&err);
    // Pending for 5 minutes with a longer-lived code.
    server.lock().expires_in = 900;
    server.lock().interval = 60;
    let rig = rig(|_| {});
    let err = login(&file, &args(&server, false), &rig.hooks).await.unwrap_err().to_string();
    expect!["no approval within 5 minutes; run `agentnet login` again"].assert_eq(&err);
    assert_eq!(rig.clock.slept_secs(), [60; 5]);
}

/// GETs `url` without following redirects: status, `Location`, body.
async fn get(url: &str) -> (u16, Option<String>, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let location =
        response.headers().get(hyper::header::LOCATION).map(|l| l.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, location, String::from_utf8(body.to_vec()).unwrap())
}

/// The page a browser ended on: status and body.
type Page = Arc<Mutex<Option<tokio::task::JoinHandle<(u16, String)>>>>;

/// A browser: opens the sign-in link, follows the server's redirect to the loopback receiver,
/// and shows the page it answers.
fn browser(page: Page) -> impl Fn(&str) + Send + Sync {
    move |url: &str| {
        let url = url.to_owned();
        let browsing = tokio::spawn(async move {
            let (status, location, _) = get(&url).await;
            assert_eq!(status, 303);
            let (status, _, body) = get(&location.unwrap()).await;
            (status, body)
        });
        *page.lock().unwrap() = Some(browsing);
    }
}

async fn shown(page: &Page) -> (u16, String) {
    let browsing = page.lock().unwrap().take().unwrap();
    browsing.await.unwrap()
}

#[tokio::test]
async fn the_browser_flow_sends_the_verifier_of_its_challenge() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("login-browser");
    let page = Page::default();
    let rig = rig(browser(page.clone()));

    let out = login(&file, &args(&server, true), &rig.hooks).await.unwrap();
    assert_eq!(out, "Signed in as alice@example.com (user), groups: engineering, sre\n");

    let opened = rig.opened.lock().unwrap()[0].clone();
    assert!(opened.starts_with(&format!("{}/auth/authorize?", server.url)), "{opened}");
    assert!(rig.ui.text().contains(&format!("\n  {opened}\n")), "{}", rig.ui.text());
    let asked = &server.requests_to("/auth/authorize")[0].fields;
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["state"].len(), 22, "16 random bytes, base64url");
    let redirect = &asked["redirect_uri"];
    let port = redirect
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.strip_suffix("/callback"))
        .unwrap();
    assert!(port.parse::<u16>().unwrap() > 0);

    // The exchange carries the verifier whose S256 is the challenge sent ahead.
    let exchange = &server.requests_to("/auth/token")[0].fields;
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["redirect_uri"], *redirect);
    let verifier = &exchange["code_verifier"];
    assert_eq!(verifier.len(), 43, "32 random bytes, base64url");
    assert_eq!(browser::s256(verifier), asked["code_challenge"]);

    let (status, body) = shown(&page).await;
    assert_eq!(status, 200);
    assert!(body.contains("Signed in to agentnet; you can close this tab."), "{body}");
    assert_eq!(file.load().unwrap().unwrap().refresh_token, "agentnet_rt_1");
}

#[tokio::test]
async fn the_browser_flow_rejects_an_answer_with_another_state() {
    let server = FakeServer::start().await;
    server.lock().tamper_state = true;
    let (file, _, _dir) = session_file("login-state");
    let page = Page::default();
    let rig = rig(browser(page.clone()));

    let err = login(&file, &args(&server, true), &rig.hooks).await.unwrap_err().to_string();
    expect!["the answer does not belong to this sign-in (its state does not match); run `agentnet login --browser` again"].assert_eq(&err);
    assert!(server.requests_to("/auth/token").is_empty(), "no code is exchanged");
    assert!(file.load().unwrap().is_none());
    // The page was sent before the login gave up.
    let (status, body) = shown(&page).await;
    assert_eq!(status, 400);
    assert!(body.contains("its state does not match"), "{body}");
}

#[test]
fn a_callback_needs_the_state_and_a_code() {
    let check = |query: &str| callback_outcome(query, "s1");
    assert_eq!(check("code=abc&state=s1"), Ok("abc".to_owned()));
    assert!(check("code=abc&state=s2").unwrap_err().contains("state does not match"));
    assert!(check("code=abc").unwrap_err().contains("state does not match"));
    assert_eq!(
        check("error=access_denied&error_description=not+in+the+right+group&state=s1"),
        Err("the sign-in failed: not in the right group (access_denied)".to_owned())
    );
    // An error with another state is not believed either.
    assert!(check("error=access_denied&state=x").unwrap_err().contains("state does not match"));
    assert_eq!(check("state=s1"), Err("the answer carries no code".to_owned()));
}

#[test]
fn pkce_follows_rfc_7636() {
    // RFC 7636, appendix B.
    assert_eq!(
        browser::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let (a, b) = (browser::Pkce::new().unwrap(), browser::Pkce::new().unwrap());
    assert_ne!(a.verifier, b.verifier);
    assert_eq!(browser::s256(&a.verifier), a.challenge);
}

#[test]
fn the_browser_is_browser_else_xdg_open_with_a_display() {
    let with = |vars: &[(&str, &str)]| {
        let env: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        browser_command("http://x/y", &|var| env.get(var).cloned())
    };
    let url = vec!["http://x/y".to_owned()];
    assert_eq!(
        with(&[("BROWSER", "/opt/bin/fake-browser"), ("DISPLAY", ":0")]),
        Some(("/opt/bin/fake-browser".to_owned(), url.clone()))
    );
    assert_eq!(with(&[("DISPLAY", ":0")]), Some(("xdg-open".to_owned(), url.clone())));
    assert_eq!(with(&[("WAYLAND_DISPLAY", "wayland-0")]), Some(("xdg-open".to_owned(), url)));
    assert_eq!(with(&[("BROWSER", " "), ("HOME", "/root")]), None);
}

#[test]
fn a_browser_that_cannot_start_does_not_stop_the_sign_in() {
    let ui = Captured::default();
    let hooks = Hooks {
        open: Box::new(|url: &str| {
            open_browser(url, &|var| (var == "BROWSER").then(|| "/nonexistent/browser".to_owned()))
        }),
        clock: Box::new(SystemClock),
        ui: Ui::new(Box::new(ui.clone()), false),
    };
    open(&hooks, "http://x/", true);
    assert!(
        ui.text().starts_with("(could not open a browser: cannot run /nonexistent/browser: "),
        "{}",
        ui.text()
    );
}

fn enroll_args(server: &FakeServer, env: Option<&str>, file: Option<&str>) -> EnrollArgs {
    EnrollArgs {
        server: server.url.clone(),
        setup_key_env: env.map(str::to_owned),
        setup_key_file: file.map(Into::into),
        name: Some("build-bot".into()),
    }
}

#[tokio::test]
async fn enroll_reads_the_key_from_the_environment_or_a_file() {
    let server = FakeServer::start().await;
    let (file, path, _dir) = session_file("enroll");
    let env = HashMap::from([("KEY", format!(" {SETUP_KEY}\n")), ("EMPTY", String::new())]);
    let lookup = |var: &str| env.get(var).cloned();
    let read = |args: &EnrollArgs, stdin: &str| {
        read_setup_key(args, &lookup, &mut stdin.as_bytes()).map_err(|e| format!("{e:#}"))
    };

    let by_env = enroll_args(&server, Some("KEY"), None);
    assert_eq!(read(&by_env, "").unwrap(), SETUP_KEY);
    expect!["environment variable MISSING is not set (or not UTF-8)"]
        .assert_eq(&read(&enroll_args(&server, Some("MISSING"), None), "").unwrap_err());
    expect!["environment variable EMPTY holds no setup key"]
        .assert_eq(&read(&enroll_args(&server, Some("EMPTY"), None), "").unwrap_err());
    let key_file = path.parent().unwrap().parent().unwrap().with_file_name("key.txt");
    std::fs::write(&key_file, format!("{SETUP_KEY}\n")).unwrap();
    let by_file = enroll_args(&server, None, key_file.to_str());
    assert_eq!(read(&by_file, "").unwrap(), SETUP_KEY);
    assert_eq!(
        read(&enroll_args(&server, None, Some("-")), "agentnet_sk_x\n").unwrap(),
        "agentnet_sk_x"
    );

    let out = enroll(&file, &by_env, SETUP_KEY.to_owned()).await.unwrap();
    assert_eq!(out, "Enrolled as agent build-bot, groups: ci\n");
    let sent: serde_json::Value =
        serde_json::from_str(&server.requests_to("/auth/enroll")[0].fields[""]).unwrap();
    assert_eq!(sent["setup_key"], SETUP_KEY);
    assert_eq!(sent["name"], "build-bot");
    let session = file.load().unwrap().unwrap();
    assert_eq!(
        (session.identity.kind.as_str(), session.server.as_str()),
        ("agent", server.url.as_str())
    );

    let err = enroll(&file, &by_env, "agentnet_sk_old".into()).await.unwrap_err().to_string();
    expect!["the setup key was refused: the setup key has expired (invalid_setup_key)"]
        .assert_eq(&err);
    // A failed enrollment leaves the stored session alone.
    assert_eq!(file.load().unwrap().unwrap(), session);
}

#[tokio::test]
async fn logout_ends_the_session_at_the_server_and_here() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("logout");
    assert_eq!(logout(&file).await.unwrap(), ("Not signed in\n".to_owned(), None));

    let session = Session::new(&server.url, server.issue(), unix_now().unwrap());
    file.save(&session).unwrap();
    assert_eq!(logout(&file).await.unwrap(), ("Signed out\n".to_owned(), None));
    assert_eq!(server.requests_to("/auth/revoke")[0].fields["token"], session.refresh_token);
    assert!(!server.lock().refresh_tokens.contains(&session.refresh_token));
    assert!(file.load().unwrap().is_none());

    // The server is gone: the session is forgotten here all the same, with a warning.
    let url = server.url.clone();
    file.save(&Session::new(&url, server.issue(), unix_now().unwrap())).unwrap();
    drop(server);
    let (out, warning) = logout(&file).await.unwrap();
    assert_eq!(out, "Signed out\n");
    let warning = warning.unwrap();
    assert!(
        warning.starts_with(&format!("could not tell the server at {url} to end the session (")),
        "{warning}"
    );
    assert!(warning.ends_with("; it ends by itself at 2030-01-01T00:00:00.000Z"), "{warning}");
    assert!(file.load().unwrap().is_none());
}

#[tokio::test]
async fn signing_in_again_ends_the_previous_session() {
    let server = FakeServer::start().await;
    let (file, _, _dir) = session_file("login-again");
    let old = Session::new(&server.url, server.issue(), unix_now().unwrap());
    file.save(&old).unwrap();
    server.lock().device_script.extend(["ok"]);
    let rig = rig(|_| {});
    // No --server: the stored session's server.
    let args = LoginArgs { server: None, browser: false, no_open: true };
    login(&file, &args, &rig.hooks).await.unwrap();
    assert_eq!(server.requests_to("/auth/revoke")[0].fields["token"], old.refresh_token);
    assert_eq!(file.load().unwrap().unwrap().refresh_token, "agentnet_rt_2");
}
