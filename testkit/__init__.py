"""What the tests and the benchmarks share: loopback servers, frames, tiny models, fault clusters."""
