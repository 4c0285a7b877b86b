//! Contract tests for git_host.
