//! Source text → typed AST (parser), and AST → canonical source text (formatter).

pub mod ast;
mod expected;
pub mod format;
mod parser;
pub mod placeholders;
mod visit;

pub use parser::{Parsed, parse};
