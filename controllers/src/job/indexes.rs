//! Completion indexes of Indexed Jobs: the compressed range notation of
//! `status.completedIndexes` ("0-2,4"), a pod's index, and which indexes to
//! start next.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

/// Annotation and label carrying a pod's completion index.
pub(crate) const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Parses "0-2,4" into {0,1,2,4}, keeping only indexes below `completions`;
/// malformed parts are skipped, as upstream does.
pub(crate) fn parse(ranges: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in ranges.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            continue;
        };
        let last = last.min(completions.saturating_sub(1));
        out.extend((first.max(0)..=last).filter(|i| *i < completions));
    }
    out
}

/// Formats indexes as ascending ranges: consecutive runs of two or more
/// become "a-b", lone indexes stay "a".
pub(crate) fn format(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(",")
}

/// A pod's completion index from its annotation (the label is informative).
pub(crate) fn of_pod(pod: &Pod) -> Option<i32> {
    let value = pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    // Upstream rejects leading zeros and signs: "01" is not index 1.
    if value.is_empty()
        || (value.len() > 1 && value.starts_with('0'))
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    value.parse().ok()
}

/// The lowest `count` indexes in `[0, completions)` that are neither done
/// nor being worked on by an active pod.
pub(crate) fn first_pending(
    count: usize,
    completions: i32,
    succeeded: &BTreeSet<i32>,
    active: &BTreeSet<i32>,
) -> Vec<i32> {
    (0..completions.max(0))
        .filter(|i| !succeeded.contains(i) && !active.contains(i))
        .take(count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[i32]) -> BTreeSet<i32> {
        v.iter().copied().collect()
    }

    #[test]
    fn compresses_ranges() {
        for (indexes, want) in [
            (vec![], ""),
            (vec![0], "0"),
            (vec![0, 1, 2, 4], "0-2,4"),
            (vec![1, 3, 5], "1,3,5"),
            (vec![0, 1, 3, 4, 5, 9], "0-1,3-5,9"),
        ] {
            assert_eq!(format(&set(&indexes)), want, "{indexes:?}");
        }
    }

    #[test]
    fn parses_ranges_within_completions() {
        for (text, completions, want) in [
            ("", 5, vec![]),
            ("0-2,4", 5, vec![0, 1, 2, 4]),
            ("0-2,4", 3, vec![0, 1, 2]),
            ("1,x,3-", 5, vec![1]),
            ("3-7", 5, vec![3, 4]),
        ] {
            assert_eq!(parse(text, completions), set(&want), "{text:?}");
        }
    }

    #[test]
    fn pending_indexes_skip_done_and_active_ones() {
        assert_eq!(first_pending(2, 5, &set(&[0]), &set(&[1])), vec![2, 3]);
        assert_eq!(first_pending(9, 3, &set(&[]), &set(&[])), vec![0, 1, 2]);
        assert_eq!(
            first_pending(1, 2, &set(&[0, 1]), &set(&[])),
            Vec::<i32>::new()
        );
    }

    #[test]
    fn reads_the_index_annotation() {
        let mut pod = Pod::default();
        assert_eq!(of_pod(&pod), None);
        for (value, want) in [
            ("3", Some(3)),
            ("0", Some(0)),
            ("03", None),
            ("-1", None),
            ("x", None),
        ] {
            pod.metadata.annotations =
                Some([(COMPLETION_INDEX.to_string(), value.to_string())].into());
            assert_eq!(of_pod(&pod), want, "{value}");
        }
    }
}
