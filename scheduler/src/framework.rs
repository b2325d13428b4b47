//! The scheduling framework's extension points as small traits, and the
//! profile that registers plugins at them, modelled on upstream's
//! `framework/interface.go`: filters decide whether a pod may run on a node,
//! score plugins rank the nodes that passed, and each score plugin's result
//! is normalised to 0..=100 and multiplied by its weight.

use crate::cache::Cache;
use crate::node_info::{NodeInfo, PodInfo};
use crate::plugins::inter_pod_affinity;

/// Highest score a plugin may give a node after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;

/// The outcome class of a plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    /// The node does not fit now, but could after preemption.
    Unschedulable,
    /// The node does not fit, and preempting pods would not change that.
    UnschedulableAndUnresolvable,
}

/// A plugin's verdict with the human-readable reasons upstream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Status {
    pub fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
        }
    }

    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Status {
            code,
            reasons: vec![reason.into()],
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// All reasons joined as upstream's `Status.Message()` does.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Data PreFilter steps compute once per scheduling cycle for the filters
/// (upstream's CycleState, with a typed slot per plugin that needs one).
#[derive(Debug, Default, Clone)]
pub struct CycleState {
    pub inter_pod_affinity: Option<inter_pod_affinity::State>,
}

/// Decides whether a pod can run on a node.
pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status;
    /// PreFilter: precompute cluster-wide data for this pod's cycle.
    fn pre_filter(&self, _pod: &PodInfo, _cache: &Cache, _state: &mut CycleState) {}
    /// Filter with the cycle's precomputed data; plugins without PreFilter
    /// keep the default.
    fn filter_with_state(&self, pod: &PodInfo, _state: &CycleState, node: &NodeInfo) -> Status {
        self.filter(pod, node)
    }
}

/// Ranks feasible nodes for a pod.
pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Upstream's PreScore returning Skip: the plugin has nothing to say
    /// about this pod and contributes 0 everywhere.
    fn skip(&self, _pod: &PodInfo) -> bool {
        false
    }
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64;
    /// Maps raw scores into 0..=MAX_NODE_SCORE; the default assumes they
    /// already are.
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// A score plugin with the weight its result is multiplied by.
pub struct WeightedScore {
    pub plugin: Box<dyn ScorePlugin>,
    pub weight: i64,
}

/// The plugins one scheduler name runs, in order.
pub struct Profile {
    pub scheduler_name: String,
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scorers: Vec<WeightedScore>,
}

impl Profile {
    /// Runs every filter's PreFilter step for a new cycle.
    pub fn pre_filter(&self, pod: &PodInfo, cache: &Cache) -> CycleState {
        let mut state = CycleState::default();
        for f in &self.filters {
            f.pre_filter(pod, cache, &mut state);
        }
        state
    }

    /// Runs the filters in order, stopping at the first rejection as
    /// upstream does, so each node reports one plugin's reasons.
    pub fn run_filters(&self, pod: &PodInfo, state: &CycleState, node: &NodeInfo) -> Status {
        for f in &self.filters {
            let s = f.filter_with_state(pod, state, node);
            if !s.is_success() {
                return s;
            }
        }
        Status::success()
    }

    /// Total weighted score per node, in the order of `nodes`.
    pub fn run_scores(&self, pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
        let mut total = vec![0i64; nodes.len()];
        let mut scores = vec![0i64; nodes.len()];
        for ws in &self.scorers {
            if ws.plugin.skip(pod) {
                continue;
            }
            for (s, n) in scores.iter_mut().zip(nodes) {
                *s = ws.plugin.score(pod, n);
            }
            ws.plugin.normalize(&mut scores);
            for (t, s) in total.iter_mut().zip(&scores) {
                *t += s * ws.weight;
            }
        }
        total
    }
}

/// Upstream's `DefaultNormalizeScore`: scale to 0..=max by the largest
/// score, optionally reversed so that fewer "bad" points rank higher.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let cases: [(&[i64], bool, &[i64]); 5] = [
            (&[0, 0, 0], false, &[0, 0, 0]),
            (&[0, 0, 0], true, &[100, 100, 100]),
            (&[1, 2, 4], false, &[25, 50, 100]),
            (&[1, 2, 4], true, &[75, 50, 0]),
            (&[3, 0], true, &[0, 100]),
        ];
        for (input, reverse, want) in cases {
            let mut s = input.to_vec();
            default_normalize(&mut s, reverse);
            assert_eq!(s, want, "{input:?} reverse={reverse}");
        }
    }

    #[test]
    fn message_joins_reasons() {
        let s = Status {
            code: Code::Unschedulable,
            reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        };
        assert_eq!(s.message(), "Insufficient cpu, Insufficient memory");
    }
}
