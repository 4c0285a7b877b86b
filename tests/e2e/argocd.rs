//! Tests for argocd; see the module of the same name.
