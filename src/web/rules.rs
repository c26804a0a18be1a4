//! Rules pages: the list with violation counts, enable toggles, presets and settings; the
//! editor whose condition groups and actions are rows added and reshaped with htmx; the
//! backtest. The checks are the API's (`RuleDef::compile`), so both refuse the same.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::http::uri::Origin;
use rocket::response::content::RawHtml;
use serde_json::{Value, json};

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::db::{self, Db, media_users, servers};
use crate::error::{AppError, AppResult};
use crate::format;
use crate::rules::admin;
use crate::rules::backtest::Hit;
use crate::rules::engine::{Engine, RulesSettings};
use crate::rules::model::{Action, Field, Kind, Op, ParamSpec, Rule, RuleDef, Severity, Target};
use crate::rules::presets::{self, Preset};
use crate::rules::trust::Recovery;
use crate::web::htmx::HxRequest;
use crate::web::htmx::{Done, Saved, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit, render};

/// One rule in the list.
pub struct RuleLine {
    pub rule: Rule,
    pub open: i64,
    pub total: i64,
    pub conditions: String,
    pub actions: String,
}

#[derive(Template)]
#[template(path = "rules/index.html")]
struct RulesPage {
    layout: Layout,
    rules: Vec<RuleLine>,
    presets: Vec<Preset>,
    settings: RulesSettings,
}

/// "`travel_speed_kmh` > 800 and (country ∉ US, CA or city = Paris)".
pub fn describe_conditions(rule: &Rule) -> String {
    let groups: Vec<String> = rule
        .groups
        .iter()
        .map(|g| {
            let parts: Vec<String> = g
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}",
                        c.field.label(),
                        c.op.symbol(),
                        crate::rules::eval::threshold_text(&c.value)
                    )
                })
                .collect();
            if parts.len() > 1 && rule.groups.len() > 1 {
                format!("({})", parts.join(" or "))
            } else {
                parts.join(" or ")
            }
        })
        .collect();
    groups.join(" and ")
}

#[rocket::get("/rules")]
pub async fn index(_admin: Admin, layout: Layout, db: &State<Db>) -> AppResult<RawHtml<String>> {
    let (rules, counts, home, settings) = db
        .read(|c| {
            Ok((
                db::rules::list(c)?,
                db::rules::counts(c)?,
                admin::home_country(c)?,
                RulesSettings::load(c)?,
            ))
        })
        .await?;
    let rules = rules
        .into_iter()
        .map(|rule| {
            let (open, total) = counts.get(&rule.id).copied().unwrap_or((0, 0));
            RuleLine {
                conditions: describe_conditions(&rule),
                actions: rule.actions.iter().map(Action::describe).collect::<Vec<_>>().join("; "),
                rule,
                open,
                total,
            }
        })
        .collect();
    render(&RulesPage {
        layout: layout.nav("rules"),
        rules,
        presets: presets::all(&home),
        settings,
    })
}

