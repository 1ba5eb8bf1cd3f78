"""perfcast calibrate end to end on a tiny budget, profiles in the store, validate models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perfcast.calibrate import run as run_module
from perfcast.calibrate import sampler
from perfcast.calibrate.profile import Profile
from perfcast.calibrate.reference import REFERENCE
from perfcast.calibrate.run import PROFILE_NAME, REFERENCE_TARGET, calibrate
from perfcast.cli.calibrate import parse_duration
from perfcast.cli.main import app
from perfcast.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding a profile from a few seconds of single-thread calibration."""
    db = tmp_path_factory.mktemp("cal") / "perfcast.db"
    with Store(db) as store:
        calibrate(store, budget_s=15.0, threads=[1])
    return db


def test_profile_is_stored_and_written(calibrated: Path) -> None:
    with Store(calibrated) as store:
        run = store.latest_run()
        row = store.profile(store.environment(run.environment_id).hardware_key, PROFILE_NAME)
        assert run.status == "complete" and row is not None and row.version == 1
        results = store.results(run.id)
    points = [r for r in results if r.target != REFERENCE_TARGET]
    references = [r for r in results if r.target == REFERENCE_TARGET]
    profile = Profile.from_dict(row.data)
    assert profile.threads_available() == [1]
    assert profile.overhead_s[1] > 0
    categories = {key[0] for key in [*profile.compute, *profile.memory]}
    assert "gemm" in categories and len(categories) >= 2  # gemm is the first family
    assert len(points) >= 10 and all(p.extra["calibration"] for p in points)
    # the reference kernels, timed at the start and the end; the profile keeps their mean
    assert sorted((r.params["at"], r.params["kernel"]) for r in references) == sorted(
        (at, k) for at in ("start", "end") for k in REFERENCE)
    assert set(profile.reference) == {1} and set(profile.reference[1]) == set(REFERENCE)
    for kernel, seconds in profile.reference[1].items():
        start, end = (r.median_s for at in ("start", "end") for r in references
                      if r.params["kernel"] == kernel and r.params["at"] == at)
        assert seconds == pytest.approx((start * end) ** 0.5)
    copy = calibrated.parent / "profiles" / f"{profile.hardware_key}.json"
    assert Profile.load(copy).to_dict() == profile.to_dict()


