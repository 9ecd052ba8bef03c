//! The pure vocabulary shared by the checker, the executor and the reports: label keys and
//! values, label changes, annotation rules, selectors, object kinds and references. Nothing here
//! talks to a cluster.

pub mod annotations;
pub mod duration;
pub mod file_name;
pub mod ip;
pub mod labels;
pub mod mirroring;
pub mod object_ref;
pub mod resource_version;
pub mod selector;

pub use labels::{LabelChange, LabelChangeKind};
pub use object_ref::{Kind, ObjectRef};
pub use selector::{Operator, Requirement, Selector};
