"""perfcast's JSON outputs for 45 analyze and 10 serving configurations are unchanged.

The SHA-256 of each output is in ``tests/data/golden_outputs.json`` (see
``tests/golden_outputs.py``): a change to any number, key or kernel fails here, and is
either a bug or is recorded by regenerating the manifest with a reason in the commit.
"""

from __future__ import annotations

import json

from tests.golden_outputs import MANIFEST, digest, outputs


def test_outputs_match_the_golden_digests():
    expected = json.loads(MANIFEST.read_text())
    got = {name: digest(text) for name, text in outputs()}
    assert set(got) == set(expected)
    changed = sorted(name for name in got if got[name] != expected[name])
    assert not changed, f"outputs changed: {changed} (see tests/golden_outputs.py)"
