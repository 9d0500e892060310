"""Who holds which device: kubelet pod-resources, with a process -> cgroup -> pod fallback."""
