//! rumpnet dpdk backend (being written)
