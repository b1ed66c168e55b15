//! The command line, declared with clap's derive API. Parsing only: the commands live in
//! `login` (login, enroll, logout), `whoami` (whoami, token), `peers` (peer), `admin`, `usage`
//! and `setup`.

use std::path::PathBuf;

use api_types::{GatewayPreset, Limit, LimitPer, ProviderKind};
use clap::{
    builder::PossibleValuesParser, builder::TypedValueParser, ArgGroup, Args, Parser, Subcommand,
};

/// Where the gateway's AI endpoint listens by default.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4000";

/// Where the gateway's admin listener (health, JWKS, the self-service view) listens by default.
pub(crate) const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:4001";

/// agentnet: a keyless access plane for AI agents and the people who run them.
#[derive(Debug, Parser)]
#[command(name = "agentnet", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway: admin API and AI proxy in one process.
    Server {
        /// The server's config file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Sign in to a gateway.
    ///
    /// By default with a code you enter in a browser (on this machine or any other), or with
    /// --browser through a browser on this machine. The session is kept in your config directory
    /// (agentnet/session.json, readable only by you).
    Login(LoginArgs),
    /// Sign out: end the session at the server and forget it here.
    Logout,
    /// Who you are signed in as, at which server, and until when.
    Whoami {
        /// Print the server's JSON answer (`/api/v1/me`) instead.
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token of your session, refreshing it when needed.
    ///
    /// The token command for tools such as Claude Code (`agentnet setup claude-code`).
    Token,
    /// Enroll this machine as an agent, with a setup key.
    ///
    /// The key comes from `agentnet admin setup-keys create` and is read from an environment
    /// variable or a file, never from the command line.
    Enroll(EnrollArgs),
    /// Manage providers, groups, agents, policies, accounts, setup keys and sessions, and read
    /// usage, through a running server.
    Admin(AdminArgs),
    /// Your own usage: the caps that apply to you with what is used and left, your spend over
    /// the last 24 hours and 30 days, and your recent requests.
    Usage(UsageArgs),
    /// Join the gateway's WireGuard overlay: register this device and run the tunnel here,
    /// without privileges, forwarding a local port to the AI endpoint. Tools then need only a
    /// base URL (ANTHROPIC_BASE_URL=http://127.0.0.1:4000): no key, no token.
    Up(UpArgs),
    /// Stop the tunnel `agentnet up -d` started.
    Down,
    /// Whether the tunnel is up: the local forward, overlay address, last handshake, traffic.
    Status {
        /// Print the state as JSON.
        #[arg(long)]
        json: bool,
    },
    /// This device on the gateway's WireGuard overlay: register it, list or remove your
    /// devices.
    Peer(PeerArgs),
    /// Point a client tool at the gateway.
    Setup {
        #[command(subcommand)]
        tool: SetupTool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The gateway's admin listener [default: the server of your current session, else
    /// http://127.0.0.1:4001].
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// Sign in through a browser on this machine (auth code + PKCE, answered on a loopback
    /// port) instead of entering a code.
    #[arg(long)]
    pub(crate) browser: bool,
    /// Do not open a browser; only print the link.
    #[arg(long)]
    pub(crate) no_open: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("setup_key").required(true).args(["setup_key_env", "setup_key_file"])))]
