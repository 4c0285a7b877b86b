//! Tests for rollback; see the module of the same name.
