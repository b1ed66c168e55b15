//! Re-checking the owners of overlay devices. A tunnel carries no token, so nothing expires on
//! its own the way a bearer token does every `access_ttl`; instead the server re-checks each
//! session that holds live peers with its source once per `access_ttl` — the IdP's refresh
//! grant for brokered sign-ins, the local account, the agent record — exactly as a refresh by
//! the client would. A refusal revokes the session and with it its peers; new groups are stored
//! on the session, which is where the overlay reads a peer's owner's groups from.

use super::{
    token::{end_session, recheck, Recheck},
    SignInState,
};
use crate::error::Error;

/// What one round of re-checks did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRecheck {
    /// Sessions re-checked and still good.
    pub current: usize,
    /// Sessions revoked because their owner no longer checks out.
    pub ended: usize,
    /// Sessions that could not be re-checked now (IdP unreachable); tried again next round.
    pub deferred: usize,
}

impl SignInState {
    /// Re-checks every session that holds live overlay peers and was neither refreshed nor
    /// re-checked within `access_ttl`. The server calls this periodically.
    pub async fn recheck_device_sessions(&self) -> Result<DeviceRecheck, Error> {
        let now = super::now_ms();
        let ttl = i64::try_from(self.settings().access_ttl.as_millis()).unwrap_or(i64::MAX);
        let due = self.store().sessions_to_recheck(now, now.saturating_sub(ttl)).await?;
        let mut outcome = DeviceRecheck::default();
        let mut groups_changed = false;
        for stored in due {
            let record = &stored.record;
            match recheck(self, record, stored.idp_refresh_token.as_ref()).await {
                Ok(Recheck::Current { groups, idp_refresh, .. }) => {
                    let mut tx = self.store().begin().await?;
                    let recorded = tx
                        .record_recheck(
                            &record.id,
                            record.refreshed_at_ms,
                            &groups,
                            idp_refresh.as_ref(),
                        )
                        .await?;
                    tx.commit().await?;
                    groups_changed |= recorded && groups != record.groups;
                    outcome.current += 1;
                }
                Ok(Recheck::Ended(reason)) => {
                    // Unless a refresh ran meanwhile: it may have spent the IdP refresh token
                    // this check was refused for, and it has the newer word.
                    let now_stored = self.store().session(&record.id).await?;
                    if now_stored.is_some_and(|s| s.refreshed_at_ms == record.refreshed_at_ms) {
                        tracing::info!(session = %record.id, principal = %record.name, %reason, "device session ended on re-check");
                        end_session(self, record, &reason)
                            .await
                            .map_err(|f| Error::Internal(f.description().to_owned()))?;
                        outcome.ended += 1;
                    }
                }
                Err(failure) => {
                    tracing::warn!(session = %record.id, principal = %record.name, error = failure.description(), "could not re-check a device session; trying again later");
                    outcome.deferred += 1;
                }
            }
        }
        if groups_changed {
            // The overlay reads owners' groups from their sessions.
            self.after_change().await;
        }
        Ok(outcome)
    }
}
