//! Tests for edit; see the module of the same name.
