//! `/api/v1/jobs`: background jobs (library sync, import, backup) and their progress.

use rocket::State;
use rocket::serde::json::Json;
use serde::Serialize;

use super::time;
use crate::auth::ApiAdmin;
use crate::db::jobs::{JobRow, JobStatus};
use crate::error::AppResult;
use crate::jobs::Jobs;

#[derive(Serialize)]
pub struct JobJson {
    id: i64,
    kind: String,
    status: JobStatus,
    progress: ProgressJson,
    message: String,
    created_by: String,
    started_at: Option<String>,
    updated_at: Option<String>,
    finished_at: Option<String>,
}

#[derive(Serialize)]
pub struct ProgressJson {
    done: i64,
    /// `null` until the job knows how much there is.
    total: Option<i64>,
}

impl From<JobRow> for JobJson {
    fn from(row: JobRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            status: row.status,
            progress: ProgressJson { done: row.done, total: row.total },
            message: row.message,
            created_by: row.created_by,
            started_at: time(Some(row.started_at)),
            updated_at: time(Some(row.updated_at)),
            finished_at: time(row.finished_at),
        }
    }
}

/// The newest jobs (of one `kind`), newest first.
#[rocket::get("/api/v1/jobs?<kind>&<limit>")]
pub async fn list(
    _admin: ApiAdmin,
    jobs: &State<Jobs>,
    kind: Option<String>,
    limit: Option<u32>,
) -> AppResult<Json<Vec<JobJson>>> {
    let rows = jobs.recent(kind, limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(rows.into_iter().map(JobJson::from).collect()))
}

#[rocket::get("/api/v1/jobs/<id>")]
pub async fn get(_admin: ApiAdmin, jobs: &State<Jobs>, id: i64) -> AppResult<Json<JobJson>> {
    Ok(Json(jobs.get(id).await?.into()))
}

/// Asks a running job to stop (409 when it has already ended).
#[rocket::post("/api/v1/jobs/<id>/cancel")]
pub async fn cancel(_admin: ApiAdmin, jobs: &State<Jobs>, id: i64) -> AppResult<Json<JobJson>> {
    jobs.cancel(id).await?;
    Ok(Json(jobs.get(id).await?.into()))
}
