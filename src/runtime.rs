//! TODO: see DESIGN.md §8.
