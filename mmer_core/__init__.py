"""mmer's shared library: what the edge node, the coordinator and the trainer must agree on."""
