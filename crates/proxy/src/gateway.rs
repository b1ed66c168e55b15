//! The request handler and the AI listener.
//!
//! Lifecycle of one request: classify the path → authenticate the bearer token → read the body
//! (bounded) and its few facts → route to a provider → evaluate policies → build the upstream
//! request (credentials stripped, key injected, identity stamped) → stream the response back
//! through the meter → settle one usage record.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use bytes::Bytes;
use domain::{Api, Decision, Endpoint, Ledger, Principal, Refusal};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
};
use identity::{AuthError, SessionTable, TokenKind, TokenVerifier};
use llm::UsageTap;
use store::UsageRecord;
use thread_local::ThreadLocal;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    budget::{self, Hold},
    directory::{Directory, InFlight, InFlightRegistry},
    error::ProxyError,
    ingress::{classify, guess_api, Operation},
    meter::{Drains, Meter, MeteredBody, Registration, TapDecoder, Tapping},
    models,
    sink::UsageSink,
    snapshot::{Snapshot, SnapshotProvider},
    stamp::{self, AssertionSigner, Stamp},
    upstream::{self, HttpClient},
    BoxError, ProxyBody,
};

/// Limits and timeouts of the data plane.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Largest accepted request body.
    pub max_request_bytes: usize,
    pub connect_timeout: Duration,
    /// How long to wait for the upstream's response headers.
    pub response_timeout: Duration,
    /// How long a response stream may go without a byte.
    pub stream_idle_timeout: Duration,
    /// How long to keep reading an upstream stream after the client left, to bill it.
    pub disconnect_drain_timeout: Duration,
    /// How long in-flight requests may run on after shutdown begins before they are cut (and
    /// drained from upstream to be billed).
    pub shutdown_grace: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            max_request_bytes: 32 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(600),
            stream_idle_timeout: Duration::from_secs(300),
            disconnect_drain_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The data plane: shared by every connection of the AI listener.
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    /// Budget and rate counters; replaced whole when limits change (rebuilt from records).
    ledger: ArcSwap<Mutex<Ledger>>,
    /// SCIM-provisioned memberships, the source of people's groups when SCIM is on.
    directory: ArcSwap<Directory>,
    /// Responses still streaming, cut when their caller loses access.
    in_flight: Arc<InFlightRegistry>,
    verifier: Option<TokenVerifier>,
    /// Sessions agentnet issued (`agentnet login`, enrolled agents).
    sessions: Arc<SessionTable>,
    /// Upstream clients, one per thread (see [`Gateway::client`]).
    clients: ThreadLocal<HttpClient>,
    /// Drains of responses whose client hung up: shutdown waits for them to bill.
    drains: Drains,
    sink: UsageSink,
    signer: Option<Arc<AssertionSigner>>,
    settings: GatewaySettings,
}

/// Who is calling, as far as the listener knows before reading the request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The plain AI listener: the bearer token says who calls.
    Bearer,
    /// The overlay: the connection's source address is this peer's, and the tunnel proved it
    /// (WireGuard drops packets whose inner source is not the sending peer's). The principal is
    /// the peer's owner as registered; the directory and agent groups still apply per request.
    Peer(Principal),
    /// An overlay address that no live peer holds (revoked or expired a moment ago).
    UnknownPeer(std::net::Ipv4Addr),
}

/// A request that policies and limits let through.
struct Admitted {
    policy: String,
    groups: Vec<String>,
    hold: Option<Hold>,
    headroom: Vec<domain::Headroom>,
}

/// What is known about a request before it is forwarded; becomes its usage record.
struct Context {
    started: Instant,
    record: UsageRecord,
    api: Api,
}

impl Context {
    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Hands the record on (to the exchange), keeping what an error answer needs.
    fn hand_over(&mut self) -> Context {
        let skeleton = Context {
            started: self.started,
            record: UsageRecord { id: self.record.id.clone(), ..Default::default() },
            api: self.api,
        };
        std::mem::replace(self, skeleton)
    }
}

/// What the request handler decided: an answer of its own, or a request for the upstream.
enum Forward {
    Answered(Response<ProxyBody>),
    Upstream(Box<Exchange>),
}

