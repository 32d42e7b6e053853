//! Turns API models and rf-batch events into tables, text and progress.
