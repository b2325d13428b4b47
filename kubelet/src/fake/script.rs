//! How a fake node plays one pod: the pod's `fake.ironkube.dev/*`
//! annotations read into a [`Script`] (the contract is documented on the
//! [`super`] module), and [`next_step`], the pure decision of what to do with
//! a pod given its script and how long it has been running. Kept free of I/O
//! so the decisions are table-tested.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::pod_status::{is_job_owned, is_terminal, phase};

/// `"true"` (default) or `"false"`: whether a Running pod's containers are
/// ready. Changing it on a live pod flips readiness.
pub const READY: &str = "fake.ironkube.dev/ready";
/// `Succeeded`, `Failed` or `Running`: the phase the pod ends in once it has
/// run for [`RUN_FOR`]; `Running` keeps it running until deleted (or until
/// the annotation changes). Default: `Succeeded` for pods owned by a Job,
/// `Running` for all others.
pub const PHASE_AFTER: &str = "fake.ironkube.dev/phase-after";
/// The exit code every container reports when the pod ends: `0` for
/// `Succeeded` (the default there), non-zero for `Failed` (default `1`).
/// Without [`PHASE_AFTER`] it implies the phase: the pod ends, `Succeeded`
/// on `0` and `Failed` otherwise.
pub const EXIT_CODE: &str = "fake.ironkube.dev/exit-code";
/// How long the pod stays Running before it ends, counted from when the fake
/// node started it: a Go-style duration such as `500ms`, `2s`, `1m30s`.
/// Default `0s`.
pub const RUN_FOR: &str = "fake.ironkube.dev/run-for";

/// A terminal pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    Succeeded,
    Failed,
}

impl Terminal {
    pub fn as_str(self) -> &'static str {
        match self {
            Terminal::Succeeded => "Succeeded",
            Terminal::Failed => "Failed",
        }
    }
}

/// How the pod ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub phase: Terminal,
    /// The exit code of every container; zero exactly when `Succeeded`.
    pub exit_code: i32,
    /// How long the pod runs first.
    pub after: Duration,
}

/// What a pod's annotations ask of the fake node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Whether the containers report ready while the pod runs.
    pub ready: bool,
    /// How the pod ends; `None`: it runs until deleted.
    pub end: Option<End>,
}

/// An annotation the fake node cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("{READY}: want \"true\" or \"false\", got {0:?}")]
    Ready(String),
    #[error("{PHASE_AFTER}: want Succeeded, Failed or Running, got {0:?}")]
    Phase(String),
    #[error("{EXIT_CODE}: want an integer, got {0:?}")]
    ExitCode(String),
    #[error(
        "{EXIT_CODE} {code} contradicts {PHASE_AFTER} {phase}: Succeeded means exit code 0, Failed a non-zero one"
    )]
    Contradiction { phase: &'static str, code: i32 },
    #[error("{RUN_FOR}: want a duration such as 500ms, 2s or 1m30s, got {0:?}")]
    RunFor(String),
}

impl Script {
    /// What kwok's default stages do: run Ready at once, and end a Job's
    /// pod as Succeeded right away.
    pub fn default_for(pod: &Pod) -> Script {
        Script {
            ready: true,
            end: is_job_owned(pod).then_some(End {
                phase: Terminal::Succeeded,
                exit_code: 0,
                after: Duration::ZERO,
            }),
        }
    }

