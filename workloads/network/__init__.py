"""CNI networking for workloads: networks, their plugin configs, attach/detach, reconcile."""
