//! Who may hold the floating address. The LAN protocol decides among the group's nodes
//! (see [`crate::state`]); [`etcd`] lets a key under an etcd lease decide instead, so that
//! a partition never yields two holders.

pub mod etcd;
