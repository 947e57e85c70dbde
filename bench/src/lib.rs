//! rumpnet-bench
