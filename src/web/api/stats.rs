//! `GET /api/v1/stats`: the statistics of a period (DESIGN.md §5.1).

use rocket::State;
use rocket::serde::json::Json;

use crate::auth::ApiViewer;
use crate::db::Db;
use crate::error::AppResult;
use crate::stats::{Stats, StatsService};
use crate::web::stats::StatsParams;

#[rocket::get("/api/v1/stats?<params..>")]
pub async fn get(
    caller: ApiViewer,
    params: StatsParams,
    db: &State<Db>,
    service: &State<StatsService>,
) -> AppResult<Json<Stats>> {
    let (query, _) = params.query(caller.0.scope(), db, service).await?;
    Ok(Json(service.stats(query).await?))
}
