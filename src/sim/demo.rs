//! `streamwarden demo`: the app with the simulated servers configured and the story playing.

use super::Cluster;
use crate::db::servers::{self, ServerInput, TOKEN_PURPOSE};
use crate::error::AppResult;
use crate::{App, db};

/// Points the demo's server rows at the running simulated servers (their ports change on
/// every start), creating them on the first run.
pub async fn configure(app: &App, cluster: &Cluster) -> AppResult<()> {
    let now = db::now_ms();
    let inputs: Vec<ServerInput> = cluster
        .endpoints
        .iter()
        .map(|e| ServerInput {
            name: e.name.clone(),
            kind: e.kind,
            url: e.url.clone(),
            token_sealed: app.secrets.seal(TOKEN_PURPOSE, &e.token),
            enabled: true,
            verify_tls: true,
        })
        .collect();
    app.db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let existing = servers::list(&tx)?;
            for input in &inputs {
                match existing.iter().find(|s| s.name == input.name) {
                    Some(row) => {
                        servers::update(&tx, row.id, input, now)?;
                    }
                    None => {
                        servers::insert(&tx, input, now)?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
}
