//! Containers: IVF, Y4M and raw I420.