pub(crate) struct EnrollArgs {
    /// The gateway's admin listener.
    #[arg(long, value_name = "URL")]
    pub(crate) server: String,
    /// The environment variable holding the setup key.
    #[arg(long, value_name = "VAR")]
    pub(crate) setup_key_env: Option<String>,
    /// A file holding the setup key; `-` reads it from stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) setup_key_file: Option<PathBuf>,
    /// The agent's name (not needed when the key is bound to an agent).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("token").args(["token_env", "token_command"])))]
pub(crate) struct UsageArgs {
    /// The gateway's admin listener, which serves the self-service view (`/api/v1/me`)
    /// [default: the server of your `agentnet login` session, else http://127.0.0.1:4001].
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// The environment variable holding your access token: the one your AI clients send
    /// [default: your `agentnet login` session].
    #[arg(long, value_name = "VAR")]
    pub(crate) token_env: Option<String>,
    /// A command that prints your access token (run with `sh -c`), e.g. the one given to
    /// `agentnet setup claude-code --token-command`.
    #[arg(long, value_name = "CMD")]
    pub(crate) token_command: Option<String>,
    /// Print the server's JSON answer instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The local address forwarded to the AI endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4000")]
    pub(crate) listen: std::net::SocketAddr,
    /// This device's name on the gateway [default: the host name].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Run in the background (`agentnet status`, `agentnet down`).
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Create a kernel interface instead of the userspace tunnel (needs root or
    /// CAP_NET_ADMIN): the overlay is routed to it, and programs use the AI endpoint's overlay
    /// address (http://100.64.0.1) directly.
    #[arg(long)]
    pub(crate) tun: bool,
    /// The kernel interface's name, with --tun.
    #[arg(long, value_name = "NAME", default_value = "agentnet0", requires = "tun")]
    pub(crate) interface: String,
}

#[derive(Debug, Args)]
pub(crate) struct PeerArgs {
    /// The gateway's admin listener [default: the server of your `agentnet login` session].
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) server: Option<String>,
    #[command(subcommand)]
    pub(crate) command: PeerCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PeerCommand {
    /// Register this device and print its WireGuard configuration (a wg-quick file).
    ///
    /// The device's key is made on first use and kept in your config directory
    /// (agentnet/wireguard.key, readable only by you); only its public half is sent. Uses your
    /// `agentnet login` (or `agentnet enroll`) session; running it again renews the
    /// registration and keeps the device's address.
    Config {
        /// The device's name [default: this machine's host name].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Write the configuration to FILE (readable only by you) instead of printing it.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List your registered devices.
    List {
        /// Print the server's JSON answer instead.
        #[arg(long)]
        json: bool,
    },
    /// Remove one of your devices: its tunnel stops working.
    Remove {
        /// The device's peer id (`agentnet peer list`).
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The server's admin socket [default: DATA_DIR/admin.sock].
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        conflicts_with = "data_dir",
        help_heading = "Server connection"
    )]
    pub(crate) socket: Option<PathBuf>,
    /// The server's data directory, where its admin socket is.
    #[arg(
        long,
        value_name = "DIR",
        global = true,
        default_value = "./agentnet-data",
        help_heading = "Server connection"
    )]
    pub(crate) data_dir: PathBuf,
    /// A remote server's admin listener, e.g. https://agentnet.example.com:4001, instead of the
    /// socket; you authenticate with your `agentnet login` session and must be in the server's
    /// admin group.
    #[arg(
        long,
        value_name = "URL",
        global = true,
        conflicts_with_all = ["socket", "data_dir"],
        help_heading = "Server connection"
    )]
    pub(crate) url: Option<String>,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true, help_heading = "Server connection")]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: AdminCommand,
}

