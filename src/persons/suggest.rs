//! Which accounts look like one person: pure, over the accounts and the dismissed pairs.
//!
//! Media servers report names, not emails (Plex's `/accounts` and Jellyfin's `/Users` carry
//! none), but many accounts are named by an email. So an account's keys are its folded name
//! (case, accents kept, spaces and punctuation dropped: "Alice B." and `alice_b` meet) and,
//! for an email-shaped name, the whole address and its local part ("alice@example.com" meets
//! "alice" elsewhere).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::db::persons::Account;

/// Folded names shorter than this match too much to suggest anything ("tv", "me").
const MIN_KEY_CHARS: usize = 3;

/// A group of accounts on two or more servers that look like one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// What matched: `name` or `email`.
    pub reason: &'static str,
    /// The name a confirmed person gets unless the admin types another.
    pub name: String,
    /// Ascending by id.
    pub accounts: Vec<Account>,
}

fn fold(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// The keys an account is matched by, each with what kind of match it is.
pub fn keys(name: &str) -> Vec<(&'static str, String)> {
    let mut keys = Vec::new();
    let trimmed = name.trim();
    if let Some((local, domain)) = trimmed.split_once('@')
        && !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
    {
        keys.push(("email", format!("@{}", trimmed.to_lowercase())));
        let local = fold(local);
        if local.chars().count() >= MIN_KEY_CHARS {
            keys.push(("name", local));
        }
        return keys;
    }
    let folded = fold(trimmed);
    if folded.chars().count() >= MIN_KEY_CHARS {
        keys.push(("name", folded));
    }
    keys
}

/// Groups of accounts sharing a key, on at least two servers, not already one person, and
/// not every pair of them dismissed. Each group once (the strongest reason wins), largest
/// first, then by name.
pub fn suggest(accounts: &[Account], dismissed: &HashSet<(i64, i64)>) -> Vec<Suggestion> {
    let mut by_key: BTreeMap<String, (&'static str, Vec<&Account>)> = BTreeMap::new();
    for a in accounts {
        for (reason, key) in keys(&a.name) {
            by_key.entry(key).or_insert((reason, Vec::new())).1.push(a);
        }
    }
    let mut seen: BTreeMap<BTreeSet<i64>, usize> = BTreeMap::new();
    let mut out: Vec<Suggestion> = Vec::new();
    for (reason, group) in by_key.into_values() {
        let servers: BTreeSet<i64> = group.iter().map(|a| a.server_id).collect();
        if servers.len() < 2 {
            continue;
        }
        let persons: BTreeSet<Option<i64>> = group.iter().map(|a| a.person_id).collect();
        if persons.len() == 1 && persons.iter().next().is_some_and(Option::is_some) {
            continue; // already one person
        }
        let open_pair = group.iter().enumerate().any(|(i, a)| {
            group[i + 1..].iter().any(|b| {
                a.server_id != b.server_id
                    && (a.person_id.is_none() || a.person_id != b.person_id)
                    && !dismissed.contains(&(a.id.min(b.id), a.id.max(b.id)))
            })
        });
        if !open_pair {
            continue;
        }
        let ids: BTreeSet<i64> = group.iter().map(|a| a.id).collect();
        let mut members: Vec<Account> = group.into_iter().cloned().collect();
        members.sort_by_key(|a| a.id);
        let suggestion = Suggestion { reason, name: members[0].name.clone(), accounts: members };
        match seen.get(&ids) {
            Some(&i) if reason == "email" => out[i] = suggestion,
            Some(_) => {}
            None => {
                seen.insert(ids, out.len());
                out.push(suggestion);
            }
        }
    }
    out.sort_by(|a, b| b.accounts.len().cmp(&a.accounts.len()).then_with(|| a.name.cmp(&b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(id: i64, server_id: i64, name: &str, person_id: Option<i64>) -> Account {
        Account {
            id,
            server_id,
            server_name: format!("S{server_id}"),
            name: name.into(),
            person_id,
        }
    }

    #[test]
    fn names_fold_case_spaces_and_punctuation_and_emails_match_their_local_part() {
        assert_eq!(keys("Alice B."), [("name", "aliceb".to_owned())]);
        assert_eq!(keys("alice_b"), [("name", "aliceb".to_owned())]);
        assert_eq!(keys("Zoë"), [("name", "zoë".to_owned())]);
        assert_eq!(
            keys("Alice@Example.com"),
            [("email", "@alice@example.com".to_owned()), ("name", "alice".to_owned())]
        );
        assert!(keys("tv").is_empty(), "too short to mean anything");
        assert!(keys("a@b").is_empty(), "not an address, and too short as a name");
    }

    #[test]
    fn suggests_across_servers_only_and_not_what_is_linked_or_dismissed() {
        let accounts = [
            acc(1, 1, "alice", None),
            acc(2, 2, "Alice", None),
            acc(3, 1, "alice.", None), // same server as 1: alone it would not count
            acc(4, 1, "bob", Some(9)),
            acc(5, 2, "Bob", Some(9)),
            acc(6, 1, "carol@example.com", None),
            acc(7, 3, "Carol", None),
            acc(8, 3, "dave", None),
        ];
        let found = suggest(&accounts, &HashSet::new());
        let groups: Vec<(&str, Vec<i64>)> =
            found.iter().map(|s| (s.reason, s.accounts.iter().map(|a| a.id).collect())).collect();
        assert_eq!(groups, [("name", vec![1, 2, 3]), ("name", vec![6, 7])]);
        assert_eq!(found[0].name, "alice");

        // Dismissing every cross-server pair of the alices hides them; a new account brings
        // them back.
        let dismissed: HashSet<(i64, i64)> = [(1, 2), (2, 3)].into();
        let found = suggest(&accounts, &dismissed);
        assert_eq!(found.len(), 1);
        let mut more = accounts.to_vec();
        more.push(acc(10, 3, "ALICE", None));
        assert_eq!(suggest(&more, &dismissed)[0].accounts.len(), 4);
    }

    #[test]
    fn an_account_can_join_an_existing_person() {
        let accounts =
            [acc(1, 1, "erin", Some(3)), acc(2, 2, "erin", Some(3)), acc(4, 3, "Erin", None)];
        let found = suggest(&accounts, &HashSet::new());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].accounts.iter().map(|a| a.id).collect::<Vec<_>>(), [1, 2, 4]);
    }

    #[test]
    fn an_email_match_names_its_reason() {
        let accounts = [acc(1, 1, "frank@example.com", None), acc(2, 2, "Frank@example.com", None)];
        let found = suggest(&accounts, &HashSet::new());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].reason, "email");
    }
}
