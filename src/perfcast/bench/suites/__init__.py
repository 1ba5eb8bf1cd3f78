"""Built-in benchmark suites: CPU and CUDA microbenchmarks, whole-model workloads, pairs."""
