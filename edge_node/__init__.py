"""mmer edge_node service."""