/// A request ready for its upstream, owning all that its answer and its usage record need. It
/// runs as a task of its own: once the upstream has the request it will bill for it, so a client
/// hanging up (or a cut at shutdown) while the upstream works must not drop it unrecorded — the
/// task carries on and its answer, no longer wanted, is drained and billed like any abandoned
/// stream.
struct Exchange {
    request: Request<Full<Bytes>>,
    ctx: Context,
    call: UpstreamCall,
}

/// What answering from the upstream's response needs besides the record.
struct UpstreamCall {
    snapshot: Arc<Snapshot>,
    principal: Principal,
    provider: String,
    endpoint: Endpoint,
    stream: bool,
    inject_usage: bool,
    admitted: Admitted,
}

impl Gateway {
    pub fn new(
        settings: GatewaySettings,
        verifier: Option<TokenVerifier>,
        sessions: Arc<SessionTable>,
        sink: UsageSink,
        signer: Option<Arc<AssertionSigner>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            ledger: ArcSwap::from_pointee(Mutex::new(Ledger::new())),
            directory: ArcSwap::from_pointee(Directory::default()),
            in_flight: Arc::default(),
            clients: ThreadLocal::new(),
            drains: Drains::default(),
            verifier,
            sessions,
            sink,
            signer,
            settings,
        })
    }

    /// Replaces the configuration the data plane reads; in-flight requests keep the old one.
    /// With `history` (the usage records of the longest window), the budget counters are
    /// rebuilt from it; without, they carry over as they are.
    pub fn install(&self, snapshot: Snapshot, history: Option<&[UsageRecord]>) {
        if let Some(history) = history {
            let ledger = budget::rebuild(&snapshot, history);
            self.ledger.store(Arc::new(Mutex::new(ledger)));
        }
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Replaces the directory (SCIM memberships). Takes effect for the next request; streams of
    /// callers who are deactivated, or whose admitting policy no longer admits them, are cut.
    /// Returns how many streams were cut.
    pub fn install_directory(&self, directory: Directory) -> usize {
        self.directory.store(Arc::new(directory));
        let directory = self.directory.load();
        let snapshot = self.snapshot.load();
        let cut = self.in_flight.cut_unless(|stream| {
            let Some(principal) = directory.apply(stream.principal.clone()) else { return false };
            snapshot
                .rules
                .candidates(&principal, &stream.provider, stream.model.as_deref())
                .is_ok_and(|allowing| allowing.iter().any(|p| p.name == stream.policy))
        });
        if cut > 0 {
            tracing::info!(streams = cut, "cut streams of callers who lost access");
        }
        cut
    }

    /// `principal` as the directory (SCIM, local accounts) has them now: current groups, or
    /// `None` when deactivated. Sign-in and refresh ask this too.
    pub fn apply_directory(&self, principal: Principal) -> Option<Principal> {
        self.directory.load().apply(principal)
    }

    /// Identifies the caller of a self-service request by the same bearer token as AI requests.
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Principal, ProxyError> {
        let snapshot = self.snapshot.load_full();
        self.authenticate(headers, &snapshot).await
    }

    /// Where `principal` stands against every limit that applies to them.
    pub fn limit_status(&self, principal: &Principal) -> Vec<domain::LimitStatus> {
        let snapshot = self.snapshot.load();
        let ledger = self.ledger.load_full();
        let status = budget::lock(&ledger).status(budget::now_secs(), &snapshot.rules, principal);
        status
    }

    /// Whether `snapshot` changes any limit, so that counters must be rebuilt to install it.
    pub fn limits_changed(&self, snapshot: &Snapshot) -> bool {
        !self.snapshot.load().same_limits(snapshot)
    }

    /// Serves one request of the plain AI listener (the bearer token identifies the caller).
    /// Never fails: errors become responses in the called API's shape.
    pub async fn handle<B>(self: &Arc<Self>, req: Request<B>) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.handle_as(req, Caller::Bearer).await
    }

    /// Serves one request from `caller`. Never fails: errors become responses in the called
    /// API's shape.
    pub async fn handle_as<B>(
        self: &Arc<Self>,
        req: Request<B>,
        caller: Caller,
    ) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let request_id = ulid::Ulid::new().to_string().to_lowercase();
        let operation = classify(req.method(), req.uri().path(), req.headers());
        let (endpoint, explicit) = match operation {
            Operation::Probe => return probe_response(req.method()),
            Operation::Unknown => {
                let err = ProxyError::UnknownEndpoint {
                    method: req.method().to_string(),
                    path: req.uri().path().to_owned(),
                };
                return error_response(&err, guess_api(req.headers()), &request_id);
            }
            Operation::Ai { endpoint, explicit_provider } => (endpoint, explicit_provider),
        };
        let api = endpoint.api();
        let mut ctx = Context {
            started,
            api,
            record: UsageRecord {
                id: request_id.clone(),
                at_ms: unix_ms(SystemTime::now()),
                api: api.as_str().to_owned(),
                endpoint: endpoint.as_str().to_owned(),
                session_id: session_id(req.headers()),
                reason: "ok".to_owned(),
                ..Default::default()
            },
        };
        let span =
            tracing::info_span!("request", request_id = %request_id, endpoint = endpoint.as_str());
        async move {
            match self.forward(req, caller, endpoint, explicit, &mut ctx).await {
                Ok(Forward::Answered(response)) => response,
                Ok(Forward::Upstream(exchange)) => {
                    let gateway = self.clone();
                    let exchange = gateway.exchange(exchange).in_current_span();
                    // Tracked with the drains, so that a shutdown waits for it as for them.
                    match tokio::spawn(self.drains.tracker.track_future(exchange)).await {
                        Ok(response) => response,
                        Err(err) => self.refuse(ProxyError::Internal(Box::new(err)), ctx),
                    }
                }
                Err(err) => self.refuse(err, ctx),
            }
        }
        .instrument(span)
        .await
    }

    /// Answers with `err` and records the refusal.
    fn refuse(&self, err: ProxyError, mut ctx: Context) -> Response<ProxyBody> {
        if err.status().is_server_error() {
            tracing::warn!(error = %err, source = ?std::error::Error::source(&err), "request failed");
        } else {
            tracing::info!(error = %err, "request refused");
        }
        ctx.record.status = err.status().as_u16();
        ctx.record.reason = err.reason().to_owned();
        ctx.record.latency_ms = ctx.elapsed_ms();
        ctx.record.cost_micro_usd = Some(0);
        let response = error_response(&err, ctx.api, &ctx.record.id);
        self.sink.send(ctx.record);
        response
    }

    async fn forward<B>(
        self: &Arc<Self>,
        req: Request<B>,
        caller: Caller,
        endpoint: Endpoint,
        explicit: Option<String>,
        ctx: &mut Context,
    ) -> Result<Forward, ProxyError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let snapshot = self.snapshot.load_full();
        let principal = match caller {
            Caller::Bearer => self.authenticate(req.headers(), &snapshot).await?,
            Caller::Peer(principal) => {
                // The tunnel vouches for the machine, not for every program on it: a web page
                // that rebinds a name to the local forward would otherwise ride on it. Browsers
                // mark their requests (Origin, Sec-Fetch-*); API clients do not send those.
                if is_browser_request(req.headers()) {
                    return Err(ProxyError::BrowserRequest);
                }
                self.current(principal, &snapshot)?
            }
            Caller::UnknownPeer(address) => return Err(ProxyError::UnknownPeer(address)),
        };
        ctx.record.principal_kind = Some(principal.kind.as_str().to_owned());
        ctx.record.principal = Some(principal.name.clone());
        ctx.record.subject = Some(principal.subject.clone());
        ctx.record.groups = principal.groups.clone();

        let (parts, body) = req.into_parts();
        if let Endpoint::Models(api) = endpoint {
            let body = models::list(self, &snapshot, &principal, api, explicit.as_deref()).await;
            ctx.record.status = 200;
            ctx.record.cost_micro_usd = Some(0);
            ctx.record.latency_ms = ctx.elapsed_ms();
            let request_id = ctx.record.id.clone();
            self.sink.send(std::mem::take(&mut ctx.record));
            return Ok(Forward::Answered(json_response(StatusCode::OK, body, &request_id)));
        }

        let body = read_body(body, self.settings.max_request_bytes).await?;
        let facts = llm::request_facts(&body).map_err(|e| ProxyError::BadRequest {
            reason: "invalid_json",
            message: e.to_string(),
        })?;
        let model = facts.model.clone();
        if model.is_none() {
            return Err(ProxyError::BadRequest {
                reason: "model_missing",
                message: "the request body has no \"model\" field".to_owned(),
            });
        }
        ctx.record.model = model.clone();
        ctx.record.stream = facts.stream;

        let provider = domain::route(
            &snapshot.providers,
            endpoint.api(),
            model.as_deref(),
            explicit.as_deref(),
        )
        .map_err(ProxyError::Route)?;
        ctx.record.provider = Some(provider.name.clone());
        let upstream = snapshot.upstream(&provider.name).ok_or_else(|| {
            ProxyError::Route(domain::RouteError::UnknownProvider(provider.name.clone()))
        })?;
        let admitted = self.admit(&snapshot, &principal, upstream, endpoint, &facts)?;
        ctx.record.policy = Some(admitted.policy.clone());
        let groups = &admitted.groups;
        let (auth_name, auth_value) = upstream
            .auth
            .clone()
            .ok_or_else(|| ProxyError::NoProviderKey(provider.name.clone()))?;

        // The body goes upstream as the client sent it, with two documented exceptions.
        let inject_usage =
            endpoint == Endpoint::ChatCompletions && facts.stream && !facts.include_usage;
        let mut forward_body = body;
        if inject_usage {
            forward_body =
                llm::inject_include_usage(&forward_body).map(Bytes::from).map_err(|e| {
                    ProxyError::BadRequest { reason: "invalid_json", message: e.to_string() }
                })?;
        }
        if provider.stamping.enabled
            && provider.stamping.preset == domain::GatewayPreset::OpenRouter
        {
            forward_body =
                llm::set_user_field(&forward_body, &principal.name).map(Bytes::from).map_err(
                    |e| ProxyError::BadRequest { reason: "invalid_json", message: e.to_string() },
                )?;
        }

        let uri = upstream::upstream_uri(
            provider.kind,
            &provider.base_url,
            provider.azure_api_version.as_deref(),
            endpoint,
            model.as_deref(),
            parts.uri.query(),
        )
        .ok_or_else(|| {
            ProxyError::Internal(
                format!("provider '{}' has an invalid base URL", provider.name).into(),
            )
        })?;
        let mut headers = upstream::forward_headers(&parts.headers);
        headers.insert(auth_name, auth_value);
        if provider.stamping.enabled {
            let signer = self.signer.as_ref().filter(|_| provider.stamping.assertion);
            let assertion = signer.and_then(|s| {
                s.sign(&principal, groups, &provider.name, &ctx.record.id, SystemTime::now())
            });
            let stamp = Stamp { principal: &principal, groups, request_id: &ctx.record.id };
            stamp::stamp_headers(&mut headers, &stamp, provider.stamping.preset, assertion);
        }
        let mut upstream_req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(Full::new(forward_body))
            .map_err(|e| ProxyError::Internal(Box::new(e)))?;
        *upstream_req.headers_mut() = headers;
        Ok(Forward::Upstream(Box::new(Exchange {
            request: upstream_req,
            ctx: ctx.hand_over(),
            call: UpstreamCall {
                snapshot: snapshot.clone(),
                principal,
                provider: provider.name.clone(),
                endpoint,
                stream: facts.stream,
                inject_usage,
                admitted,
            },
        })))
    }

    /// Sends the request upstream and answers with its response, metered; an upstream that
    /// fails or times out is answered and recorded as such.
    async fn exchange(self: Arc<Self>, exchange: Box<Exchange>) -> Response<ProxyBody> {
        let Exchange { request, mut ctx, call } = *exchange;
        match self.send_upstream(request, &mut ctx, call).await {
            Ok(response) => response,
            Err(err) => self.refuse(err, ctx),
        }
    }

    async fn send_upstream(
        &self,
        upstream_req: Request<Full<Bytes>>,
        ctx: &mut Context,
        call: UpstreamCall,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let UpstreamCall {
            snapshot,
            principal,
            provider,
            endpoint,
            stream,
            inject_usage,
            admitted,
        } = call;
        let response = tokio::time::timeout(
            self.settings.response_timeout,
            self.client().request(upstream_req),
        )
        .await
        .map_err(|_| ProxyError::UpstreamTimeout {
            provider: provider.clone(),
            seconds: self.settings.response_timeout.as_secs(),
        })?
        .map_err(|source| ProxyError::UpstreamUnreachable { provider: provider.clone(), source })?;

        let (mut parts, incoming) = response.into_parts();
        ctx.record.status = parts.status.as_u16();
        let encoding = parts.headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
        let decoder = TapDecoder::for_encoding(encoding);
        let is_sse = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        // The usage chunk the gateway asked for is removed from a chat stream; a compressed one
        // is decoded for that (an encoding we cannot read passes through untouched).
        let tapping = if !endpoint.is_metered() {
            Tapping::Off
        } else if inject_usage && is_sse && decoder.readable() {
            Tapping::Filter(llm::ChatUsageFilter::new(), decoder)
        } else {
            Tapping::Tap(UsageTap::new(endpoint, stream && is_sse), decoder)
        };
        let (filtering, decoding) = match &tapping {
            Tapping::Filter(_, decoder) => (true, !matches!(decoder, TapDecoder::Identity)),
            _ => (false, false),
        };
        parts.headers = upstream::response_headers(&parts.headers, filtering);
        if decoding {
            parts.headers.remove(header::CONTENT_ENCODING);
        }
        parts.headers.insert("x-agentnet-request-id", header_value(&ctx.record.id));
        budget::headroom_headers(&admitted.headroom, &admitted.policy, &mut parts.headers);
        // Register the stream so that losing access (SCIM deactivation, group removal) cuts it.
        let cancel = CancellationToken::new();
        let id = self.in_flight.register(InFlight {
            principal: principal.clone(),
            provider: provider.clone(),
            model: ctx.record.model.clone(),
            policy: admitted.policy.clone(),
            cancel: cancel.clone(),
        });
        let registration = Registration { registry: self.in_flight.clone(), id };
        let meter = Meter {
            sink: self.sink.clone(),
            snapshot,
            record: std::mem::take(&mut ctx.record),
            started: ctx.started,
            tapping,
            hold: admitted.hold,
            registration: Some(registration),
        };
        let body = MeteredBody::new(
            incoming,
            meter,
            Some(cancel),
            self.settings.stream_idle_timeout,
            self.settings.disconnect_drain_timeout,
            self.drains.clone(),
        );
        Ok(Response::from_parts(parts, body.boxed_unsync()))
    }

    /// Policies, then limits: picks the policy to charge and reserves the request's estimate.
    /// Token counting is free: it needs a policy but is not charged to limits.
    fn admit(
        &self,
        snapshot: &Snapshot,
        principal: &Principal,
        upstream: &SnapshotProvider,
        endpoint: Endpoint,
        facts: &llm::RequestFacts,
    ) -> Result<Admitted, ProxyError> {
        let provider = upstream.provider.name.as_str();
        let model = facts.model.as_deref();
        let denied = |reason| ProxyError::Denied {
            reason,
            provider: provider.to_owned(),
            model: facts.model.clone(),
        };
        if !endpoint.is_metered() {
            return match domain::evaluate(snapshot.rules.policies(), principal, provider, model) {
                Decision::Allow { policy, groups } => {
                    Ok(Admitted { policy, groups, hold: None, headroom: Vec::new() })
                }
                Decision::Deny { reason } => Err(denied(reason)),
            };
        }
        let price = model.and_then(|m| upstream.prices.price(m));
        let request = domain::limits::Request {
            principal,
            provider,
            model,
            max_tokens: facts.max_tokens,
            estimate: budget::estimate(facts, endpoint, price),
        };
        let now = budget::now_secs();
        let ledger = self.ledger.load_full();
        let result = budget::lock(&ledger).admit(now, &snapshot.rules, &request);
        match result {
            Ok(admission) => Ok(Admitted {
                policy: admission.policy,
                groups: admission.groups,
                hold: Some(Hold::new(ledger, admission.reservation)),
                headroom: admission.headroom,
            }),
            Err(Refusal::Policy(reason)) => Err(denied(reason)),
            Err(refusal) => Err(ProxyError::Refused { refusal: Box::new(refusal), now }),
        }
    }

    /// Resolves the caller from the bearer token; agents get the groups an admin gave them.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        snapshot: &Snapshot,
    ) -> Result<Principal, ProxyError> {
        let token = identity::bearer_token(headers)
            .ok_or(ProxyError::Unauthenticated(AuthError::Missing))?;
        let now = SystemTime::now();
        let principal = if TokenKind::of(token) == Some(TokenKind::Access) {
            // A session agentnet issued: a digest and a map lookup; revoked ones are gone.
            self.sessions
                .verify(token, unix_ms(now))
                .map_err(ProxyError::Unauthenticated)?
                .principal
        } else {
            let Some(verifier) = &self.verifier else {
                return Err(ProxyError::IdentityNotConfigured);
            };
            verifier.verify(token, now).await.map_err(|e| match e {
                AuthError::IdpUnavailable => ProxyError::IdpUnavailable(e),
                e => ProxyError::Unauthenticated(e),
            })?
        };
        self.current(principal, snapshot)
    }

    /// `principal` as of now: with SCIM or local accounts, the directory decides people's groups
    /// and whether they are active; agents get the groups the configuration gives them.
    fn current(&self, principal: Principal, snapshot: &Snapshot) -> Result<Principal, ProxyError> {
        let mut principal =
            self.directory.load().apply(principal).ok_or(ProxyError::Deactivated)?;
        if principal.kind == domain::PrincipalKind::Agent {
            if let Some(groups) = snapshot.agent_groups.get(&principal.name) {
                principal.groups.extend(groups.iter().cloned());
                principal.groups.sort();
                principal.groups.dedup();
            }
        }
        Ok(principal)
    }

    /// This thread's upstream client. Each thread keeps its own connection pool, so that a
    /// request and the pooled connection that carries it are served by the same thread (with
    /// one runtime per core, they never cross threads).
    pub(crate) fn client(&self) -> &HttpClient {
        self.clients.get_or(|| upstream::http_client(self.settings.connect_timeout))
    }
}

