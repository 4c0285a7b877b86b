//! The leaf layer: error types and the small types every other layer shares. It imports nothing of
//! the product, so everything may import it.

pub mod cancel;
pub mod error;
pub mod merge_method;
pub mod retry;
pub mod secret;
pub mod state;
pub mod text;
pub mod time;
pub mod wait;

pub use error::{chain, retry_after, Classify, ErrorKind, StepError};
pub use merge_method::MergeMethod;
pub use secret::Secret;
pub use text::md_cell;
pub use time::{humantime, parse_duration};
