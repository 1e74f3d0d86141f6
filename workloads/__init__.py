"""The launch wing: the seed's containerd (lifecycle), runc (runtime) and shim (supervisor) roles.

    lifecycle/   manager, restart policies, records        (containerd)
    runtime/     spec, namespaces, mounts, security, exec   (runc)
    supervisor/  fork server, shim, logs, run record        (shim)

runtime/ and supervisor/ stay importable by a small single-threaded fork server: they import
nothing of aiohttp, textual, yaml, prometheus_client, collectors or policies (import-linter).
"""