async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::PayloadTooLarge { limit })
        }
        Err(err) => Err(ProxyError::BadRequest {
            reason: "body_read_failed",
            message: format!("could not read the request body: {err}"),
        }),
    }
}

/// Whether a browser sent the request (it adds `Origin` to cross-origin and POST requests, and
/// `Sec-Fetch-*` to all of them).
fn is_browser_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        || headers.contains_key("sec-fetch-mode")
        || headers.contains_key("sec-fetch-site")
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    ["x-claude-code-session-id", "session-id"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect())
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(0)).unwrap_or(0)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

fn json_response(status: StatusCode, body: Vec<u8>, request_id: &str) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-agentnet-request-id", header_value(request_id));
    response
}

fn error_response(err: &ProxyError, api: Api, request_id: &str) -> Response<ProxyBody> {
    let mut response = json_response(err.status(), err.body(api), request_id);
    let headers = response.headers_mut();
    headers.insert("x-agentnet-reason", HeaderValue::from_static(err.reason()));
    if err.status() == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(secs) = err.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn probe_response(method: &Method) -> Response<ProxyBody> {
    let body: &'static [u8] = if method == Method::HEAD { b"" } else { b"agentnet AI endpoint\n" };
    let mut response = Response::new(full(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Serves the AI listener until `shutdown`, on one single-threaded runtime per core, all
/// accepting from the same socket: a connection, its requests and their pooled upstream
/// connections stay on the thread that accepted it, with no hand-offs between threads (a
/// multi-threaded runtime spent ~40 % more CPU per request on them; BENCHMARKS.md). On shutdown
/// each thread ends its connections with [`finish_in_flight`].
pub async fn run_ai_listener(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(error = %err, "cannot hand the AI listener to its threads");
            return;
        }
    };
    // The threads log where the code that started them logs (a scoped subscriber included).
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let mut finished = Vec::with_capacity(threads);
    for index in 0..threads {
        let (done, finished_rx) = tokio::sync::oneshot::channel::<()>();
        let socket = match listener.try_clone() {
            Ok(socket) => socket,
            Err(err) => {
                tracing::error!(error = %err, "cannot share the AI listener between threads");
                break;
            }
        };
        let (gateway, shutdown, dispatch) = (gateway.clone(), shutdown.clone(), dispatch.clone());
        let spawned =
            std::thread::Builder::new().name(format!("agentnet-ai-{index}")).spawn(move || {
                let _logs = tracing::dispatcher::set_default(&dispatch);
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime.block_on(serve_ai_thread(gateway, socket, shutdown)),
                    Err(err) => tracing::error!(error = %err, "cannot start an AI listener thread"),
                }
                drop(done);
            });
        match spawned {
            Ok(_) => finished.push(finished_rx),
            Err(err) => tracing::error!(error = %err, "cannot start an AI listener thread"),
        }
    }
    if finished.is_empty() {
        // No thread could start: serve here rather than run on without an AI endpoint.
        tracing::warn!("serving the AI listener on the main runtime");
        serve_ai_thread(gateway, listener, shutdown).await;
        return;
    }
    // Each thread holds its own descriptor of the socket and closes it when shutdown begins;
    // this one must not keep the port accepting connections that nobody serves.
    drop(listener);
    for thread in finished {
        let _ = thread.await;
    }
}

/// One AI listener thread: accepts, serves, and on shutdown drains (see [`run_ai_listener`]).
async fn serve_ai_thread(
    gateway: Arc<Gateway>,
    socket: std::net::TcpListener,
    shutdown: CancellationToken,
) {
    let listener = match TcpListener::from_std(socket) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen on the AI listener's socket");
            return;
        }
    };
    let graceful = GracefulShutdown::new();
    let cut = CancellationToken::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        serve_connection(gateway.clone(), stream, || Caller::Bearer, &graceful, Some(cut.clone()));
    }
    drop(listener);
    finish_in_flight(&gateway, graceful, || cut.cancel(), "AI listener").await;
}

