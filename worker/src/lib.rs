//! Runs one chunk of an excam job. The task format and phases arrive with the distributed runtime.
