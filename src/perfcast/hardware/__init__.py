"""Hardware specs: schema, bundled catalog, and detection of the local machine."""

from perfcast.hardware.catalog import catalog_names, list_specs, load_spec
from perfcast.hardware.detect import DetectedGpu, describe_local, detect_gpu, detect_local
from perfcast.hardware.errors import (
    CatalogError,
    HardwareError,
    UnknownHardwareError,
    UnsupportedPrecisionError,
)
from perfcast.hardware.loader import load_spec_file
from perfcast.hardware.spec import (
    PRECISIONS,
    ComputeFigure,
    Energy,
    Figure,
    HardwareSpec,
    Link,
    MemoryLevel,
    Power,
    Price,
    Source,
    normalize_dtype,
)

__all__ = [
    "PRECISIONS",
    "CatalogError",
    "ComputeFigure",
    "DetectedGpu",
    "Energy",
    "Figure",
    "HardwareError",
    "HardwareSpec",
    "Link",
    "MemoryLevel",
    "Power",
    "Price",
    "Source",
    "UnknownHardwareError",
    "UnsupportedPrecisionError",
    "catalog_names",
    "describe_local",
    "detect_gpu",
    "detect_local",
    "list_specs",
    "load_spec",
    "load_spec_file",
    "normalize_dtype",
]
