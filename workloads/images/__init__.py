"""Images: references, the content store, layer unpacking, sources (registry, archives) and the
overlayfs snapshots workloads run on (the seed's containerd images + snapshots)."""
