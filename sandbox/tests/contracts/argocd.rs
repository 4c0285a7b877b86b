//! Contract tests for argocd.
