//! `agentnet admin peers`: the WireGuard devices people and agents registered, with their
//! address, status, last handshake and traffic; renaming and revoking one.

#[cfg(test)]
mod tests;

use api_types::{PeerRename, PeerView};

use super::{
    client::{segment, Answer, Client},
    table::Table,
    with_query,
};
use crate::{args::PeersCommand, peers::bytes};

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

/// `agentnet admin peers …`.
pub(super) async fn peers(
    client: &Client,
    command: PeersCommand,
    json: bool,
) -> anyhow::Result<String> {
    let path = |id: &str| format!("/peers/{}", segment(id));
    match command {
        PeersCommand::List { owner, all } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(owner) = &owner {
                query.append_pair("owner", owner);
            }
            if all {
                query.append_pair("all", "true");
            }
            let answer = client.get(&with_query("/peers", &query.finish())).await?;
            out(answer, json, |a| Ok(peers_table(&a.decode::<Vec<PeerView>>()?, all)))
        }
        PeersCommand::Rename { id, name } => {
            let answer = client.patch(&path(&id), &PeerRename { name }).await?;
            out(answer, json, |a| {
                let peer: PeerView = a.decode()?;
                Ok(format!("renamed peer {} of {} to '{}'\n", peer.id, peer.owner, peer.name))
            })
        }
        PeersCommand::Revoke { id } => out(client.delete(&path(&id)).await?, json, |a| {
            let peer: PeerView = a.decode()?;
            Ok(format!(
                "revoked peer {} ('{}' of {}, {}): its tunnel no longer works\n",
                peer.id, peer.name, peer.owner, peer.address
            ))
        }),
    }
}

fn peers_table(peers: &[PeerView], all: bool) -> String {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "OWNER",
        "ADDRESS",
        "STATUS",
        "EXPIRES",
        "LAST HANDSHAKE",
        "RX",
        "TX",
    ])
    .align_right(&[7, 8]);
    for p in peers {
        let status = match (&p.status[..], &p.revoked_reason) {
            ("revoked", Some(reason)) => format!("revoked ({reason})"),
            _ => p.status.clone(),
        };
        t.row(vec![
            p.id.clone(),
            p.name.clone(),
            format!("{} ({})", p.owner, p.owner_kind),
            p.address.clone(),
            status,
            p.expires_at.clone(),
            p.last_handshake_at.clone().unwrap_or_else(|| "never".to_owned()),
            bytes(p.rx_bytes),
            bytes(p.tx_bytes),
        ]);
    }
    if t.is_empty() {
        return if all {
            "no peers\n".to_owned()
        } else {
            "no live peers (--all includes revoked and expired ones)\n".to_owned()
        };
    }
    t.render()
}
