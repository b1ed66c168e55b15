//! `agentnet admin users|setup-keys|sessions`: local accounts (people who sign in with a
//! password when no external IdP is configured), the setup keys agents enroll with, and the
//! sessions agentnet issued. A generated password and a new setup key are in the server's answer
//! once, so they are printed once, with a note saying so.

#[cfg(test)]
mod tests;

use anyhow::bail;
use api_types::{
    LocalUser, LocalUserCreated, LocalUserInput, PasswordInput, Session, SessionsRevoked, SetupKey,
    SetupKeyCreated, SetupKeyInput,
};

use super::{
    client::{segment, Answer, Client},
    list, or_dash,
    table::Table,
    with_query,
};
use crate::args::{SessionsCommand, SetupKeysCommand, UserUpdate, UsersCommand};

/// The human rendering of an answer, or with `--json` the answer itself.
fn out(
    answer: Answer,
    json: bool,
    human: impl FnOnce(&Answer) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    if json {
        Ok(format!("{}\n", answer.pretty()))
    } else {
        human(&answer)
    }
}

/// `agentnet admin users …`; `read_password` reads a password for the named account.
pub(super) async fn users(
    client: &Client,
    command: UsersCommand,
    json: bool,
    read_password: &dyn Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let path = |name: &str| format!("/users/{}", segment(name));
    match command {
        UsersCommand::List => out(client.get("/users").await?, json, |a| {
            Ok(users_table(&a.decode::<Vec<LocalUser>>()?))
        }),
        UsersCommand::Show { name } => {
            out(client.get(&path(&name)).await?, json, |a| Ok(user_details(&a.decode()?)))
        }
        UsersCommand::Create(create) => {
            let password =
                if create.password_stdin { Some(read_password(&create.name)?) } else { None };
            let input = LocalUserInput {
                username: Some(create.name),
                email: create.email,
                display_name: create.display_name,
                groups: create.groups,
                active: None,
                password,
            };
            out(client.post("/users", &input).await?, json, |a| {
                let created: LocalUserCreated = a.decode()?;
                let user = &created.user;
                let mut text = format!("added user '{}' ({})\n", user.username, user.email);
                if let Some(password) = &created.generated_password {
                    text.push_str(&password_note(password));
                }
                Ok(text)
            })
        }
        UsersCommand::Update(update) => {
            let current: LocalUser = client.get(&path(&update.name)).await?.decode()?;
            let input = updated(&current, &update)?;
            let deactivated = current.active && input.active == Some(false);
            let answer = client.put(&path(&update.name), &input).await?;
            out(answer, json, |a| {
                let user: LocalUser = a.decode()?;
                Ok(if deactivated {
                    format!(
                        "updated user '{}': deactivated, their sessions are revoked\n",
                        user.username
                    )
                } else {
                    format!("updated user '{}'\n", user.username)
                })
            })
        }
        UsersCommand::Delete { name } => {
            client.delete(&path(&name)).await?;
            Ok(if json {
                String::new()
            } else {
                format!("removed user '{name}'; their sessions are revoked\n")
            })
        }
        UsersCommand::SetPassword { name, password_stdin } => {
            let input = PasswordInput {
                password: if password_stdin { Some(read_password(&name)?) } else { None },
            };
            let answer = client.put(&format!("{}/password", path(&name)), &input).await?;
            out(answer, json, |a| {
                let set: LocalUserCreated = a.decode()?;
                let mut text = format!(
                    "set the password of '{}'; their sessions are revoked\n",
                    set.user.username
                );
                if let Some(password) = &set.generated_password {
                    text.push_str(&password_note(password));
                }
                Ok(text)
            })
        }
    }
}

/// The full record `PUT /users/{name}` takes: `current`, with what `update` changes.
fn updated(current: &LocalUser, update: &UserUpdate) -> anyhow::Result<LocalUserInput> {
    let changes = update.email.is_some()
        || update.display_name.is_some()
        || !update.groups.is_empty()
        || update.no_groups
        || update.activate
        || update.deactivate;
    if !changes {
        bail!("nothing to change: give --email, --display-name, --group, --no-groups, --activate or --deactivate");
    }
    let groups = if update.no_groups {
        Vec::new()
    } else if update.groups.is_empty() {
        current.groups.clone()
    } else {
        update.groups.clone()
    };
    let active = if update.activate {
        true
    } else if update.deactivate {
        false
    } else {
        current.active
    };
    Ok(LocalUserInput {
        username: None,
        email: update.email.clone().unwrap_or_else(|| current.email.clone()),
        display_name: update.display_name.clone().or_else(|| current.display_name.clone()),
        groups,
        active: Some(active),
        password: None,
    })
}

