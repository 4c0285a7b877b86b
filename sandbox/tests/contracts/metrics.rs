//! Contract tests for metrics.
