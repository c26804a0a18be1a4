//! The Rules pages: the list with presets, counts and toggles; the editor whose rows come from
//! htmx fragments, refusing what does not check and keeping what was typed; the backtest.

mod common;

use common::TestEnv;
use rocket::http::Status;
use serde_json::json;

async fn rules(env: &TestEnv) -> Vec<serde_json::Value> {
    env.get("/api/v1/rules").await.json().as_array().unwrap().clone()
}

#[rocket::async_test]
async fn a_preset_in_one_click_then_toggled_and_deleted() {
    let env = TestEnv::new().await;
    let page = env.get("/rules").await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.count("#no-rules"), 1);
    assert_eq!(page.count("#presets form.preset"), 10, "the ten classic detectors");

    let added = env.post_form("/rules/presets/impossible_travel", &[]).await;
    assert_eq!(added.status, Status::SeeOther);
    let id = rules(&env).await[0]["id"].as_i64().unwrap();
    assert_eq!(added.header("Location"), Some(format!("/rules/{id}").as_str()), "opens the rule");
    // A second click makes a second copy with a number.
    env.post_form("/rules/presets/impossible_travel", &[]).await;
    let names: Vec<String> =
        rules(&env).await.iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"Impossible travel 2".to_owned()), "{names:?}");

    let list = env.get("/rules").await;
    let row = format!("#rules tr[data-rule-id='{id}']");
    assert!(list.text(&format!("{row} td[data-label=When]")).contains("km/h"), "{}", list.body);
    assert_eq!(list.text(&format!("{row} td[data-label=Open]")), "0");
    assert_eq!(list.text(&format!("{row} button.toggle")), "Disable");

    let off = env.post_form(&format!("/rules/{id}/enable?on=false"), &[]).await;
    assert_eq!(off.status, Status::SeeOther);
    assert_eq!(env.get(&format!("/api/v1/rules/{id}")).await.json()["enabled"], false);
    assert_eq!(env.get("/rules").await.text(&format!("{row} button.toggle")), "Enable");

    assert_eq!(env.post_form(&format!("/rules/{id}/delete"), &[]).await.status, Status::SeeOther);
    assert_eq!(env.get(&format!("/api/v1/rules/{id}")).await.status, Status::NotFound);
    assert_eq!(env.post_form("/rules/9999/delete", &[]).await.status, Status::NotFound);
    assert_eq!(env.post_form("/rules/presets/nope", &[]).await.status, Status::NotFound);
}

#[rocket::async_test]
async fn the_editor_saves_groups_and_actions_and_refuses_a_bad_condition_keeping_the_input() {
    let env = TestEnv::new().await;
    let form = [
        ("name", "Shared abroad"),
        ("description", "fast and far"),
        ("severity", "high"),
        ("enabled", "true"),
        ("groups[0][0].field", "travel_speed_kmh"),
        ("groups[0][0].op", "gt"),
        ("groups[0][0].value", "800"),
        ("groups[0][0].params[window_hours]", "12"),
        ("groups[1][0].field", "country"),
        ("groups[1][0].op", "not_in"),
        ("groups[1][0].value", "GB, IE"),
        ("groups[1][1].field", "is_local_network"),
        ("groups[1][1].op", "eq"),
        ("groups[1][1].value", "false"),
        ("actions[0].kind", "adjust_trust"),
        ("actions[0].amount", "-15"),
        ("actions[1].kind", "terminate"),
        ("actions[1].target", "newest"),
        ("actions[1].delay_seconds", "30"),
        ("actions[1].cooldown_minutes", "5"),
        ("actions[1].message", "One place at a time"),
    ];
    let saved = env.post_form("/rules", &form).await;
    assert_eq!(saved.status, Status::SeeOther, "{}", saved.body);
    let rule = &rules(&env).await[0];
    assert_eq!(rule["severity"], "high");
    assert_eq!(
        rule["conditions"]["groups"],
        json!([
            [{"field": "travel_speed_kmh", "op": "gt", "value": 800, "params": {"window_hours": 12}}],
            [{"field": "country", "op": "not_in", "value": ["GB", "IE"]},
             {"field": "is_local_network", "op": "eq", "value": false}]
        ]),
        "{rule}"
    );
    assert_eq!(rule["actions"][0], json!({"type": "adjust_trust", "amount": -15}));
    assert_eq!(rule["actions"][1]["target"], "newest");
    assert_eq!(rule["actions"][1]["delay_seconds"], 30);
    let id = rule["id"].as_i64().unwrap();

    // The saved rule reopens with its rows.
    let edit = env.get(&format!("/rules/{id}")).await;
    assert_eq!(edit.attrs("#name", "value"), ["Shared abroad"]);
    assert_eq!(edit.count(".cond-row"), 3);
    assert_eq!(edit.attrs("input[name='groups[1][0].value']", "value"), ["GB, IE"]);
    assert_eq!(edit.count(".action-row"), 2);
    assert_eq!(edit.attrs("input[name='actions[1].message']", "value"), ["One place at a time"]);

    // A number compared with "contains": refused with the condition named, nothing changed,
    // and the editor comes back with what was typed.
    let mut bad = form.to_vec();
    bad[1] = ("description", "changed");
    bad[5] = ("groups[0][0].op", "contains");
    let refused = env.post_form(&format!("/rules/{id}"), &bad).await;
    assert_eq!(refused.status, Status::BadRequest);
    assert!(refused.text("#rule-error").contains("conditions.groups[0][0]"), "{}", refused.body);
    assert_eq!(refused.text("#description"), "changed", "what was typed is kept");
    assert_eq!(rules(&env).await[0]["description"], "fast and far", "nothing half-saved");

    // A second rule with the same name is a conflict, shown the same way.
    let dup = env.post_form("/rules", &form).await;
    assert_eq!(dup.status, Status::Conflict);
    assert_eq!(dup.count("#rule-error"), 1);
    assert_eq!(rules(&env).await.len(), 1);
}

