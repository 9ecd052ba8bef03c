//! Talking to a Kubernetes cluster: connecting like kubectl, refusing clusters that do not look
//! throwaway, and watch-driven waiting.

pub mod connect;
pub mod sim;
pub mod transport;
pub mod watch;

pub use connect::{ConnectError, Connection, connect};
pub use watch::{WaitError, until};
