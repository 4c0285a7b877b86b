//! Tests for verify; see the module of the same name.