impl AdminArgs {
    pub(crate) fn socket_path(&self) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| self.data_dir.join("admin.sock"))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Upstream LLM APIs and their keys.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Groups of the local directory.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Non-human identities.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Who may use which provider and model (default deny), with their caps.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Global limits: spend, token and rate caps checked before any policy.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Requests, tokens and cost per principal.
    Usage(UsageFilters),
    /// The request log: one line per request, with status and reason.
    Logs(UsageFilters),
    /// The audit log: who changed what, and when, newest first; with --json, each record
    /// before and after the change.
    Audit(AuditFilters),
    /// SCIM provisioning: the token your IdP (Okta, Entra ID, …) pushes users and groups with.
    #[command(subcommand)]
    Scim(ScimCommand),
    /// Local accounts: the people who sign in with a password when no external IdP is
    /// configured.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Setup keys: what agents enroll with (`agentnet enroll`).
    #[command(subcommand)]
    SetupKeys(SetupKeysCommand),
    /// Sign-in sessions of people and agents: list them, revoke them.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// WireGuard overlay peers: people's and agents' registered devices.
    #[command(subcommand)]
    Peers(PeersCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum PeersCommand {
    /// List live peers, newest first.
    List {
        /// Only this person's (email) or agent's peers.
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
        /// Include revoked and expired peers.
        #[arg(long)]
        all: bool,
    },
    /// Rename a peer.
    Rename {
        /// The peer's id.
        id: String,
        /// Its new name: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'.
        name: String,
    },
    /// Revoke a peer: its tunnel stops working at once.
    Revoke {
        /// The peer's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// List local accounts.
    List,
    /// Show one local account.
    Show { name: String },
    /// Add a local account. Without --password-stdin the server generates a password, printed
    /// once.
    Create(UserCreate),
    /// Change a local account; what is not given is kept. Deactivating it (or changing its
    /// email) ends its sessions.
    Update(UserUpdate),
    /// Remove a local account; its sessions end.
    Delete { name: String },
    /// Set a local account's password (its sessions end). Without --password-stdin the server
    /// generates one, printed once.
    SetPassword {
        name: String,
        /// Read the password from stdin (typed at a hidden prompt, or piped).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct UserCreate {
    /// The login name.
    pub(crate) name: String,
    /// What logs, usage and policies know the person by.
    #[arg(long, value_name = "EMAIL")]
    pub(crate) email: String,
    #[arg(long, value_name = "NAME")]
    pub(crate) display_name: Option<String>,
    /// A group the person is in (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// Read the initial password from stdin (typed at a hidden prompt, or piped) instead of
    /// having the server generate one.
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UserUpdate {
    pub(crate) name: String,
    #[arg(long, value_name = "EMAIL")]
    pub(crate) email: Option<String>,
    /// The display name; an empty one removes it.
    #[arg(long, value_name = "NAME")]
    pub(crate) display_name: Option<String>,
    /// The person's groups, replacing the current ones (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// Remove the person from every group.
    #[arg(long, conflicts_with = "groups")]
    pub(crate) no_groups: bool,
    /// Let the person sign in again.
    #[arg(long)]
    pub(crate) activate: bool,
    /// Stop the person from signing in, and end their sessions.
    #[arg(long, conflicts_with = "activate")]
    pub(crate) deactivate: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SetupKeysCommand {
    /// List setup keys (never the keys themselves).
    List,
    /// Show one setup key.
    Show { name: String },
    /// Create a setup key; the key is printed once.
    Create(SetupKeyCreate),
    /// Revoke a setup key: it enrolls no more agents.
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub(crate) struct SetupKeyCreate {
    pub(crate) name: String,
    /// Enroll as this existing agent; without it, each enrolling agent names itself and is
    /// created.
    #[arg(long, value_name = "AGENT")]
    pub(crate) agent: Option<String>,
    /// A group given to the agents the key creates (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// How many enrollments it allows [default: 1].
    #[arg(long, value_name = "N")]
    pub(crate) uses: Option<u32>,
    /// How long it stays valid: 30m, 24h, 7d (at most 365d) [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = expires_in)]
    pub(crate) expires_in: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List live sessions, newest first.
    List {
        /// Only this person's (email) or agent's sessions.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Include revoked and expired sessions.
        #[arg(long)]
        all: bool,
    },
    /// Revoke one session by id, or with --name every live session of a person or agent.
    #[command(group(ArgGroup::new("which").required(true).args(["id", "name"])))]
    Revoke {
        /// The session's id.
        id: Option<String>,
        /// The person (email) or agent whose sessions to revoke.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProvidersCommand {
    /// List providers.
    List,
    /// Show one provider.
    Show { name: String },
    /// Add a provider (set its key afterwards with `set-key`).
    Add(ProviderAdd),
    /// Set a provider's key, read from stdin (or an environment variable), never from the
    /// command line.
    SetKey {
        name: String,
        /// Read the key from this environment variable instead of stdin.
        #[arg(long, value_name = "VAR")]
        from_env: Option<String>,
    },
    /// Remove a provider and its key.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub(crate) struct ProviderAdd {
    pub(crate) name: String,
    /// What kind of upstream it is.
    #[arg(long, value_parser = kind_parser())]
    pub(crate) kind: ProviderKind,
    /// Base URL, e.g. https://api.anthropic.com or https://openrouter.ai/api/v1.
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: String,
    /// A model name or `*` pattern it serves (repeatable); none means any model.
    #[arg(long = "model", value_name = "MODEL")]
    pub(crate) models: Vec<String>,
    /// The API it answers, `anthropic` or `openai` (repeatable) [default: by kind].
    #[arg(long = "api", value_name = "API", value_parser = api_parser())]
    pub(crate) apis: Vec<api_types::Api>,
    /// The gateway in front of the provider that should see the caller's identity.
    #[arg(long, value_parser = preset_parser(), default_value = "none")]
    pub(crate) preset: GatewayPreset,
    /// Send no identity upstream at all.
    #[arg(long)]
    pub(crate) no_stamping: bool,
    /// Stamp the plain identity headers but no signed assertion (for an upstream that never
    /// verifies it; saves a signature per request).
    #[arg(long, conflicts_with = "no_stamping")]
    pub(crate) no_assertion: bool,
    /// Azure OpenAI's api-version (azure-openai only).
    #[arg(long, value_name = "VERSION")]
    pub(crate) azure_api_version: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// List groups.
    List,
    /// Add a group.
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Remove a group.
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentsCommand {
    /// List agents.
    List,
    /// Add an agent.
    Add {
        name: String,
        /// A group it belongs to (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Remove an agent.
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PoliciesCommand {
    /// List policies.
    List,
    /// Show one policy.
    Show { name: String },
    /// Add a policy: its sources may use its providers (and only its models, if given).
    Add(PolicyAdd),
    /// Remove a policy.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub(crate) struct PolicyAdd {
    pub(crate) name: String,
    /// A source group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// A source user, by email (repeatable).
    #[arg(long = "user", value_name = "EMAIL")]
    pub(crate) users: Vec<String>,
    /// A source agent (repeatable).
    #[arg(long = "agent", value_name = "AGENT")]
    pub(crate) agents: Vec<String>,
    /// Every authenticated caller.
    #[arg(long)]
    pub(crate) everyone: bool,
    /// A provider it opens (repeatable, at least one).
    #[arg(long = "provider", value_name = "PROVIDER", required = true)]
    pub(crate) providers: Vec<String>,
    /// An allowed model or `*` pattern (repeatable); none means every model.
    #[arg(long = "model", value_name = "MODEL")]
    pub(crate) models: Vec<String>,
    /// The largest `max_tokens` a request may ask for (requests that set none are refused).
    #[arg(long, value_name = "N")]
    pub(crate) max_tokens: Option<u64>,
    /// A cap (repeatable), e.g. spend=500,per=user,window=30d or tokens=400000,window=1m or
    /// requests=60,per=group,window=1m; per defaults to user.
    #[arg(long = "limit", value_name = "SPEC", value_parser = limit_spec)]
    pub(crate) limits: Vec<Limit>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LimitsCommand {
    /// List global limits.
    List,
    /// Show one global limit.
    Show { name: String },
    /// Add a global limit: a cap for everyone it targets, checked before any policy.
    Add(LimitAdd),
    /// Remove a global limit.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub(crate) struct LimitAdd {
    pub(crate) name: String,
    /// Every authenticated caller.
    #[arg(long)]
    pub(crate) everyone: bool,
    /// A target group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// A target user, by email (repeatable).
    #[arg(long = "user", value_name = "EMAIL")]
    pub(crate) users: Vec<String>,
    /// A target agent (repeatable).
    #[arg(long = "agent", value_name = "AGENT")]
    pub(crate) agents: Vec<String>,
    /// The cap, e.g. spend=500,per=user,window=30d or requests=60,per=group,window=1m; per
    /// defaults to user.
    #[arg(long = "limit", value_name = "SPEC", value_parser = limit_spec, required = true)]
    pub(crate) limit: Limit,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct UsageFilters {
    /// Email or agent name.
    #[arg(long)]
    pub(crate) principal: Option<String>,
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// The policy that admitted (and was charged for) the requests.
    #[arg(long)]
    pub(crate) policy: Option<String>,
    #[arg(long)]
    pub(crate) provider: Option<String>,
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// `ok`, or a failure reason such as `no_policy`.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// An RFC 3339 time, or a duration back from now: 30m, 24h, 7d, 2w.
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// An RFC 3339 time, or a duration back from now.
    #[arg(long, value_name = "WHEN")]
    pub(crate) until: Option<String>,
    /// At most this many records (logs) or principals (usage).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScimCommand {
    /// Create the SCIM token and turn SCIM provisioning on; the token is printed once, and any
    /// previous one stops working.
    Token,
    /// Turn SCIM provisioning off: the SCIM token stops working. Provisioned users and groups
    /// are kept.
    Disable,
    /// Whether SCIM provisioning is on, and since when.
    Status,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AuditFilters {
    /// Who made the change: uid:0 (the admin socket's peer), an admin's email, scim.
    #[arg(long, value_name = "ACTOR")]
    pub(crate) actor: Option<String>,
    /// A prefix of the action: provider, provider.key.set, policy.update, scim.
    #[arg(long, value_name = "PREFIX")]
    pub(crate) action: Option<String>,
    /// The kind of record changed: provider, group, agent, policy, limit, user.
    #[arg(long, value_name = "KIND")]
    pub(crate) target_kind: Option<String>,
    /// The record's name or id.
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// An RFC 3339 time, or a duration back from now: 30m, 24h, 7d, 2w.
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// An RFC 3339 time, or a duration back from now.
    #[arg(long, value_name = "WHEN")]
    pub(crate) until: Option<String>,
    /// At most this many entries (default 100, at most 1000).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SetupTool {
    /// Write ~/.claude/settings.json so that Claude Code talks to the gateway.
    ClaudeCode {
        /// The gateway's AI endpoint.
        #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT)]
        endpoint: String,
        /// A command that prints the token Claude Code sends [default: `agentnet token`, the
        /// access token of your `agentnet login` session].
        #[arg(long, value_name = "CMD", conflicts_with = "overlay")]
        token_command: Option<String>,
        /// Through `agentnet up`'s local forward: the tunnel identifies you, so no token is
        /// configured (Claude Code insists on some credential; it gets a fixed, non-secret
        /// placeholder that the gateway ignores and never forwards).
        #[arg(long)]
        overlay: bool,
        /// Show what would change without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write ~/.codex/config.toml (or $CODEX_HOME/config.toml) so that Codex talks to the
    /// gateway.
    Codex {
        /// The gateway's AI endpoint.
        #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT)]
        endpoint: String,
        /// The environment variable whose value Codex sends as its bearer token.
        #[arg(long, value_name = "VAR")]
        token_env: Option<String>,
        /// The model Codex asks for (`model` in config.toml). Set it to a model your policies
        /// allow and Codex knows: with a custom provider, Codex offers its tools only for models
        /// it knows (e.g. gpt-5.5).
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
        /// Show what would change without writing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn kind_parser() -> impl TypedValueParser<Value = ProviderKind> {
    PossibleValuesParser::new(ProviderKind::ALL.map(ProviderKind::as_str))
        .map(|s| ProviderKind::parse(&s).unwrap_or(ProviderKind::OpenAiCompatible))
}

fn preset_parser() -> impl TypedValueParser<Value = GatewayPreset> {
    PossibleValuesParser::new(GatewayPreset::ALL.map(GatewayPreset::as_str))
        .map(|s| GatewayPreset::parse(&s).unwrap_or_default())
}

fn api_parser() -> impl TypedValueParser<Value = api_types::Api> {
    PossibleValuesParser::new(api_types::Api::ALL.map(api_types::Api::as_str))
        .map(|s| api_types::Api::parse(&s).unwrap_or(api_types::Api::OpenAi))
}

/// Checks an `--expires-in` duration (`30m`, `24h`, `7d`); its range is the server's to check.
fn expires_in(value: &str) -> Result<String, String> {
    match api_types::parse_window(value) {
        Ok(_) => Ok(value.to_owned()),
        Err(_) => Err(format!(
            "'{value}' is not a duration: use a whole number and a unit s, m, h or d, e.g. 30m, 24h, 7d"
        )),
    }
}

/// Parses a limit SPEC: comma-separated `key=value` pairs, exactly one of `spend` (USD, also
/// `spend_usd`), `tokens` or `requests`, then `window` (required: `1m`, `24h`, `30d`, …) and
/// `per` (`user` or `group`, default `user`). Ranges (a window of at least a minute, the
/// spend's maximum) are the server's to check.
pub(crate) fn limit_spec(spec: &str) -> Result<Limit, String> {
    const KEYS: &str = "spend, tokens, requests, per, window";
    let mut limit = Limit {
        spend_usd: None,
        tokens: None,
        requests: None,
        per: LimitPer::User,
        window: String::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| format!("'{part}' is not key=value (keys: {KEYS})"))?;
        let key = if key == "spend_usd" { "spend" } else { key };
        if seen.contains(&key) {
            return Err(format!("'{key}' is given twice"));
        }
        seen.push(key);
        let count = |what: &str| {
            value.parse::<u64>().map_err(|_| format!("{what}={value}: expected a whole number"))
        };
        match key {
            "spend" => {
                let usd: f64 = value
                    .strip_prefix('$')
                    .unwrap_or(value)
                    .parse()
                    .ok()
                    .filter(|usd: &f64| usd.is_finite() && *usd >= 0.0)
                    .ok_or_else(|| {
                        format!("spend={value}: expected an amount of USD, e.g. 500 or 12.50")
                    })?;
                limit.spend_usd = Some(usd);
            }
            "tokens" => limit.tokens = Some(count("tokens")?),
            "requests" => limit.requests = Some(count("requests")?),
            "per" => {
                limit.per = LimitPer::parse(value)
                    .ok_or_else(|| format!("per={value}: expected user or group"))?;
            }
            "window" => {
                api_types::parse_window(value).map_err(|e| format!("window: {e}"))?;
                limit.window = value.to_owned();
            }
            other => return Err(format!("unknown key '{other}' (keys: {KEYS})")),
        }
    }
    let metrics = ["spend", "tokens", "requests"].into_iter().filter(|m| seen.contains(m)).count();
    if metrics != 1 {
        return Err(
            "set exactly one of spend=USD, tokens=N or requests=N, e.g. spend=500,window=30d"
                .to_owned(),
        );
    }
    if limit.window.is_empty() {
        return Err("window is required, e.g. window=30d (units s, m, h, d)".to_owned());
    }
    Ok(limit)
}

#[cfg(test)]
mod tests;
