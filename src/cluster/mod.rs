//! Talking to a Kubernetes cluster: connecting like kubectl, refusing clusters that do not look
//! throwaway, and watch-driven waiting.

pub mod connect;
pub mod sim;
pub mod transport;
pub mod watch;

pub use connect::{ConnectError, Connection, connect};

/// The node annotation that says how the node's kubelet plays pods: `fast` removes a deleted pod
/// at once, its grace period ignored (kwok's fast stages); `kind` keeps it for its grace period.
/// The testbed marks its nodes with its pace, and the built-in cluster its own; a real cluster's
/// nodes carry none, and keep grace periods. The executor reads it to know when a terminating pod
/// is owed its removal (crate::exec::at_rest).
pub const PACE_ANNOTATION: &str = "rehearse.dev/pace";
pub use watch::{WaitError, until};