    /// The script `pod`'s annotations give (defaults for those absent).
    pub fn of(pod: &Pod) -> Result<Script, ScriptError> {
        let empty = BTreeMap::new();
        let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
        let get = |key: &str| annotations.get(key).map(|v| v.trim());
        let mut script = Script::default_for(pod);
        if let Some(v) = get(READY) {
            script.ready = match v {
                "true" => true,
                "false" => false,
                _ => return Err(ScriptError::Ready(v.into())),
            };
        }
        let exit_code = get(EXIT_CODE)
            .map(|v| {
                v.parse::<i32>()
                    .map_err(|_| ScriptError::ExitCode(v.into()))
            })
            .transpose()?;
        let phase = match (get(PHASE_AFTER), exit_code) {
            (Some("Succeeded"), _) => Some(Terminal::Succeeded),
            (Some("Failed"), _) => Some(Terminal::Failed),
            (Some("Running"), _) => None,
            (Some(v), _) => return Err(ScriptError::Phase(v.into())),
            // An exit code says the containers exit; it implies the phase.
            (None, Some(0)) => Some(Terminal::Succeeded),
            (None, Some(_)) => Some(Terminal::Failed),
            (None, None) => script.end.map(|e| e.phase),
        };
        let after = get(RUN_FOR)
            .map(|v| parse_duration(v).ok_or_else(|| ScriptError::RunFor(v.into())))
            .transpose()?
            .unwrap_or(Duration::ZERO);
        script.end = match phase {
            None => None,
            Some(phase) => {
                let exit_code = exit_code.unwrap_or(match phase {
                    Terminal::Succeeded => 0,
                    Terminal::Failed => 1,
                });
                if (phase == Terminal::Succeeded) != (exit_code == 0) {
                    return Err(ScriptError::Contradiction {
                        phase: phase.as_str(),
                        code: exit_code,
                    });
                }
                Some(End {
                    phase,
                    exit_code,
                    after,
                })
            }
        };
        Ok(script)
    }
}

/// What the fake node does next with a pod bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Being deleted: stop it (report it terminal unless it already is),
    /// then remove it.
    Remove { stop_first: bool },
    /// Terminal: nothing runs; its IP is free.
    Done,
    /// Not started yet: report it Running.
    Start,
    /// Running: keep the reported readiness in step with the script, and
    /// look again after `recheck` (when it is due to end).
    Run { recheck: Option<Duration> },
    /// Running for long enough: report it ended.
    End(End),
}

/// The next step for `pod`; `running_for` is how long it has been Running
/// (ignored in other phases).
pub(crate) fn next_step(pod: &Pod, script: &Script, running_for: Duration) -> Step {
    if pod.metadata.deletion_timestamp.is_some() {
        return Step::Remove {
            stop_first: !is_terminal(pod),
        };
    }
    match phase(pod) {
        "Succeeded" | "Failed" => Step::Done,
        "Running" => match script.end {
            Some(end) if running_for >= end.after => Step::End(end),
            Some(end) => Step::Run {
                recheck: Some(end.after - running_for),
            },
            None => Step::Run { recheck: None },
        },
        _ => Step::Start,
    }
}

