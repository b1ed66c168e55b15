//! Schema migrations, embedded in the binary and applied at open by sqlx's migrator.

use std::{borrow::Cow, future::Future, pin::Pin};

use sqlx::{
    error::BoxDynError,
    migrate::{Migration, MigrationSource, MigrationType, Migrator},
};

/// Every migration, in order. Append; never edit one that has shipped (sqlx checks checksums).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "limits", include_str!("../migrations/0002_limits.sql")),
    (3, "scim", include_str!("../migrations/0003_scim.sql")),
    (4, "audit", include_str!("../migrations/0004_audit.sql")),
    (5, "sign_in", include_str!("../migrations/0005_sign_in.sql")),
    (6, "peers", include_str!("../migrations/0006_peers.sql")),
    (7, "peer_sessions", include_str!("../migrations/0007_peer_sessions.sql")),
];

/// The migrations compiled into the binary, so a deployment needs no migrations directory.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(crate) async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}
