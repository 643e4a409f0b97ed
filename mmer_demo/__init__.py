"""The one-command demo: trains if needed, runs a coordinator and edge nodes, shows fused emotions."""
