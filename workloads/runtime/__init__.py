"""The runtime: namespaces, cgroup placement, pivot_root and exec of one workload process."""
