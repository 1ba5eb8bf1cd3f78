"""Fit quality of a profile: a profile that does not fit its own measurements is not a default.

A shape model or rate curve whose RMS relative error on its own points exceeds
:data:`POOR_FIT_RMSE` predicts nothing useful (a good fit here is 5-30%): such a profile
is stored, but ``--profile latest`` skips it unless it was accepted explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perfcast.calibrate.profile import POOLED, Profile

POOR_FIT_RMSE = 1.0  # 100%: off by 2x on average on the very points it was fitted to
FIT_KEY = "fit_check"  # where the stored profile data records the check


def poor_fits(profile: Profile) -> list[str]:
    """``"gemm/float32/2 shape model: 4392% RMS"`` for every fit above POOR_FIT_RMSE.

    The pooled memory curve mixes categories on purpose and is not checked.
    """
    fits = [(k, "shape model", m.rel_rmse) for k, m in profile.shape.items()]
    fits += [(k, "compute curve", c.rel_rmse) for k, c in profile.compute.items()]
    fits += [(k, "memory curve", c.rel_rmse) for k, c in profile.memory.items()
             if k[0] != POOLED]
    return [f"{'/'.join(map(str, key))} {what}: {rmse:.0%} RMS error on its own points"
            for key, what, rmse in sorted(fits) if rmse > POOR_FIT_RMSE]


def fit_record(profile: Profile, *, accepted: bool) -> dict[str, Any]:
    """What the store keeps beside the profile: the poor fits and whether they were accepted."""
    return {"threshold_rmse": POOR_FIT_RMSE, "poor": poor_fits(profile), "accepted": accepted}


def stored_poor_fits(data: Mapping[str, Any], profile: Profile) -> list[str]:
    """The poor fits that keep stored profile data from being a default ([] if accepted);
    data stored without a check is checked now."""
    check = data.get(FIT_KEY)
    if not isinstance(check, Mapping):
        return poor_fits(profile)
    return [] if check.get("accepted") else [str(f) for f in check.get("poor") or []]
