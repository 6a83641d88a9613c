//! Error types of the codec.