/// Ends a listener's connections at shutdown (its accept loop has stopped): requests in flight
/// may finish within `shutdown_grace`; then `cut_all` cuts what is left, while the calling
/// runtime still runs, so that each cut response's drain starts there and bills it (dropped with
/// the runtime, it would not); then it waits for the drains, bounded by
/// `disconnect_drain_timeout`. Call it on the runtime that served the connections.
pub async fn finish_in_flight(
    gateway: &Gateway,
    graceful: GracefulShutdown,
    cut_all: impl FnOnce(),
    listener: &str,
) {
    let grace = gateway.settings.shutdown_grace;
    let finishing = graceful.shutdown();
    tokio::pin!(finishing);
    if tokio::time::timeout(grace, &mut finishing).await.is_err() {
        tracing::warn!(
            listener,
            ?grace,
            "in-flight requests did not finish within the shutdown grace: cutting them (what \
             they used is still drained from upstream and billed)"
        );
        gateway.drains.start_cutting();
        cut_all();
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut finishing).await;
    }
    gateway.drains.tracker.close();
    let bound = gateway.settings.disconnect_drain_timeout + Duration::from_secs(5);
    if tokio::time::timeout(bound, gateway.drains.tracker.wait()).await.is_err() {
        tracing::warn!(listener, "responses being drained to bill them did not finish at shutdown");
    }
}

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP/1.1 and HTTP/2 on one accepted connection in a task of its own, watched by
/// `graceful`. `caller` is asked for every request (not once per connection), so that a
/// revocation or a group change applies to the next request on a kept-alive connection too.
/// Cancelling `cut` drops the connection at once, whatever it is doing.
pub fn serve_connection<I, F>(
    gateway: Arc<Gateway>,
    io: I,
    caller: F,
    graceful: &GracefulShutdown,
    cut: Option<CancellationToken>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn() -> Caller + Send + Sync + 'static,
{
    let caller = Arc::new(caller);
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let gateway = gateway.clone();
        let caller = caller();
        async move { Ok::<_, std::convert::Infallible>(gateway.handle_as(req, caller).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client gets 30 s (hyper's default, which needs a timer) to send a request's headers, so
    // that idle or trickling connections do not hold sockets forever.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
    let conn = graceful.watch(conn);
    let cut = cut.unwrap_or_default();
    tokio::spawn(async move {
        tokio::select! {
            ended = conn => if let Err(err) = ended {
                tracing::debug!(error = %err, "connection ended with an error");
            },
            () = cut.cancelled() => tracing::debug!("connection cut"),
        }
    });
}
