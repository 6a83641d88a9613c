//! Containers: IVF, Y4M and raw I420.
//!
//! Everything here works over [`std::io::Read`] / [`std::io::Write`] (or
//! byte slices, which implement them); the codec crate never opens files.

pub mod i420;
pub mod ivf;
pub mod y4m;
