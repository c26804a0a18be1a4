//! Maintenance rules: what an admin may write, checked once with errors naming the field,
//! and the rule as the evaluation reads it. The API and the editor page both come here.
//!
//! Every rule only proposes. Nothing is deleted without an admin selecting candidates and
//! confirming; there is no automatic mode.

use serde_json::{Value, json};

use super::criteria::{self, Criterion, Match};
use crate::db::libraries::LibraryRow;
use crate::db::maintenance::{Cascade, RuleInput, RuleRow};
use crate::error::{AppError, AppResult};

/// A stored rule, its criteria read.
#[derive(Debug, Clone)]
pub struct Rule {
    pub row: RuleRow,
    pub how: Match,
    pub criteria: Vec<Criterion>,
}

impl Rule {
    /// Reads a stored rule (its JSON was checked when it was saved).
    pub fn from_row(row: RuleRow) -> AppResult<Self> {
        let how = Match::parse(&row.match_).ok_or_else(|| {
            AppError::internal("reading a maintenance rule", format!("match {:?}", row.match_))
        })?;
        let criteria = criteria::parse_list(&row.criteria).map_err(|e| {
            AppError::internal(format!("reading maintenance rule {}", row.id), e.to_string())
        })?;
        Ok(Self { row, how, criteria })
    }

    /// The rule as the API writes it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.row.id,
            "name": self.row.name,
            "enabled": self.row.enabled,
            "library_ids": self.row.library_ids,
            "match": self.how.as_str(),
            "criteria": self.criteria.iter().map(Criterion::to_json).collect::<Vec<_>>(),
            "cascade": self.row.cascade,
        })
    }

    /// "Movie not watched for 365 days and larger than 10 GB".
    pub fn describe(&self) -> String {
        let joiner = match self.how {
            Match::All => " and ",
            Match::Any => " or ",
        };
        let text = self.criteria.iter().map(Criterion::describe).collect::<Vec<_>>().join(joiner);
        let mut chars = text.chars();
        chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
    }
}

/// A rule as posted: every field optional so that a `PATCH` can leave some out.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleChanges {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub library_ids: Option<Vec<i64>>,
    #[serde(rename = "match")]
    pub match_: Option<String>,
    pub criteria: Option<Value>,
    pub cascade: Option<Cascade>,
}