#[rocket::async_test]
async fn editor_rows_are_htmx_fragments_shaped_by_the_field() {
    let env = TestEnv::new().await;
    // Changing the field of a row reshapes it: a boolean gets a yes/no select, a window
    // field its parameter, and the operators follow the type.
    let row = env
        .get_htmx("/rules/editor/condition?g=0&i=1&groups%5B0%5D%5B1%5D.field=is_transcoding")
        .await;
    assert_eq!(row.status, Status::Ok);
    assert_eq!(row.count("select[name='groups[0][1].value'] option"), 2);
    assert_eq!(row.texts("select[name='groups[0][1].op'] option"), ["=", "≠"]);
    let window = env
        .get_htmx("/rules/editor/condition?g=2&i=0&groups%5B2%5D%5B0%5D.field=unique_ips_in_window&groups%5B2%5D%5B0%5D.params%5Bwindow_hours%5D=6")
        .await;
    assert_eq!(window.attrs("input[name='groups[2][0].params[window_hours]']", "value"), ["6"]);
    // "+ or…" appends a row and moves its own button to the next index (out of band).
    let added = env.get_htmx("/rules/editor/condition?g=0&i=3&add=true").await;
    assert_eq!(added.count(".cond-row[data-cond='0-3']"), 1);
    assert_eq!(added.attrs("#add-cond-0", "hx-swap-oob"), ["true"]);
    assert!(added.attrs("#add-cond-0", "hx-get")[0].contains("i=4"));
    let group = env.get_htmx("/rules/editor/group?g=1").await;
    assert_eq!(group.count("#group-1 .cond-row"), 1);
    assert!(group.attrs("#add-group", "hx-get")[0].contains("g=2"));
    let action = env.get_htmx("/rules/editor/action?i=0&actions%5B0%5D.kind=terminate").await;
    assert_eq!(action.count("select[name='actions[0].target'] option"), 5);
    assert_eq!(action.count("input[name='actions[0].delay_seconds']"), 1);
    assert_eq!(action.count("input[name='actions[0].amount']"), 0);
}

#[rocket::async_test]
async fn viewers_cannot_see_or_change_rules() {
    let env = TestEnv::new().await;
    env.post_form("/rules/presets/new_device", &[]).await;
    let viewer = env.viewer(None).await;
    let as_viewer = env.as_(&viewer);
    assert_eq!(as_viewer.get("/rules").await.status, Status::Forbidden);
    assert_eq!(
        as_viewer.post_form("/rules/presets/impossible_travel", &[]).await.status,
        Status::Forbidden
    );
    assert_eq!(rules(&env).await.len(), 1);
}

#[rocket::async_test]
async fn the_backtest_form_shows_what_a_rule_would_have_raised() {
    let env = TestEnv::new().await;
    env.post_form("/rules/presets/impossible_travel", &[]).await;
    let id = rules(&env).await[0]["id"].as_i64().unwrap();
    let page = env.get(&format!("/rules/{id}")).await;
    assert_eq!(page.count("#backtest form"), 1);
    let result = env
        .post_htmx(
            &format!("/rules/{id}/backtest"),
            &[("from", "2026-01-01"), ("to", "2026-01-31")],
        )
        .await;
    assert_eq!(result.status, Status::Ok, "{}", result.body);
    assert!(result.text(".backtest-summary").starts_with("0 violations"), "{}", result.body);
    let backwards = env
        .post_htmx(
            &format!("/rules/{id}/backtest"),
            &[("from", "2026-02-01"), ("to", "2026-01-01")],
        )
        .await;
    assert_eq!(backwards.status, Status::BadRequest);
}

#[rocket::async_test]
async fn household_and_trust_settings_are_checked_and_kept() {
    let env = TestEnv::new().await;
    let page = env.get("/rules").await;
    assert_eq!(page.attrs("#household_learn_plays", "value"), ["10"]);
    assert_eq!(page.attrs("#trust_low_below", "value"), ["40"]);
    let fields = [
        ("household_learn_plays", "25"),
        ("points_per_day", "3"),
        ("after_days", "14"),
        ("trust_low_below", "30"),
    ];
    let saved = env.post_form("/rules/settings", &fields).await;
    assert_eq!(saved.status, Status::SeeOther, "{}", saved.body);
    let page = env.get("/rules").await;
    assert_eq!(page.attrs("#household_learn_plays", "value"), ["25"]);
    assert_eq!(page.attrs("#points_per_day", "value"), ["3"]);
    assert_eq!(page.attrs("#after_days", "value"), ["14"]);
    assert_eq!(page.attrs("#trust_low_below", "value"), ["30"]);

    let mut bad = fields.to_vec();
    bad[1] = ("points_per_day", "500");
    let refused = env.post_form("/rules/settings", &bad).await;
    assert_eq!(refused.status, Status::BadRequest);
    assert!(refused.body.contains("at most 100 points a day"), "{}", refused.body);
    assert_eq!(env.get("/rules").await.attrs("#points_per_day", "value"), ["3"], "unchanged");
}
