//! The relay through which excam workers hand each other decoder states.
