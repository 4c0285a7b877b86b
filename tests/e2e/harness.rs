//! The shared test context; see harness docs.