// Ranked apart from `/rules/<id>/delete` and `/rules/<id>/backtest`, which it overlaps.
#[rocket::post("/rules/presets/<key>", data = "<_form>", rank = 1)]
pub async fn add_preset(
    admin: Admin,
    key: &str,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let rule = admin::create_preset(db, key).await?;
    audit(
        db,
        &admin.0.actor(),
        "rule.create",
        &format!("rule:{}", rule.id),
        json!({"name": rule.name, "preset": key}),
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/rules/{}", layout.base, rule.id)))
}

#[rocket::post("/rules/<id>/enable?<on>", data = "<_form>")]
pub async fn toggle(
    admin: Admin,
    id: i64,
    on: bool,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    if !db.write(move |c| db::rules::set_enabled(c, id, on, crate::time::now_ms())).await? {
        return Err(AppError::not_found(format!("rule {id}")));
    }
    audit(
        db,
        &admin.0.actor(),
        if on { "rule.enable" } else { "rule.disable" },
        &format!("rule:{id}"),
        Value::Null,
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/rules", layout.base)))
}

#[rocket::post("/rules/<id>/delete", data = "<_form>")]
pub async fn delete(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    if !db.write(move |c| db::rules::delete(c, id)).await? {
        return Err(AppError::not_found(format!("rule {id}")));
    }
    audit(db, &admin.0.actor(), "rule.delete", &format!("rule:{id}"), Value::Null, ip.0).await;
    Ok(done(&hx, format!("{}/rules", layout.base)))
}

#[derive(Debug, rocket::FromForm)]
pub struct SettingsForm {
    household_learn_plays: u32,
    points_per_day: u32,
    after_days: u32,
    trust_low_below: u32,
}

#[rocket::post("/rules/settings", data = "<form>")]
pub async fn save_settings(
    admin: Admin,
    form: CsrfForm<SettingsForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let f = form.0;
    let settings = RulesSettings {
        household_learn_plays: f.household_learn_plays,
        trust_recovery: Recovery { points_per_day: f.points_per_day, after_days: f.after_days },
        trust_low_below: f.trust_low_below,
    };
    settings.validate()?;
    db.write(move |c| db::settings::put(c, RulesSettings::KEY, &settings)).await?;
    audit(
        db,
        &admin.0.actor(),
        "settings.rules",
        "settings:rules",
        serde_json::to_value(settings).unwrap_or_default(),
        ip.0,
    )
    .await;
    Ok(done(&hx, format!("{}/rules", layout.base)))
}

// ---- The editor ----

/// One condition row as the editor shows it.
pub struct CondRow {
    pub g: usize,
    pub i: usize,
    pub field: Field,
    pub op: Op,
    pub value: String,
    /// Each parameter of the field with its current value ("" for the default).
    pub params: Vec<(ParamSpec, String)>,
}

impl CondRow {
    pub fn new(
        g: usize,
        i: usize,
        field: Field,
        op: Option<Op>,
        value: String,
        given: &HashMap<String, String>,
    ) -> Self {
        let ops = field.kind().ops();
        let op = op.filter(|o| ops.contains(o)).unwrap_or(ops[0]);
        let params = field
            .params()
            .iter()
            .map(|p| (*p, given.get(p.name).cloned().unwrap_or_default()))
            .collect();
        Self { g, i, field, op, value, params }
    }

    pub fn name(&self, part: &str) -> String {
        format!("groups[{}][{}].{part}", self.g, self.i)
    }

    pub fn ops(&self) -> &'static [Op] {
        self.field.kind().ops()
    }

    pub fn is_bool(&self) -> bool {
        self.field.kind() == Kind::Bool
    }

    pub fn placeholder(&self) -> &'static str {
        match (self.field.kind(), self.op.is_list()) {
            (Kind::Network, _) => "10.0.0.0/8, 203.0.113.7",
            (_, true) => "values separated by commas",
            (Kind::Number, false) => "a number",
            (Kind::Resolution, false) => "720p, 1080p, 4K...",
            _ => "",
        }
    }

    pub fn allowed(&self) -> &'static [&'static str] {
        match self.field {
            Field::MediaType => crate::rules::model::MEDIA_TYPES,
            Field::DeviceType => crate::rules::model::DEVICE_TYPES,
            Field::DayOfWeek => crate::rules::model::WEEKDAYS,
            _ => &[],
        }
    }
}

/// One action row: as the editor shows it and as it posts it.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct ActionRow {
    /// Its place in the list (not posted: the list's order gives it).
    #[field(default = 0)]
    pub i: usize,
    pub kind: String,
    #[field(default = String::new())]
    pub amount: String,
    #[field(default = String::new())]
    pub value: String,
    #[field(default = String::new())]
    pub target: String,
    #[field(default = String::new())]
    pub message: String,
    #[field(default = String::new())]
    pub delay_seconds: String,
    #[field(default = String::new())]
    pub cooldown_minutes: String,
    #[field(default = String::new())]
    pub channels: String,
}

impl ActionRow {
    pub fn blank(i: usize, kind: &str) -> Self {
        Self {
            i,
            kind: kind.to_owned(),
            amount: "-10".into(),
            value: "50".into(),
            target: "triggering".into(),
            message: String::new(),
            delay_seconds: "0".into(),
            cooldown_minutes: "0".into(),
            channels: String::new(),
        }
    }

