"""Find the calibration profile a command should use, and say when it is foreign or poor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

from rich.console import Console
from rich.markup import escape

from perfcast.cli.errors import fail

_VERSION = re.compile(r"^v?(\d+)$")


class Resolved(NamedTuple):
    """The profile to use (None: THEORETICAL), whether it is foreign, and which it is."""

    profile: Any
    foreign: bool
    label: str  # e.g. "profile v3 of <hardware key>, created <time>" ("" without one)


def resolve_profile(choice: str | None, store: Any) -> Resolved:
    """The profile for ``--profile latest|none|VERSION|PATH``.

    ``latest`` is the newest stored version of this machine (never another machine's)
    whose fits are good or were accepted (``perfcast calibrate --accept-poor-fit``);
    the versions it skips are named in a warning. A version number (``3`` or ``v3``)
    picks that stored version of this machine whatever its fit. A profile of another
    machine given as a file is used with every confidence lowered one level, as is a
    profile from this machine whose software environment changed since.
    """
    from perfcast.bench.environment import capture_environment
    from perfcast.calibrate.model import check_compatible
    from perfcast.calibrate.profile import Profile, ProfileError

    if choice in (None, "none"):
        return Resolved(None, False, "")
    env = capture_environment()
    version = _VERSION.match(choice)
    if choice == "latest" or (version and not Path(choice).exists()):
        row = _stored(store, env.hardware_key(), int(version.group(1)) if version else None)
        if row is None:
            return Resolved(None, False, "")
        try:
            profile = Profile.from_dict(row.data)
        except (ProfileError, ValueError) as exc:
            fail(f"stored profile v{row.version} of {env.hardware_key()} is unusable: {exc}")
        label = f"profile v{row.version} of {row.hardware_key}, created {profile.created_at}"
    else:
        try:
            profile = Profile.load(Path(choice))
        except (ProfileError, ValueError) as exc:
            fail(str(exc))
        label = (f"profile file {choice} of {profile.hardware_key}, "
                 f"created {profile.created_at}")
    reasons = check_compatible(profile, fingerprint=env.fingerprint(),
                               hardware_key=env.hardware_key())
    if reasons:
        Console(stderr=True).print(
            f"[yellow]profile is not from this environment ({escape('; '.join(reasons))}): "
            "using it with confidence lowered one level[/yellow]")
    return Resolved(profile, bool(reasons), label)


def _stored(store: Any, hardware_key: str, version: int | None) -> Any:
    """The stored profile row to use: ``version``, or the newest one fit to be a default."""
    from perfcast.calibrate.profile import Profile, ProfileError
    from perfcast.calibrate.quality import stored_poor_fits
    from perfcast.calibrate.run import PROFILE_NAME

    err = Console(stderr=True)
    if version is not None:
        row = store.profile(hardware_key, PROFILE_NAME, version)
        if row is None:
            fail(f"--profile {version}: no stored profile v{version} of {hardware_key} "
                 f"in {store.path}")
        return row
    rows = [r for r in store.profiles(hardware_key) if r.name == PROFILE_NAME]
    for row in reversed(rows):
        try:
            poor = stored_poor_fits(row.data, Profile.from_dict(row.data))
        except (ProfileError, ValueError):
            return row  # reported unusable by the caller
        if not poor:
            return row
        err.print(f"[yellow]skipping profile v{row.version} of {escape(hardware_key)}: poor "
                  f"fit ({escape('; '.join(poor[:3]))}); use it with --profile "
                  f"{row.version}[/yellow]")
    err.print(f"[yellow]no calibration profile for {escape(hardware_key)} in "
              f"{escape(str(store.path))} fit to be the default; estimates are THEORETICAL "
              "(run perfcast calibrate)[/yellow]")
    return None