def test_interrupted_calibration_writes_no_profile(tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    real = run_module._Sampler.measure

    def interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(run_module._Sampler, "measure", interrupt)
    with Store(tmp_path / "p.db") as store:
        with pytest.raises(KeyboardInterrupt):
            calibrate(store, budget_s=60.0, threads=[1])
        assert store.latest_run().status == "failed"
        assert store.profiles() == []
    assert not (tmp_path / "profiles").exists()


def test_validate_models_json_with_profile(calibrated: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "models", "-m", "mlp-narrow", "--batch", "1",
                                 "--threads", "1", "--db", str(calibrated), "--report",
                                 str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    [m] = d["models"]
    assert {"name", "batch", "threads", "predicted_s", "measured_s", "ape",
            "confidence"} <= set(m)
    assert m["confidence"] in {"CALIBRATED", "INTERPOLATED", "THEORETICAL"}
    assert m["predicted_s"] != m["theoretical_s"]  # the profile was used
    assert m["ape"] == pytest.approx(abs(m["predicted_s"] - m["measured_s"]) / m["measured_s"])
    assert d["mape"] == pytest.approx(m["ape"]) and d["theoretical"]["mape"] is not None
    machine = d["machine"]  # the reference kernels timed again, against the profile's
    assert set(machine["drift"]["1"]) == set(REFERENCE)
    assert machine["worst_drift"] == pytest.approx(max(abs(v) for v in
                                                       machine["drift"]["1"].values()))
    assert (tmp_path / "validation.md").exists()
    assert (tmp_path / "predicted_vs_measured.png").exists()
    with Store(calibrated) as store:
        [pred] = store.predictions(target="validate:mlp-narrow")
        assert pred.measured_s == pytest.approx(m["measured_s"])


def test_analyze_local_uses_the_profile(calibrated: Path) -> None:
    def analyze(profile: str) -> dict:
        result = runner.invoke(app, ["analyze", "examples:mlp", "-H", "local", "--threads",
                                     "1", "--db", str(calibrated), "--profile", profile,
                                     "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    calibrated_estimate, theoretical = analyze("latest"), analyze("none")
    assert theoretical["confidence"] == "THEORETICAL"
    assert calibrated_estimate["totals"]["time_s"] != theoretical["totals"]["time_s"]


def test_foreign_profile_lowers_confidence(calibrated: Path, tmp_path: Path) -> None:
    with Store(calibrated) as store:
        run = store.latest_run()
        key = store.environment(run.environment_id).hardware_key
        data = store.profile(key, PROFILE_NAME).data
    foreign = Profile.from_dict({**data, "hardware_key": "other-box-64c",
                                 "fingerprint": "0000000000000000"})
    path = tmp_path / "foreign.json"
    foreign.save(path)
    result = runner.invoke(app, ["analyze", "examples:mlp", "-H", "local", "--threads", "1",
                                 "--profile", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "not from this environment" in result.stderr
    assert json.loads(result.stdout)["confidence"] in {"INTERPOLATED", "THEORETICAL"}


@pytest.mark.parametrize(("args", "message"), [
    (["calibrate", "--budget", "ten"], "is not a positive number"),
    (["calibrate", "--hardware", "h100"], "calibration measures this machine"),
    (["calibrate", "--threads", "0"], "must be positive integers"),
    (["validate", "models", "-m", "resnet5"], "did you mean resnet50"),
    (["analyze", "examples:mlp", "-H", "local", "--profile", "/nonexistent.json"],
     "nonexistent.json"),
])
def test_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_parse_duration() -> None:
    assert parse_duration("10m") == 600 and parse_duration("90s") == 90
    assert parse_duration("1.5h") == 5400 and parse_duration("42") == 42


def test_sampler_refines_where_the_rate_changes() -> None:
    points = [(1, 1.0), (100, 1.1), (10_000, 50.0)]
    assert sampler.next_size(points) == 1000
    assert sampler.next_size([(1, 1.0), (2, 5.0)]) is None


def test_refit_makes_a_new_version_without_measuring(calibrated: Path, tmp_path: Path) -> None:
    with Store(calibrated) as store:
        before = store.latest_run().id
        n_results = len(store.results(before))
    out = tmp_path / "refit.json"
    result = runner.invoke(app, ["calibrate", "--refit", "latest", "--db", str(calibrated),
                                 "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["run_id"] == before and d["version"] >= 2
    with Store(calibrated) as store:
        assert store.latest_run().id == before  # no new run: nothing was measured
        assert len(store.results(before)) == n_results
    refitted = Profile.load(out)
    assert refitted.hardware_key == d["hardware"]
    with Store(calibrated) as store:
        first = Profile.from_dict(store.profile(refitted.hardware_key, PROFILE_NAME, 1).data)
    assert refitted.reference == first.reference and first.reference  # read back from the run
    bad = runner.invoke(app, ["calibrate", "--refit", "no-such-run", "--db", str(calibrated)])
    assert bad.exit_code != 0 and "no-such-run" in bad.output


def _analyze_notes(db: Path, profile: str = "latest") -> tuple[int, dict, str]:
    result = runner.invoke(app, ["analyze", "examples:mlp", "-H", "local", "--threads", "1",
                                 "--db", str(db), "--profile", profile, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.exit_code == 0 else {}, \
        result.output


def test_poor_fit_is_stored_but_not_the_default(calibrated: Path, tmp_path: Path,
                                                monkeypatch) -> None:
    """A GEMM shape model at 4,392% RMS (issue 18) must not become -H local's default."""
    from dataclasses import replace

    real_fit = run_module.fit_profile

    def poor_fit(*args, **kwargs):
        profile = real_fit(*args, **kwargs)
        def poor(fits):
            return {k: replace(m, rel_rmse=43.92) for k, m in fits.items()}

        return replace(profile, shape=poor(profile.shape), compute=poor(profile.compute))

    code, before, _ = _analyze_notes(calibrated)
    assert code == 0
    [good] = [n for n in before["notes"] if n.startswith("calibrated with profile v")]
    assert "created" in good
    monkeypatch.setattr(run_module, "fit_profile", poor_fit)
    result = runner.invoke(app, ["calibrate", "--refit", "latest", "--db", str(calibrated),
                                 "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["default"] is False and any("4392% RMS" in f for f in d["poor_fits"])
    warning = " ".join(result.stderr.split())
    assert "not the default" in warning and f"--profile {d['version']}" in warning
    assert Path(d["profile"]).name.endswith(f".v{d['version']}.json")
    code, after, output = _analyze_notes(calibrated)
    assert code == 0 and good in after["notes"]  # still the previous, well-fitting version
    assert f"skipping profile v{d['version']}" in " ".join(output.split())
    code, chosen, _ = _analyze_notes(calibrated, str(d["version"]))
    assert code == 0 and f"calibrated with profile v{d['version']} " in chosen["notes"][-1]
    accepted = runner.invoke(app, ["calibrate", "--refit", "latest", "--accept-poor-fit",
                                   "--db", str(calibrated), "--json"])
    assert json.loads(accepted.stdout)["default"] is True
    code, latest, _ = _analyze_notes(calibrated)
    version = json.loads(accepted.stdout)["version"]
    assert f"calibrated with profile v{version} " in latest["notes"][-1]


def test_refit_refuses_an_incomplete_run(calibrated: Path) -> None:
    with Store(calibrated) as store:
        done = store.run(store.latest_run().id)
        killed = store.begin_run(command="perfcast calibrate", git_commit=None,
                                 environment_id=done.environment_id, meta=done.meta)
        for r in store.results(done.id):
            store.add_result(killed, target=r.target, params=r.params, status=r.status,
                             median_s=r.median_s, extra=r.extra)
        store.finish_run(killed, "failed")
    refused = runner.invoke(app, ["calibrate", "--refit", killed, "--db", str(calibrated)])
    assert refused.exit_code != 0 and "is failed, not complete" in refused.output
    assert "--allow-incomplete" in refused.output
    allowed = runner.invoke(app, ["calibrate", "--refit", killed, "--allow-incomplete",
                                  "--db", str(calibrated), "--json"])
    assert allowed.exit_code == 0, allowed.output