/// A Go-style duration: one or more `<integer><unit>` with units `ms`, `s`,
/// `m` and `h` (`1m30s`), or a bare `0`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let one = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return None,
        };
        total = total.checked_add(one.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
    use k8s_openapi::jiff::Timestamp;

    fn pod(job: bool, phase: &str, annotations: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                owner_references: job.then(|| {
                    vec![OwnerReference {
                        kind: "Job".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    fn end(phase: Terminal, exit_code: i32, secs: u64) -> Option<End> {
        Some(End {
            phase,
            exit_code,
            after: Duration::from_secs(secs),
        })
    }

    #[test]
    fn defaults_follow_kwok() {
        let plain = Script::of(&pod(false, "Pending", &[])).expect("valid");
        assert_eq!(
            plain,
            Script {
                ready: true,
                end: None
            }
        );
        let job = Script::of(&pod(true, "Pending", &[])).expect("valid");
        assert_eq!(job.end, end(Terminal::Succeeded, 0, 0));
    }

    #[test]
    fn annotations_shape_the_script() {
        type Case<'a> = (bool, &'a [(&'a str, &'a str)], Script);
        let cases: &[Case] = &[
            (
                false,
                &[(READY, "false")],
                Script {
                    ready: false,
                    end: None,
                },
            ),
            (
                true,
                &[(PHASE_AFTER, "Running")],
                Script {
                    ready: true,
                    end: None,
                },
            ),
            (
                true,
                &[(PHASE_AFTER, "Failed")],
                Script {
                    ready: true,
                    end: end(Terminal::Failed, 1, 0),
                },
            ),
            (
                false,
                &[(PHASE_AFTER, "Failed"), (EXIT_CODE, "42"), (RUN_FOR, "2s")],
                Script {
                    ready: true,
                    end: end(Terminal::Failed, 42, 2),
                },
            ),
            (
                false,
                &[(PHASE_AFTER, "Succeeded"), (RUN_FOR, "1m30s")],
                Script {
                    ready: true,
                    end: end(Terminal::Succeeded, 0, 90),
                },
            ),
            (
                // The Job default's end, delayed.
                true,
                &[(RUN_FOR, "3s"), (READY, "false")],
                Script {
                    ready: false,
                    end: end(Terminal::Succeeded, 0, 3),
                },
            ),
            (
                // An exit code alone makes any pod end, in the phase it implies.
                false,
                &[(EXIT_CODE, "3"), (RUN_FOR, "1s")],
                Script {
                    ready: true,
                    end: end(Terminal::Failed, 3, 1),
                },
            ),
            (
                true,
                &[(EXIT_CODE, "0")],
                Script {
                    ready: true,
                    end: end(Terminal::Succeeded, 0, 0),
                },
            ),
            (
                // Running wins: the containers never exit.
                true,
                &[(PHASE_AFTER, "Running"), (EXIT_CODE, "3")],
                Script {
                    ready: true,
                    end: None,
                },
            ),
        ];
        for (job, annotations, want) in cases {
            assert_eq!(
                Script::of(&pod(*job, "Pending", annotations)).as_ref(),
                Ok(want),
                "{annotations:?}"
            );
        }
    }

    #[test]
    fn bad_annotations_are_errors() {
        let cases: &[(&[(&str, &str)], ScriptError)] = &[
            (&[(READY, "yes")], ScriptError::Ready("yes".into())),
            (&[(PHASE_AFTER, "Done")], ScriptError::Phase("Done".into())),
            (
                &[(PHASE_AFTER, "Failed"), (EXIT_CODE, "x")],
                ScriptError::ExitCode("x".into()),
            ),
            (
                &[(PHASE_AFTER, "Succeeded"), (EXIT_CODE, "2")],
                ScriptError::Contradiction {
                    phase: "Succeeded",
                    code: 2,
                },
            ),
            (
                &[(PHASE_AFTER, "Failed"), (EXIT_CODE, "0")],
                ScriptError::Contradiction {
                    phase: "Failed",
                    code: 0,
                },
            ),
            (&[(RUN_FOR, "2")], ScriptError::RunFor("2".into())),
        ];
        for (annotations, want) in cases {
            assert_eq!(
                Script::of(&pod(false, "Pending", annotations)).as_ref(),
                Err(want),
                "{annotations:?}"
            );
        }
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("0", Some(0)),
            ("0s", Some(0)),
            ("500ms", Some(500)),
            ("2s", Some(2_000)),
            ("1m30s", Some(90_000)),
            ("1h", Some(3_600_000)),
            ("1s500ms", Some(1_500)),
            ("", None),
            ("s", None),
            ("2", None),
            ("-1s", None),
            ("1.5s", None),
            ("2d", None),
        ] {
            assert_eq!(
                parse_duration(text),
                want.map(Duration::from_millis),
                "{text:?}"
            );
        }
    }

    #[test]
    fn steps_through_the_lifecycle() {
        let script = Script {
            ready: true,
            end: end(Terminal::Failed, 7, 2),
        };
        let at = |phase: &str, secs: u64| {
            next_step(&pod(false, phase, &[]), &script, Duration::from_secs(secs))
        };
        assert_eq!(at("Pending", 0), Step::Start);
        assert_eq!(
            at("Running", 0),
            Step::Run {
                recheck: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            at("Running", 1),
            Step::Run {
                recheck: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(at("Running", 2), Step::End(script.end.expect("end")));
        assert_eq!(at("Failed", 5), Step::Done);
        assert_eq!(at("Succeeded", 5), Step::Done);

        let forever = Script {
            ready: false,
            end: None,
        };
        assert_eq!(
            next_step(
                &pod(false, "Running", &[]),
                &forever,
                Duration::from_secs(3600)
            ),
            Step::Run { recheck: None }
        );

        let mut deleted = pod(false, "Running", &[]);
        deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert_eq!(
            next_step(&deleted, &script, Duration::ZERO),
            Step::Remove { stop_first: true }
        );
        deleted.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert_eq!(
            next_step(&deleted, &script, Duration::ZERO),
            Step::Remove { stop_first: false }
        );
    }
}
