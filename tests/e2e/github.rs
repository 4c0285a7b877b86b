//! Tests for github; see the module of the same name.
