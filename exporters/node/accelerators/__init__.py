"""Accelerator backends: NVML for NVIDIA GPUs, npu-smi for Huawei Ascend NPUs."""