    fn of(i: usize, a: &Action) -> Self {
        let mut row = Self::blank(i, a.kind());
        match a {
            Action::Notify { channels, cooldown_minutes } => {
                row.channels =
                    channels.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                row.cooldown_minutes = cooldown_minutes.to_string();
            }
            Action::AdjustTrust { amount } => row.amount = amount.to_string(),
            Action::SetTrust { value } => row.value = value.to_string(),
            Action::ResetTrust => {}
            Action::Terminate { target, message, delay_seconds, cooldown_minutes } => {
                target.as_str().clone_into(&mut row.target);
                row.message = message.clone().unwrap_or_default();
                row.delay_seconds = delay_seconds.to_string();
                row.cooldown_minutes = cooldown_minutes.to_string();
            }
            Action::MessageClient { message, target } => {
                row.message.clone_from(message);
                target.as_str().clone_into(&mut row.target);
            }
            Action::LogOnly { message } => row.message = message.clone().unwrap_or_default(),
        }
        row
    }

    pub fn name(&self, part: &str) -> String {
        format!("actions[{}].{part}", self.i)
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

#[derive(Template)]
#[template(path = "rules/edit.html")]
struct EditPage {
    layout: Layout,
    id: Option<i64>,
    name: String,
    description: String,
    severity: Severity,
    enabled: bool,
    server_ids: Vec<i64>,
    exempt: Vec<i64>,
    groups: Vec<Vec<CondRow>>,
    actions: Vec<ActionRow>,
    servers: Vec<servers::ServerRow>,
    users: Vec<media_users::MediaUserRow>,
    error: Option<(String, String)>,
    from: String,
    to: String,
}

impl EditPage {
    #[expect(clippy::unused_self, reason = "askama calls methods of the page")]
    fn severities(&self) -> [Severity; 3] {
        Severity::ALL
    }

    #[expect(clippy::unused_self, reason = "askama calls methods of the page")]
    fn targets(&self) -> [Target; 5] {
        Target::ALL
    }

    #[expect(clippy::unused_self, reason = "askama calls methods of the page")]
    fn kinds(&self) -> [&'static str; 7] {
        Action::KINDS
    }
}

#[derive(Template)]
#[template(path = "rules/_condition.html")]
struct CondFragment {
    base: String,
    c: CondRow,
    /// Added by "+ or…": the button moves on to the next index.
    add: bool,
}

#[derive(Template)]
#[template(path = "rules/_group.html")]
struct GroupFragment {
    base: String,
    g: usize,
    rows: Vec<CondRow>,
}

#[derive(Template)]
#[template(path = "rules/_action.html")]
struct ActionFragment {
    base: String,
    a: ActionRow,
    add: bool,
    targets: [Target; 5],
    kinds: [&'static str; 7],
}

fn rows_of(rule: &Rule) -> Vec<Vec<CondRow>> {
    rule.groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            group
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let given: HashMap<String, String> = c
                        .raw_params
                        .iter()
                        .map(|(k, v)| {
                            (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        })
                        .collect();
                    let value = match &c.value {
                        Value::Array(items) => items
                            .iter()
                            .map(crate::rules::eval::threshold_text)
                            .collect::<Vec<_>>()
                            .join(", "),
                        v => crate::rules::eval::threshold_text(v),
                    };
                    CondRow::new(g, i, c.field, Some(c.op), value, &given)
                })
                .collect()
        })
        .collect()
}

