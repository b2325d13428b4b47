//! The collector's decisions as pure functions of what the API said about an
//! object and its owners, and the patch bodies that carry them out.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};

use super::graph::{FOREGROUND, ORPHAN};

/// What a GET said about one owner an object names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OwnerState {
    /// Exists and is not being deleted in the foreground.
    Solid,
    /// Not found, or found with another uid.
    Dangling,
    /// Being deleted in the foreground: it waits for its dependents.
    WaitingForDependents,
}

/// The delete propagation a decision asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// What to do with an object, given its owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing to do: no owner references, or owners that all exist.
    Keep,
    /// Some owners still exist: drop the references to these uids only.
    RemoveReferences(Vec<String>),
    /// Every remaining owner waits for this object, which has dependents of
    /// its own: stop blocking those owners (so a cycle cannot deadlock), then
    /// delete this object in the foreground.
    UnblockThenDeleteForeground(Vec<String>),
    /// No owner exists any more (or all are waiting on it): delete it.
    Delete(Propagation),
}

/// Decides an object's fate from its owners' states (by owner uid).
pub(crate) fn decide(
    owners: &[(String, OwnerState)],
    has_dependents: bool,
    finalizers: &[String],
) -> Decision {
    if owners.is_empty() {
        return Decision::Keep;
    }
    let with = |state: OwnerState| -> Vec<String> {
        owners
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(uid, _)| uid.clone())
            .collect()
    };
    let solid = with(OwnerState::Solid);
    let dangling = with(OwnerState::Dangling);
    let waiting = with(OwnerState::WaitingForDependents);
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Decision::Keep;
        }
        let mut gone = dangling;
        gone.extend(waiting);
        return Decision::RemoveReferences(gone);
    }
    if !waiting.is_empty() && has_dependents {
        return Decision::UnblockThenDeleteForeground(waiting);
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    let policy = if has(ORPHAN) {
        Propagation::Orphan
    } else if has(FOREGROUND) || !waiting.is_empty() {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Decision::Delete(policy)
}

/// The next step of an owner being deleted in the foreground.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ForegroundStep {
    /// No dependent blocks it any more: remove the `foregroundDeletion` finalizer.
    Finish,
    /// Still blocked; these dependents (not yet deleting in turn) get another look.
    Wait(Vec<String>),
}

/// Decides from the blocking dependents (uid, whether it is itself deleting
/// its dependents) of an owner being deleted in the foreground.
pub(crate) fn foreground_step(blocking: &[(String, bool)]) -> ForegroundStep {
    if blocking.is_empty() {
        return ForegroundStep::Finish;
    }
    ForegroundStep::Wait(
        blocking
            .iter()
            .filter(|(_, deleting)| !deleting)
            .map(|(uid, _)| uid.clone())
            .collect(),
    )
}

/// A merge patch replacing the owner references with those not in `remove`;
/// the resourceVersion pins it to the version the decision was made on.
pub(crate) fn remove_references_patch(
    resource_version: &str,
    refs: &[OwnerReference],
    remove: &[String],
) -> Value {
    let kept: Vec<&OwnerReference> = refs.iter().filter(|r| !remove.contains(&r.uid)).collect();
    let refs = if kept.is_empty() {
        Value::Null
    } else {
        json!(kept)
    };
    json!({"metadata": {"resourceVersion": resource_version, "ownerReferences": refs}})
}

/// A merge patch setting `blockOwnerDeletion: false` on references to `owners`.
pub(crate) fn unblock_patch(
    resource_version: &str,
    refs: &[OwnerReference],
    owners: &[String],
) -> Value {
    let refs: Vec<OwnerReference> = refs
        .iter()
        .cloned()
        .map(|mut r| {
            if owners.contains(&r.uid) && r.block_owner_deletion == Some(true) {
                r.block_owner_deletion = Some(false);
            }
            r
        })
        .collect();
    json!({"metadata": {"resourceVersion": resource_version, "ownerReferences": refs}})
}