fn password_note(password: &str) -> String {
    format!(
        "The generated password, shown this once (agentnet keeps only its hash):

    password: {password}

Hand it over on a safe channel; they sign in with `agentnet login --server <admin listener URL>`.
"
    )
}

fn users_table(users: &[LocalUser]) -> String {
    let mut t = Table::new(&["USERNAME", "EMAIL", "DISPLAY NAME", "GROUPS", "ACTIVE"]);
    for u in users {
        t.row(vec![
            u.username.clone(),
            u.email.clone(),
            or_dash(u.display_name.as_deref()),
            list(&u.groups),
            yes_no(u.active),
        ]);
    }
    if t.is_empty() {
        return "no local accounts; add one with `agentnet admin users create`\n".to_owned();
    }
    t.render()
}

fn user_details(u: &LocalUser) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
    line("username", u.username.clone());
    line("email", u.email.clone());
    line("display name", or_dash(u.display_name.as_deref()));
    line("groups", list(&u.groups));
    line("active", yes_no(u.active));
    line("created", u.created_at.clone());
    line("updated", u.updated_at.clone());
    out
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// `agentnet admin setup-keys …`.
pub(super) async fn setup_keys(
    client: &Client,
    command: SetupKeysCommand,
    json: bool,
) -> anyhow::Result<String> {
    let path = |name: &str| format!("/setup-keys/{}", segment(name));
    match command {
        SetupKeysCommand::List => out(client.get("/setup-keys").await?, json, |a| {
            Ok(setup_keys_table(&a.decode::<Vec<SetupKey>>()?))
        }),
        SetupKeysCommand::Show { name } => {
            out(client.get(&path(&name)).await?, json, |a| Ok(setup_key_details(&a.decode()?)))
        }
        SetupKeysCommand::Create(create) => {
            let input = SetupKeyInput {
                name: create.name,
                agent: create.agent,
                auto_groups: create.groups,
                max_uses: create.uses,
                expires_in: create.expires_in,
            };
            let server = client.server_url().unwrap_or("<admin listener URL>").to_owned();
            out(client.post("/setup-keys", &input).await?, json, |a| {
                Ok(setup_key_created(&a.decode()?, &server))
            })
        }
        SetupKeysCommand::Revoke { name } => out(client.delete(&path(&name)).await?, json, |a| {
            let key: SetupKey = a.decode()?;
            Ok(format!("revoked setup key '{}': it enrolls no more agents\n", key.name))
        }),
    }
}

fn setup_key_created(created: &SetupKeyCreated, server: &str) -> String {
    let key = &created.setup_key;
    let uses = match key.max_uses {
        1 => "one use".to_owned(),
        n => format!("{n} uses"),
    };
    let name = match &key.agent {
        Some(_) => String::new(),
        None => " --name <agent name>".to_owned(),
    };
    format!(
        "created setup key '{}' ({uses}, valid until {}). The key, shown this once (agentnet keeps only its hash):

    {}

On the agent's machine, put it in an environment variable (not on a command line, which other
users can see) and enroll:

    read -rs AGENTNET_SETUP_KEY && export AGENTNET_SETUP_KEY    # paste the key, then Enter
    agentnet enroll --server {server} --setup-key-env AGENTNET_SETUP_KEY{name}
",
        key.name, key.expires_at, created.key
    )
}

fn setup_keys_table(keys: &[SetupKey]) -> String {
    let mut t = Table::new(&[
        "NAME",
        "PREFIX",
        "AGENT",
        "GROUPS",
        "USES",
        "EXPIRES",
        "STATE",
        "CREATED BY",
    ])
    .align_right(&[4]);
    for k in keys {
        t.row(vec![
            k.name.clone(),
            format!("{}…", k.prefix),
            or_dash(k.agent.as_deref()),
            list(&k.auto_groups),
            format!("{}/{}", k.uses, k.max_uses),
            k.expires_at.clone(),
            k.state.clone(),
            k.created_by.clone(),
        ]);
    }
    if t.is_empty() {
        return "no setup keys; create one with `agentnet admin setup-keys create`\n".to_owned();
    }
    t.render()
}

