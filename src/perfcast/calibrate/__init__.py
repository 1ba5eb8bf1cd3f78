"""Calibration: fit how fast each op category runs on a machine, and estimate with it."""

from perfcast.calibrate.curve import NEAR, Curve, fit_curve
from perfcast.calibrate.model import (
    CalibratedTime,
    ProfileMismatch,
    apply_profile,
    check_compatible,
)
from perfcast.calibrate.profile import (
    COMPUTE_CATEGORIES,
    MEMORY_CATEGORIES,
    PROFILE_SCHEMA,
    CalibrationPoint,
    Profile,
    ProfileError,
    fit_profile,
)

__all__ = [
    "COMPUTE_CATEGORIES",
    "MEMORY_CATEGORIES",
    "NEAR",
    "PROFILE_SCHEMA",
    "CalibratedTime",
    "CalibrationPoint",
    "Curve",
    "Profile",
    "ProfileError",
    "ProfileMismatch",
    "apply_profile",
    "check_compatible",
    "fit_curve",
    "fit_profile",
]
