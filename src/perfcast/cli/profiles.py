"""Find the calibration profile a command should use, and say when it is foreign."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from perfcast.cli.errors import fail


def resolve_profile(choice: str | None, store: Any) -> tuple[Any, bool]:
    """``(profile or None, foreign)`` for ``--profile latest|none|PATH``.

    A profile of another machine (different hardware key) from the store is never picked
    up by ``latest``; given as a file it is used with every confidence lowered one level,
    as is a profile from this machine whose software environment changed since.
    """
    from perfcast.bench.environment import capture_environment
    from perfcast.calibrate.model import check_compatible
    from perfcast.calibrate.profile import Profile, ProfileError
    from perfcast.calibrate.run import PROFILE_NAME

    if choice in (None, "none"):
        return None, False
    env = capture_environment()
    if choice == "latest":
        row = store.profile(env.hardware_key(), PROFILE_NAME)
        if row is None:
            Console(stderr=True).print(
                f"[yellow]no calibration profile for {env.hardware_key()} in {store.path}; "
                "estimates are THEORETICAL (run perfcast calibrate)[/yellow]")
            return None, False
        try:
            profile = Profile.from_dict(row.data)
        except (ProfileError, ValueError) as exc:
            fail(f"stored profile v{row.version} of {env.hardware_key()} is unusable: {exc}")
    else:
        try:
            profile = Profile.load(Path(choice))
        except (ProfileError, ValueError) as exc:
            fail(str(exc))
    reasons = check_compatible(profile, fingerprint=env.fingerprint(),
                               hardware_key=env.hardware_key())
    if reasons:
        Console(stderr=True).print(
            f"[yellow]profile is not from this environment ({escape('; '.join(reasons))}): "
            "using it with confidence lowered one level[/yellow]")
    return profile, bool(reasons)
