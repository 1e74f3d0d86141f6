"""Pods (issue 16.5): workloads sharing an infra process's network, IPC and UTS namespaces and a
parent cgroup whose limits they share (podman's pods, Kubernetes' pause container)."""
