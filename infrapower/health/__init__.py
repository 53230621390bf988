"""Power-aware node health: a node's own power chain, read live with the
PowerChain's code, as Pacemaker's node health colours (green, yellow,
red), for the OCF resource agent ocf/power-health (docs/cluster.md)."""
