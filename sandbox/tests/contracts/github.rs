//! Contract tests for github.
