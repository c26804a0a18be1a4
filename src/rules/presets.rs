//! The classic detectors as ready-made rules, with the peers' sensible defaults
//! (StreamMon, Tracearr, PlexGeo; see `shared/reference/peers.md` 1.7-1.9). One click in the
//! Rules page creates one; every number stays editable.

use serde_json::{Value, json};

use super::model::{RuleDef, Severity};

/// A ready-made rule.
#[derive(Debug, Clone)]
pub struct Preset {
    pub key: &'static str,
    pub label: &'static str,
    pub explain: &'static str,
    pub def: RuleDef,
}

fn rule(name: &str, description: &str, severity: Severity, groups: Value, trust: i32) -> RuleDef {
    RuleDef {
        name: name.to_owned(),
        description: description.to_owned(),
        severity,
        enabled: true,
        server_ids: Vec::new(),
        exempt_user_ids: Vec::new(),
        conditions: serde_json::from_value(json!({ "groups": groups })).expect("valid preset"),
        actions: if trust == 0 {
            vec![json!({"type": "log_only"})]
        } else {
            vec![json!({"type": "adjust_trust", "amount": trust})]
        },
    }
}

/// Every preset. `home_country` fills the geo restriction's allow-list (the country most
/// plays come from).
pub fn all(home_country: &str) -> Vec<Preset> {
    vec![
        Preset {
            key: "impossible_travel",
            label: "Impossible travel",
            explain: "Faster than 800 km/h between two plays on different devices or addresses, within 24 h, moving at least 100 km.",
            def: rule(
                "Impossible travel",
                "The same account played from two places further apart than a plane could fly in the time between.",
                Severity::High,
                json!([[{"field": "travel_speed_kmh", "op": "gt", "value": 800, "params": {"window_hours": 24, "min_distance_km": 100}}]]),
                -20,
            ),
        },
        Preset {
            key: "simultaneous_locations",
            label: "Simultaneous locations",
            explain: "Two live streams more than 100 km apart (a device counts once).",
            def: rule(
                "Simultaneous locations",
                "The account streams from two places at the same time.",
                Severity::High,
                json!([[{"field": "active_session_distance_km", "op": "gt", "value": 100}]]),
                -10,
            ),
        },
        Preset {
            key: "concurrent_streams",
            label: "Concurrent streams",
            explain: "More than 2 streams at once; a device counts once and a household counts as one.",
            def: rule(
                "Concurrent streams",
                "More streams at once than one household watches.",
                Severity::Warning,
                json!([[{"field": "concurrent_streams", "op": "gt", "value": 2, "params": {"exclude_same_device": true, "unique_ips": false, "exempt_household": true}}]]),
                -5,
            ),
        },
        Preset {
            key: "device_velocity",
            label: "Device velocity",
            explain: "More than 3 different devices within an hour.",
            def: rule(
                "Device velocity",
                "Many devices in a short time: the login is passed around.",
                Severity::Warning,
                json!([[{"field": "unique_devices_in_window", "op": "gt", "value": 3, "params": {"window_hours": 1}}]]),
                -5,
            ),
        },
        Preset {
            key: "isp_velocity",
            label: "ISP velocity",
            explain: "More than 3 different ISPs within a week.",
            def: rule(
                "ISP velocity",
                "Plays through many providers in a week: several homes share the login.",
                Severity::Warning,
                json!([[{"field": "unique_isps_in_window", "op": "gt", "value": 3, "params": {"window_hours": 168}}]]),
                -5,
            ),
        },
        Preset {
            key: "geo_restriction",
            label: "Geo restriction",
            explain: "Any play from outside the allowed countries (edit the list; it starts with the country most plays come from).",
            def: rule(
                "Geo restriction",
                "Plays are only allowed from these countries.",
                Severity::High,
                json!([[{"field": "country", "op": "not_in", "value": [home_country]}]]),
                -10,
            ),
        },
        Preset {
            key: "new_device",
            label: "New device",
            explain: "A device never seen for the user.",
            def: rule(
                "New device",
                "The account played on a device it never used before.",
                Severity::Low,
                json!([[{"field": "is_new_device", "op": "eq", "value": true}]]),
                0,
            ),
        },
        Preset {
            key: "new_location",
            label: "New location",
            explain: "More than 50 km from every place the user played from before (households exempt).",
            def: rule(
                "New location",
                "The account played from somewhere new.",
                Severity::Low,
                json!([[{"field": "new_location_distance_km", "op": "gt", "value": 50}]]),
                0,
            ),
        },
        Preset {
            key: "country_outlier",
            label: "Country outlier",
            explain: "A country behind less than 10 % of the user's plays over 90 days (at least 5 plays).",
            def: rule(
                "Country outlier",
                "A play from a country this user hardly ever plays from (PlexGeo's outlier rule).",
                Severity::Warning,
                json!([[{"field": "country_share_pct", "op": "lt", "value": 10, "params": {"days": 90, "min_sessions": 5}}]]),
                -5,
            ),
        },
        Preset {
            key: "account_inactivity",
            label: "Account inactivity",
            explain: "No play for more than 30 days (checked on a schedule, not when they come back).",
            def: rule(
                "Account inactivity",
                "A quiet account: a candidate for removal.",
                Severity::Low,
                json!([[{"field": "inactive_days", "op": "gt", "value": 30}]]),
                0,
            ),
        },
    ]
}

/// One preset by key.
pub fn get(key: &str, home_country: &str) -> Option<Preset> {
    all(home_country).into_iter().find(|p| p.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_a_valid_rule() {
        let presets = all("US");
        assert_eq!(presets.len(), 10);
        for p in presets {
            let rule = p.def.compile().unwrap_or_else(|e| panic!("{}: {e}", p.key));
            assert!(rule.enabled);
        }
        assert!(get("account_inactivity", "US").unwrap().def.compile().unwrap().is_user_level());
    }
}
