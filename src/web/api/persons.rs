//! `/api/v1/persons`: one person across servers. Suggestions, linking (which also merges
//! persons), renaming, unlinking one account, dissolving, and dismissing a suggestion.
//! The changes are `crate::persons`'.

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde::{Deserialize, Serialize};

use super::{body, time};
use crate::auth::ApiAdmin;
use crate::db::Db;
use crate::db::persons::Account;
use crate::error::AppResult;
use crate::persons::{self, PersonWithAccounts, Suggestion};
use crate::web::{ClientAddr, audit};

#[derive(Serialize)]
pub struct AccountJson {
    id: i64,
    server_id: i64,
    server_name: String,
    name: String,
}

fn account(a: Account) -> AccountJson {
    AccountJson { id: a.id, server_id: a.server_id, server_name: a.server_name, name: a.name }
}

#[derive(Serialize)]
pub struct PersonJson {
    id: i64,
    name: String,
    created_at: Option<String>,
    users: Vec<AccountJson>,
}

fn json(p: PersonWithAccounts) -> PersonJson {
    PersonJson {
        id: p.person.id,
        name: p.person.name,
        created_at: time(Some(p.person.created_at)),
        users: p.accounts.into_iter().map(account).collect(),
    }
}

#[derive(Serialize)]
pub struct SuggestionJson {
    /// `name` or `email`.
    reason: &'static str,
    name: String,
    users: Vec<AccountJson>,
}

fn suggestion(s: Suggestion) -> SuggestionJson {
    SuggestionJson {
        reason: s.reason,
        name: s.name,
        users: s.accounts.into_iter().map(account).collect(),
    }
}

#[rocket::get("/api/v1/persons")]
pub async fn list(_caller: ApiAdmin, db: &State<Db>) -> AppResult<Json<Vec<PersonJson>>> {
    Ok(Json(db.read(persons::list).await?.into_iter().map(json).collect()))
}

#[rocket::get("/api/v1/persons/<id>")]
pub async fn get(_caller: ApiAdmin, id: i64, db: &State<Db>) -> AppResult<Json<PersonJson>> {
    Ok(Json(json(db.read(move |c| persons::get(c, id)).await?)))
}

#[rocket::get("/api/v1/persons/suggestions")]
pub async fn suggestions(
    _caller: ApiAdmin,
    db: &State<Db>,
) -> AppResult<Json<Vec<SuggestionJson>>> {
    Ok(Json(db.read(persons::suggestions).await?.into_iter().map(suggestion).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    user_ids: Vec<i64>,
    name: Option<String>,
}

/// Links accounts into one person (accounts already in persons bring them along).
#[rocket::post("/api/v1/persons", data = "<data>")]
pub async fn create(
    caller: ApiAdmin,
    data: Result<Json<LinkBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<(Status, Json<PersonJson>)> {
    let b = body(data)?;
    let ids = b.user_ids.clone();
    let linked = db
        .write(move |c| persons::link(c, &b.user_ids, b.name.as_deref(), crate::db::now_ms()))
        .await?;
    let details = serde_json::json!({"user_ids": ids, "name": linked.person.name});
    let target = format!("person:{}", linked.person.id);
    audit(db, &caller.0.actor(), "person.link", &target, details, ip.0).await;
    Ok((Status::Created, Json(json(linked))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    name: String,
}

#[rocket::patch("/api/v1/persons/<id>", data = "<data>")]
pub async fn update(
    caller: ApiAdmin,
    id: i64,
    data: Result<Json<RenameBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<PersonJson>> {
    let b = body(data)?;
    let renamed = db.write(move |c| persons::rename(c, id, &b.name)).await?;
    let details = serde_json::json!({"name": renamed.person.name});
    audit(db, &caller.0.actor(), "person.rename", &format!("person:{id}"), details, ip.0).await;
    Ok(Json(json(renamed)))
}

/// Dissolves a person: its accounts stand alone again.
#[rocket::delete("/api/v1/persons/<id>")]
pub async fn delete(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Status> {
    let was = db.write(move |c| persons::dissolve(c, id)).await?;
    let ids: Vec<i64> = was.accounts.iter().map(|a| a.id).collect();
    let details = serde_json::json!({"user_ids": ids, "name": was.person.name});
    audit(db, &caller.0.actor(), "person.dissolve", &format!("person:{id}"), details, ip.0).await;
    Ok(Status::NoContent)
}

#[derive(Serialize)]
pub struct UnlinkedJson {
    person_id: i64,
    /// The person had one account left and is gone.
    dissolved: bool,
}

/// Takes one account out of its person.
#[rocket::delete("/api/v1/users/<id>/person")]
pub async fn unlink(
    caller: ApiAdmin,
    id: i64,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Json<UnlinkedJson>> {
    let done = db.write(move |c| persons::unlink(c, id)).await?;
    let details = serde_json::json!({"person_id": done.person_id, "dissolved": done.dissolved});
    audit(db, &caller.0.actor(), "person.unlink", &format!("user:{id}"), details, ip.0).await;
    Ok(Json(UnlinkedJson { person_id: done.person_id, dissolved: done.dissolved }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DismissBody {
    user_ids: Vec<i64>,
}

/// Says a suggestion is wrong: these accounts are different people.
#[rocket::post("/api/v1/persons/dismissals", data = "<data>")]
pub async fn dismiss(
    caller: ApiAdmin,
    data: Result<Json<DismissBody>, rocket::serde::json::Error<'_>>,
    db: &State<Db>,
    ip: ClientAddr,
) -> AppResult<Status> {
    let b = body(data)?;
    let ids = b.user_ids.clone();
    db.write(move |c| persons::dismiss(c, &b.user_ids, crate::db::now_ms())).await?;
    let details = serde_json::json!({"user_ids": ids});
    audit(db, &caller.0.actor(), "person.dismiss", "persons", details, ip.0).await;
    Ok(Status::NoContent)
}