/// Checks `changes` over `base` (the stored rule when editing) against the libraries that
/// exist; the result is what is written.
pub fn check(
    changes: RuleChanges,
    base: Option<&Rule>,
    libraries: &[LibraryRow],
) -> AppResult<RuleInput> {
    let name = changes.name.or_else(|| base.map(|b| b.row.name.clone())).unwrap_or_default();
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AppError::validation("name", "give the rule a name of 1 to 80 characters"));
    }
    let library_ids =
        changes.library_ids.or_else(|| base.map(|b| b.row.library_ids.clone())).unwrap_or_default();
    if library_ids.is_empty() {
        return Err(AppError::validation("library_ids", "choose at least one library"));
    }
    for (i, id) in library_ids.iter().enumerate() {
        match libraries.iter().find(|l| l.id == *id) {
            None => {
                return Err(AppError::validation(
                    format!("library_ids[{i}]"),
                    format!("there is no library {id}"),
                ));
            }
            Some(l) if !l.kind.has_items() => {
                return Err(AppError::validation(
                    format!("library_ids[{i}]"),
                    format!(
                        "{} is a {} library: maintenance covers movie and show libraries",
                        l.name, l.kind
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let how = match changes.match_.as_deref() {
        Some(m) => Match::parse(m).ok_or_else(|| AppError::validation("match", "all or any"))?,
        None => base.map_or(Match::All, |b| b.how),
    };
    let criteria = match changes.criteria {
        Some(value) => criteria::parse_list(&value)?,
        None => match base {
            Some(b) => b.criteria.clone(),
            None => {
                return Err(AppError::validation(
                    "criteria",
                    "a rule needs at least one criterion",
                ));
            }
        },
    };
    let mut library_ids = library_ids;
    library_ids.sort_unstable();
    library_ids.dedup();
    Ok(RuleInput {
        name,
        enabled: changes.enabled.or_else(|| base.map(|b| b.row.enabled)).unwrap_or(true),
        match_: how.as_str(),
        criteria: Value::Array(criteria.iter().map(Criterion::to_json).collect()),
        cascade: changes.cascade.or_else(|| base.map(|b| b.row.cascade)).unwrap_or_default(),
        library_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::library::LibraryKind;

    fn library(id: i64, kind: LibraryKind) -> LibraryRow {
        LibraryRow {
            id,
            server_id: 1,
            server_name: "Plex".into(),
            external_id: id.to_string(),
            name: format!("Library {id}"),
            kind,
            item_count: 0,
            size_bytes: 0,
            created_at: 0,
            synced_at: None,
        }
    }

    fn field(r: AppResult<RuleInput>) -> String {
        match r {
            Err(AppError::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rule_is_checked_field_by_field() {
        let libs = [library(1, LibraryKind::Movie), library(2, LibraryKind::Music)];
        let good = || RuleChanges {
            name: Some(" Old films ".into()),
            library_ids: Some(vec![1, 1]),
            criteria: Some(json!([{"type": "unwatched_movie"}])),
            ..RuleChanges::default()
        };
        let input = check(good(), None, &libs).unwrap();
        assert_eq!((input.name.as_str(), input.match_, input.enabled), ("Old films", "all", true));
        assert_eq!(input.library_ids, [1]);
        assert_eq!(input.criteria, json!([{"type": "unwatched_movie", "params": {"days": 365}}]));
        assert_eq!(input.cascade, Cascade::default(), "no cascade unless asked");

        assert_eq!(
            field(check(RuleChanges { name: Some(" ".into()), ..good() }, None, &libs)),
            "name"
        );
        assert_eq!(
            field(check(RuleChanges { library_ids: Some(vec![]), ..good() }, None, &libs)),
            "library_ids"
        );
        assert_eq!(
            field(check(RuleChanges { library_ids: Some(vec![1, 9]), ..good() }, None, &libs)),
            "library_ids[1]"
        );
        assert_eq!(
            field(check(RuleChanges { library_ids: Some(vec![2]), ..good() }, None, &libs)),
            "library_ids[0]"
        );
        assert_eq!(
            field(check(RuleChanges { match_: Some("most".into()), ..good() }, None, &libs)),
            "match"
        );
        assert_eq!(field(check(RuleChanges { criteria: None, ..good() }, None, &libs)), "criteria");
        assert_eq!(
            field(check(
                RuleChanges {
                    criteria: Some(json!([{"type": "large_file", "params": {"min_size_gb": -1}}])),
                    ..good()
                },
                None,
                &libs
            )),
            "criteria[0].params.min_size_gb"
        );
    }

    #[test]
    fn a_patch_keeps_what_it_leaves_out() {
        let libs = [library(1, LibraryKind::Movie)];
        let row = RuleRow {
            id: 4,
            name: "Big".into(),
            enabled: false,
            match_: "any".into(),
            criteria: json!([{"type": "large_file", "params": {"min_size_gb": 20}}]),
            cascade: Cascade { radarr: true, sonarr: false, seerr: true },
            created_at: 0,
            updated_at: 0,
            evaluated_at: None,
            library_ids: vec![1],
            candidates: 0,
            size_bytes: 0,
        };
        let rule = Rule::from_row(row).unwrap();
        assert_eq!(rule.describe(), "Larger than 20 GB");
        let input = check(
            RuleChanges { name: Some("Bigger".into()), ..RuleChanges::default() },
            Some(&rule),
            &libs,
        )
        .unwrap();
        assert_eq!((input.name.as_str(), input.enabled, input.match_), ("Bigger", false, "any"));
        assert_eq!(input.cascade, Cascade { radarr: true, sonarr: false, seerr: true });
        assert_eq!(
            input.criteria,
            json!([{"type": "large_file", "params": {"min_size_gb": 20.0}}])
        );
    }
}
