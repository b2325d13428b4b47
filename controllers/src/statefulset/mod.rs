//! The StatefulSet controller: pods with stable identities `<set>-<ordinal>`
//! (hostname, subdomain from `serviceName`, per-ordinal claims from
//! `volumeClaimTemplates`), created and deleted in ordinal order
//! (`OrderedReady`) or all at once (`Parallel`), rolled forward or back
//! through ControllerRevisions with `RollingUpdate` (partition,
//! `maxUnavailable`) or `OnDelete`, with the counts and revisions in `status`.

mod controller;
mod identity;
mod status;
mod sync;

/// Runs the StatefulSet controller.
pub async fn run(client: kube::Client) {
    controller::run(client).await;
}
