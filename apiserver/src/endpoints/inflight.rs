//! Limits on requests in flight (`--max-requests-inflight`,
//! `--max-mutating-requests-inflight`), as upstream's max-in-flight filter
//! applies them: a request beyond its limit is answered at once with 429 and
//! `Retry-After: 1` instead of queueing, so an overload costs memory for
//! nothing but the answer. Long-running requests (watches, exec, attach,
//! port-forward, proxy, logs) and `system:masters` are not counted.
//!
//! This is the stepping stone to API Priority and Fairness, which shares the
//! limit between priority levels and queues fairly within each.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api_error::ApiError;
use crate::auth::UserInfo;
use crate::auth::rbac::Action;

/// Subresources whose requests run as long as their stream.
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["attach", "exec", "proxy", "log", "portforward"];

/// The two pools of request slots; `None`: unlimited.
#[derive(Debug, Default)]
pub struct InflightLimits {
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

impl InflightLimits {
    /// `0` means no limit, as upstream's flags do.
    pub fn new(read_only: usize, mutating: usize) -> InflightLimits {
        let pool = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        InflightLimits {
            read_only: pool(read_only),
            mutating: pool(mutating),
        }
    }

    /// A slot for `user` doing `action`, held until the response is ready;
    /// `Ok(None)` when the request is not counted; 429 when the pool is full.
    pub fn admit(
        &self,
        user: &UserInfo,
        action: &Action,
    ) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if user.in_group(crate::auth::MASTERS) || long_running(action) {
            return Ok(None);
        }
        let mutating = matches!(
            action.verb(),
            "create" | "update" | "patch" | "delete" | "deletecollection" | "post" | "put"
        );
        let pool = if mutating {
            &self.mutating
        } else {
            &self.read_only
        };
        let Some(pool) = pool else {
            return Ok(None);
        };
        pool.clone()
            .try_acquire_owned()
            .map(Some)
            .map_err(|_| ApiError::too_many_requests(1))
    }
}

fn long_running(action: &Action) -> bool {
    match action {
        Action::Resource {
            verb, subresource, ..
        } => {
            verb == "watch"
                || verb == "proxy"
                || LONG_RUNNING_SUBRESOURCES.contains(&subresource.as_str())
        }
        Action::NonResource { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(verb: &str, sub: &str) -> Action {
        Action::Resource {
            verb: verb.into(),
            group: String::new(),
            resource: "pods".into(),
            subresource: sub.into(),
            namespace: "d".into(),
            name: String::new(),
        }
    }

    #[test]
    fn a_full_pool_answers_429_and_masters_and_watches_pass() {
        let limits = InflightLimits::new(1, 1);
        let jane = UserInfo {
            name: "jane".into(),
            ..UserInfo::default()
        };
        let held = limits.admit(&jane, &action("list", "")).expect("first");
        assert!(held.is_some());
        let refused = limits.admit(&jane, &action("get", "")).expect_err("full");
        assert_eq!((refused.code, refused.reason), (429, "TooManyRequests"));
        assert!(
            limits
                .admit(&jane, &action("create", ""))
                .expect("mutating pool")
                .is_some()
        );
        assert!(
            limits
                .admit(&jane, &action("watch", ""))
                .expect("watch")
                .is_none()
        );
        assert!(
            limits
                .admit(&jane, &action("get", "log"))
                .expect("logs")
                .is_none()
        );
        let admin = UserInfo {
            name: "admin".into(),
            groups: vec![crate::auth::MASTERS.into()],
            ..UserInfo::default()
        };
        assert!(
            limits
                .admit(&admin, &action("list", ""))
                .expect("exempt")
                .is_none()
        );
        drop(held);
        assert!(
            limits
                .admit(&jane, &action("get", ""))
                .expect("freed")
                .is_some()
        );
    }
}
