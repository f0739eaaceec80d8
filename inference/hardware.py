"""GPU facts for the status widget and /api/health (with --show-hardware-stats)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def gpu_facts() -> list[dict]:
    """Return name, memory and load of each NVIDIA GPU; an empty list where there is none.

    Reads NVML (nvidia-ml-py); a machine without the NVIDIA driver simply has
    no GPUs to report.
    """
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver, no GPU: nothing to report
        return []
    try:
        facts = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            device = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(device)
            utilization = pynvml.nvmlDeviceGetUtilizationRates(device)
            name = pynvml.nvmlDeviceGetName(device)
            facts.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "memory_total_mb": memory.total // 1048576,
                    "memory_used_mb": memory.used // 1048576,
                    "utilization_percent": utilization.gpu,
                    "temperature_c": pynvml.nvmlDeviceGetTemperature(
                        device, pynvml.NVML_TEMPERATURE_GPU
                    ),
                }
            )
        return facts
    except pynvml.NVMLError as error:
        log.warning("Reading GPU facts failed: %s", error)
        return []
    finally:
        pynvml.nvmlShutdown()