async fn edit_page(
    db: &Db,
    layout: Layout,
    rule: Option<Rule>,
    form: Option<&RuleForm>,
    error: Option<AppError>,
) -> AppResult<EditPage> {
    let (servers, users) = db.read(|c| Ok((servers::list(c)?, media_users::list(c)?))).await?;
    let now = crate::time::now_ms();
    let mut page = EditPage {
        layout: layout.nav("rules"),
        id: rule.as_ref().map(|r| r.id).filter(|id| *id > 0),
        name: String::new(),
        description: String::new(),
        severity: Severity::Warning,
        enabled: false,
        server_ids: Vec::new(),
        exempt: Vec::new(),
        groups: vec![vec![CondRow::new(
            0,
            0,
            Field::ConcurrentStreams,
            Some(Op::Gt),
            "2".into(),
            &HashMap::new(),
        )]],
        actions: Vec::new(),
        servers,
        users,
        error: error.map(|e| match e {
            AppError::Validation { field, message } => (field, message),
            other => (String::new(), other.public_message()),
        }),
        from: format::local_date(now - 7 * 86_400_000),
        to: format::local_date(now),
    };
    if let Some(rule) = &rule {
        page.name.clone_from(&rule.name);
        page.description.clone_from(&rule.description);
        page.severity = rule.severity;
        page.enabled = rule.enabled;
        page.server_ids.clone_from(&rule.server_ids);
        page.exempt.clone_from(&rule.exempt_user_ids);
        page.groups = rows_of(rule);
        page.actions = rule.actions.iter().enumerate().map(|(i, a)| ActionRow::of(i, a)).collect();
    }
    if let Some(f) = form {
        // Show what was typed, even when it did not check out.
        page.name.clone_from(&f.name);
        page.description.clone_from(&f.description);
        page.severity = f.severity.trim().parse::<Severity>().ok().unwrap_or(Severity::Warning);
        page.enabled = f.enabled;
        page.server_ids.clone_from(&f.servers);
        page.exempt.clone_from(&f.exempt);
        page.groups = f
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                group
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        Field::parse(&c.field).map(|field| {
                            CondRow::new(g, i, field, Op::parse(&c.op), c.value.clone(), &c.params)
                        })
                    })
                    .collect()
            })
            .filter(|g: &Vec<CondRow>| !g.is_empty())
            .collect();
        page.actions =
            f.actions.iter().enumerate().map(|(i, a)| ActionRow { i, ..a.clone() }).collect();
    }
    Ok(page)
}

#[rocket::get("/rules/new")]
pub async fn new(_admin: Admin, layout: Layout, db: &State<Db>) -> AppResult<RawHtml<String>> {
    render(&edit_page(db, layout, None, None, None).await?)
}

#[rocket::get("/rules/<id>")]
pub async fn edit(
    _admin: Admin,
    layout: Layout,
    id: i64,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let rule = admin::get(db, id).await?;
    render(&edit_page(db, layout, Some(rule), None, None).await?)
}

/// A condition as posted by the editor.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct CondForm {
    pub field: String,
    pub op: String,
    pub value: String,
    pub params: HashMap<String, String>,
}

#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct RuleForm {
    pub name: String,
    pub description: String,
    pub severity: String,
    pub enabled: bool,
    pub servers: Vec<i64>,
    pub exempt: Vec<i64>,
    pub groups: Vec<Vec<CondForm>>,
    pub actions: Vec<ActionRow>,
}

/// A typed value from what was typed in a text box.
fn form_value(field: Option<Field>, op: Option<Op>, raw: &str) -> Value {
    let one = |s: &str| -> Value {
        let s = s.trim();
        match field.map(Field::kind) {
            Some(Kind::Number) => s.parse::<f64>().ok().and_then(|n| {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    Some(json!(crate::rules::model::whole(n)))
                } else {
                    serde_json::Number::from_f64(n).map(Value::Number)
                }
            }),
            Some(Kind::Bool) => s.parse::<bool>().ok().map(Value::Bool),
            _ => None,
        }
        .unwrap_or_else(|| Value::String(s.to_owned()))
    };
    if op.is_some_and(Op::is_list) {
        Value::Array(raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(one).collect())
    } else {
        one(raw)
    }
}

fn number(raw: &str) -> Value {
    raw.trim().parse::<i64>().map_or_else(|_| Value::String(raw.trim().to_owned()), |n| json!(n))
}

