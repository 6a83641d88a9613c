//! Benchmarks and the libvpx comparison harness for excam.