/// A merge patch removing one finalizer.
pub(crate) fn remove_finalizer_patch(
    resource_version: &str,
    finalizers: &[String],
    finalizer: &str,
) -> Value {
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
    let value = if kept.is_empty() {
        Value::Null
    } else {
        json!(kept)
    };
    json!({"metadata": {"resourceVersion": resource_version, "finalizers": value}})
}

#[cfg(test)]
mod tests {
    use super::super::graph::tests::owner_ref;
    use super::*;
    use OwnerState::*;

    fn owners(states: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    /// (name, owner states, has dependents, finalizers, expected decision)
    type Case<'a> = (
        &'a str,
        Vec<(String, OwnerState)>,
        bool,
        &'a Vec<String>,
        Decision,
    );

    #[test]
    fn decisions() {
        let none: Vec<String> = Vec::new();
        let orphan = vec![ORPHAN.to_string()];
        let fg = vec![FOREGROUND.to_string()];
        let cases: Vec<Case<'_>> = vec![
            ("no owners", owners(&[]), false, &none, Decision::Keep),
            (
                "owner exists",
                owners(&[("a", Solid)]),
                false,
                &none,
                Decision::Keep,
            ),
            (
                "all owners absent",
                owners(&[("a", Dangling), ("b", Dangling)]),
                false,
                &none,
                Decision::Delete(Propagation::Background),
            ),
            (
                "some owners absent",
                owners(&[("a", Solid), ("b", Dangling)]),
                false,
                &none,
                Decision::RemoveReferences(vec!["b".into()]),
            ),
            (
                "a solid owner outlives a foreground owner",
                owners(&[("a", WaitingForDependents), ("b", Solid)]),
                false,
                &none,
                Decision::RemoveReferences(vec!["a".into()]),
            ),
            (
                "foreground owner, no dependents of our own",
                owners(&[("a", WaitingForDependents), ("b", Dangling)]),
                false,
                &none,
                Decision::Delete(Propagation::Foreground),
            ),
            (
                "foreground owner and dependents of our own: unblock (cycle safety)",
                owners(&[("a", WaitingForDependents)]),
                true,
                &none,
                Decision::UnblockThenDeleteForeground(vec!["a".into()]),
            ),
            (
                "an orphan finalizer keeps its policy",
                owners(&[("a", Dangling)]),
                true,
                &orphan,
                Decision::Delete(Propagation::Orphan),
            ),
            (
                "a foreground finalizer keeps its policy",
                owners(&[("a", Dangling)]),
                true,
                &fg,
                Decision::Delete(Propagation::Foreground),
            ),
        ];
        for (name, owners, has_dependents, finalizers, want) in cases {
            assert_eq!(decide(&owners, has_dependents, finalizers), want, "{name}");
        }
    }

    #[test]
    fn foreground_steps() {
        assert_eq!(foreground_step(&[]), ForegroundStep::Finish);
        assert_eq!(
            foreground_step(&[("a".into(), false), ("b".into(), true)]),
            ForegroundStep::Wait(vec!["a".into()])
        );
    }

    #[test]
    fn patches() {
        let refs = vec![owner_ref("a", true), owner_ref("b", true)];
        let p = remove_references_patch("7", &refs, &["a".into()]);
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "b");
        assert_eq!(
            p["metadata"]["ownerReferences"].as_array().unwrap().len(),
            1
        );
        let p = remove_references_patch("7", &refs, &["a".into(), "b".into()]);
        assert!(p["metadata"]["ownerReferences"].is_null());

        let p = unblock_patch("7", &refs, &["b".into()]);
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        assert_eq!(
            p["metadata"]["ownerReferences"][1]["blockOwnerDeletion"],
            false
        );

        let fins = vec![FOREGROUND.to_string(), "x/y".to_string()];
        let p = remove_finalizer_patch("7", &fins, FOREGROUND);
        assert_eq!(p["metadata"]["finalizers"], json!(["x/y"]));
        let p = remove_finalizer_patch("7", &fins[..1], FOREGROUND);
        assert!(p["metadata"]["finalizers"].is_null());
    }
}