impl RuleForm {
    fn def(&self) -> RuleDef {
        let groups = self
            .groups
            .iter()
            .map(|g| {
                g.iter()
                    .filter(|c| !c.field.is_empty())
                    .map(|c| {
                        let field = Field::parse(&c.field);
                        let op = Op::parse(&c.op);
                        let params: serde_json::Map<String, Value> = c
                            .params
                            .iter()
                            .filter(|(_, v)| !v.trim().is_empty())
                            .map(|(k, v)| {
                                let v = v.trim();
                                let typed = match v {
                                    "true" => Value::Bool(true),
                                    "false" => Value::Bool(false),
                                    _ => number(v),
                                };
                                (k.clone(), typed)
                            })
                            .collect();
                        crate::rules::model::ConditionDef {
                            field: c.field.clone(),
                            op: c.op.clone(),
                            value: form_value(field, op, &c.value),
                            params,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|g: &Vec<_>| !g.is_empty())
            .collect();
        let actions = self
            .actions
            .iter()
            .filter(|a| !a.kind.is_empty())
            .map(|a| {
                let message = (!a.message.trim().is_empty()).then(|| a.message.trim().to_owned());
                match a.kind.as_str() {
                    "notify" => json!({"type": "notify", "channels": a.channels.split(',').map(str::trim).filter(|s| !s.is_empty()).map(number).collect::<Vec<_>>(), "cooldown_minutes": number(&a.cooldown_minutes)}),
                    "adjust_trust" => json!({"type": "adjust_trust", "amount": number(&a.amount)}),
                    "set_trust" => json!({"type": "set_trust", "value": number(&a.value)}),
                    "reset_trust" => json!({"type": "reset_trust"}),
                    "terminate" => json!({"type": "terminate", "target": a.target, "message": message, "delay_seconds": number(&a.delay_seconds), "cooldown_minutes": number(&a.cooldown_minutes)}),
                    "message_client" => json!({"type": "message_client", "target": a.target, "message": a.message.trim()}),
                    "log_only" => json!({"type": "log_only", "message": message}),
                    other => json!({"type": other}),
                }
            })
            .collect();
        RuleDef {
            name: self.name.clone(),
            description: self.description.clone(),
            severity: self.severity.trim().parse::<Severity>().ok().unwrap_or(Severity::Warning),
            enabled: self.enabled,
            server_ids: self.servers.clone(),
            exempt_user_ids: self.exempt.clone(),
            conditions: crate::rules::model::ConditionsDef { groups },
            actions,
        }
    }
}

async fn save(
    admin: Admin,
    id: Option<i64>,
    form: RuleForm,
    db: &Db,
    hx: &HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Saved> {
    let def = form.def();
    let result = match id {
        Some(id) => admin::update(db, id, def).await,
        None => admin::create(db, def, None).await,
    };
    match result {
        Ok(rule) => {
            let action = if id.is_some() { "rule.update" } else { "rule.create" };
            audit(
                db,
                &admin.0.actor(),
                action,
                &format!("rule:{}", rule.id),
                json!({"name": rule.name}),
                ip.0,
            )
            .await;
            Ok(Saved::Done(done(hx, format!("{}/rules", layout.base))))
        }
        Err(e @ (AppError::Validation { .. } | AppError::Conflict(_))) => {
            let status = e.status();
            let existing = match id {
                Some(id) => Some(admin::get(db, id).await?),
                None => None,
            };
            let page = edit_page(db, layout, existing, Some(&form), Some(e)).await?;
            Ok(Saved::Refused(status, render(&page)?))
        }
        Err(e) => Err(e),
    }
}

#[rocket::post("/rules", data = "<form>")]
pub async fn create(
    admin: Admin,
    form: CsrfForm<RuleForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Saved> {
    save(admin, None, form.0, db, &hx, ip, layout).await
}

#[rocket::post("/rules/<id>", data = "<form>")]
pub async fn update(
    admin: Admin,
    id: i64,
    form: CsrfForm<RuleForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Saved> {
    save(admin, Some(id), form.0, db, &hx, ip, layout).await
}

/// The row's inputs that htmx sends along (`hx-include`), by their full names such as
/// `groups[0][1].field`: read from the raw query, because Rocket's forms would take those
/// names apart.
fn row_fields(uri: &Origin<'_>) -> HashMap<String, String> {
    uri.query()
        .map(|q| q.segments().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default()
}

/// A condition row for `field` (a new one, or the same row reshaped after a change).
#[rocket::get("/rules/editor/condition?<g>&<i>&<add>")]
pub fn condition_row(
    _admin: Admin,
    layout: Layout,
    g: usize,
    i: usize,
    add: Option<bool>,
    uri: &Origin<'_>,
) -> AppResult<RawHtml<String>> {
    let rest = row_fields(uri);
    let key = |part: &str| rest.get(&format!("groups[{g}][{i}].{part}")).cloned();
    let field = key("field").and_then(|f| Field::parse(&f)).unwrap_or(Field::ConcurrentStreams);
    let op = key("op").and_then(|o| Op::parse(&o));
    let prefix = format!("groups[{g}][{i}].params[");
    let params: HashMap<String, String> = rest
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(']'))
                .map(|p| (p.to_owned(), v.clone()))
        })
        .collect();
    let c = CondRow::new(g, i, field, op, key("value").unwrap_or_default(), &params);
    render(&CondFragment { base: layout.base, c, add: add.unwrap_or(false) })
}

/// A new group with one condition.
#[rocket::get("/rules/editor/group?<g>")]
pub fn group(_admin: Admin, layout: Layout, g: usize) -> AppResult<RawHtml<String>> {
    let rows =
        vec![CondRow::new(g, 0, Field::Country, Some(Op::NotIn), String::new(), &HashMap::new())];
    render(&GroupFragment { base: layout.base, g, rows })
}

/// An action row for its type.
#[rocket::get("/rules/editor/action?<i>&<add>")]
pub fn action_row(
    _admin: Admin,
    layout: Layout,
    i: usize,
    add: Option<bool>,
    uri: &Origin<'_>,
) -> AppResult<RawHtml<String>> {
    let rest = row_fields(uri);
    let key = |part: &str| rest.get(&format!("actions[{i}].{part}")).cloned().unwrap_or_default();
    let kind = Some(key("kind"))
        .filter(|k| Action::KINDS.contains(&k.as_str()))
        .unwrap_or_else(|| "adjust_trust".to_owned());
    let mut a = ActionRow::blank(i, &kind);
    for (part, slot) in [
        ("amount", &mut a.amount),
        ("value", &mut a.value),
        ("target", &mut a.target),
        ("message", &mut a.message),
        ("delay_seconds", &mut a.delay_seconds),
        ("cooldown_minutes", &mut a.cooldown_minutes),
        ("channels", &mut a.channels),
    ] {
        let v = key(part);
        if !v.is_empty() {
            *slot = v;
        }
    }
    render(&ActionFragment {
        base: layout.base,
        a,
        targets: Target::ALL,
        kinds: Action::KINDS,
        add: add.unwrap_or(false),
    })
}

/// Nothing: what a removed row is swapped for.
#[rocket::get("/rules/editor/blank")]
pub fn blank(_admin: Admin) -> RawHtml<&'static str> {
    RawHtml("")
}

#[derive(Template)]
#[template(path = "rules/backtest.html")]
struct BacktestPage {
    layout: Layout,
    rule: Rule,
    from: String,
    to: String,
    hits: Vec<Hit>,
}

#[derive(Template)]
#[template(path = "rules/backtest.html", block = "results")]
struct BacktestFragment {
    layout: Layout,
    from: String,
    to: String,
    hits: Vec<Hit>,
}

#[derive(Debug, rocket::FromForm)]
pub struct BacktestForm {
    from: String,
    to: String,
}

#[rocket::post("/rules/<id>/backtest", data = "<form>")]
pub async fn backtest(
    _admin: Admin,
    id: i64,
    form: CsrfForm<BacktestForm>,
    db: &State<Db>,
    engine: &State<Arc<Engine>>,
    hx: HxRequest,
    layout: Layout,
) -> AppResult<RawHtml<String>> {
    let f = form.0;
    let from = crate::web::history::parse_time("from", &f.from, false)?;
    let to = crate::web::history::parse_time("to", &f.to, true)?;
    let rule = admin::get(db, id).await?;
    let hits = admin::backtest(db, rule.clone(), from, to, engine.confirm_ms()).await?;
    if hx.is_htmx() {
        render(&BacktestFragment { layout, from: f.from, to: f.to, hits })
    } else {
        render(&BacktestPage { layout: layout.nav("rules"), rule, from: f.from, to: f.to, hits })
    }
}