fn setup_key_details(k: &SetupKey) -> String {
    let mut out = String::new();
    let mut line = |key: &str, v: String| out.push_str(&format!("{key:<11} {v}\n"));
    line("name", k.name.clone());
    line("prefix", format!("{}…", k.prefix));
    line("agent", k.agent.clone().unwrap_or_else(|| "- (each agent names itself)".to_owned()));
    line("groups", list(&k.auto_groups));
    line("uses", format!("{} of {}", k.uses, k.max_uses));
    line("expires", k.expires_at.clone());
    line("state", k.state.clone());
    if let Some(at) = &k.revoked_at {
        line("revoked", at.clone());
    }
    line("last used", or_dash(k.last_used_at.as_deref()));
    line("created", k.created_at.clone());
    line("created by", k.created_by.clone());
    out
}

/// `agentnet admin sessions …`; `now_ms` tells expired sessions apart.
pub(super) async fn sessions(
    client: &Client,
    command: SessionsCommand,
    json: bool,
    now_ms: i64,
) -> anyhow::Result<String> {
    match command {
        SessionsCommand::List { name, all } => {
            let query = session_query(name.as_deref(), all);
            let answer = client.get(&with_query("/sessions", &query)).await?;
            out(answer, json, |a| Ok(sessions_table(&a.decode::<Vec<Session>>()?, all, now_ms)))
        }
        SessionsCommand::Revoke { id: Some(id), name: None } => {
            let answer = client.delete(&format!("/sessions/{}", segment(&id))).await?;
            out(answer, json, |a| {
                let revoked: SessionsRevoked = a.decode()?;
                Ok(if revoked.revoked.is_empty() {
                    format!("session {id} was already revoked\n")
                } else {
                    format!("revoked session {id}\n")
                })
            })
        }
        SessionsCommand::Revoke { id: None, name: Some(name) } => {
            let query = session_query(Some(&name), false);
            let answer = client.delete(&with_query("/sessions", &query)).await?;
            out(answer, json, |a| {
                let revoked: SessionsRevoked = a.decode()?;
                Ok(match revoked.revoked.len() {
                    0 => format!("{name} has no live sessions\n"),
                    1 => format!("revoked 1 session of {name}: {}\n", revoked.revoked[0]),
                    n => {
                        format!("revoked {n} sessions of {name}: {}\n", revoked.revoked.join(", "))
                    }
                })
            })
        }
        // clap's argument group insists on exactly one.
        SessionsCommand::Revoke { .. } => bail!("give a session id or --name, not both"),
    }
}

/// `name=…&all=true`, as `GET` and `DELETE /sessions` take it.
fn session_query(name: Option<&str>, all: bool) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(name) = name {
        query.append_pair("name", name);
    }
    if all {
        query.append_pair("all", "true");
    }
    query.finish()
}

fn sessions_table(sessions: &[Session], all: bool, now_ms: i64) -> String {
    let mut t =
        Table::new(&["ID", "KIND", "NAME", "SOURCE", "CLIENT", "CREATED", "EXPIRES", "STATE"]);
    for s in sessions {
        t.row(vec![
            s.id.clone(),
            s.kind.clone(),
            s.name.clone(),
            s.source.clone(),
            or_dash(s.client.as_deref()),
            s.created_at.clone(),
            s.expires_at.clone(),
            session_state(s, now_ms),
        ]);
    }
    if t.is_empty() {
        return if all {
            "no sessions\n".to_owned()
        } else {
            "no live sessions (--all includes revoked and expired ones)\n".to_owned()
        };
    }
    t.render()
}

/// `live`, `expired`, or `revoked (reason)`.
fn session_state(s: &Session, now_ms: i64) -> String {
    if s.revoked_at.is_some() {
        return match &s.revoked_reason {
            Some(reason) => format!("revoked ({reason})"),
            None => "revoked".to_owned(),
        };
    }
    match api_types::time::parse_rfc3339(&s.expires_at) {
        Ok(expires) if expires <= now_ms => "expired".to_owned(),
        _ => "live".to_owned(),
    }
}
