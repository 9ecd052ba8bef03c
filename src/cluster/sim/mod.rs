//! The built-in cluster: Kubernetes' API served in-process to `kube::Client`, over an in-memory
//! store with the control plane's controllers, a scheduler, a kubelet stand-in and a clock of its
//! own. The executor cannot tell it from a real API server: it runs the same code, with the same
//! watches and the same requests, on both.

pub mod api;
pub mod claims;
pub mod clock;
pub mod cluster_ips;
pub mod controllers;
pub mod defaults;
pub mod error;
pub mod facts;
pub mod json_patch;
pub mod label_keys;
pub mod node_ports;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod store;
pub mod typed_patch;
pub mod validate;

/// The most worker nodes a built-in cluster has: Kubernetes' documented limit for one cluster.
/// A scenario that asks for more (`nodes N`) runs on the default cluster and fails up front, as
/// on a real cluster that is too small; making them would only exhaust memory (5,000 workers take
/// about 245 MB).
pub const MAX_WORKERS: u32 = 5_000;

/// The most replicas the Deployments and ReplicaSets of one namespace (one scenario) of a
/// built-in cluster may ask for in all (each ReplicaSet a Deployment owns counted in its
/// Deployment). A write beyond it stops the scenario with an error that says to run it on a
/// cluster: the built-in cluster makes pods synchronously within the write, and 10,000 already
/// take it about 8 s and 520 MB, while 2,147,483,647 (what the API accepts) would take it longer
/// than any timeout and all the memory there is.
pub const MAX_REPLICAS: i64 = 10_000;

/// How fast pods come and go, as the testbed's paces have them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pace {
    /// kwok's fast stages: a scheduled pod is Ready at once; a deleted pod is gone at once.
    #[default]
    Fast,
    /// kind's: containers take seconds to start; a deleted pod terminates for its whole grace
    /// period (the runbook's services ignore SIGTERM), still serving.
    Kind,
}
