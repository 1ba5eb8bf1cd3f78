"""The HTTP API through FastAPI's test client: every endpoint, its answers equal to the
CLI's --json output, and bad input (wrong types, unknown names, out-of-range values,
oversized uploads, ../ paths) answered with a clear 4xx while the server keeps serving."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from perfcast.app.api import create_app
from perfcast.cli.main import app as cli
from perfcast.hardware import catalog_names, load_spec
from perfcast.store import Store

DEMO = Path(__file__).parent / "data" / "bench_demo.py"
QUICK = ["--budget", "0.05", "--min-samples", "5"]
runner = CliRunner()


def cli_json(*args: str) -> object:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two runs of demo:sum and validation predictions (an old and a new)."""
    path = tmp_path_factory.mktemp("api") / "perfcast.db"
    for _ in range(2):
        result = runner.invoke(cli, ["bench", "run", "demo:sum", "--path", str(DEMO), *QUICK,
                                     "--db", str(path), "--json"])
        assert result.exit_code == 0, result.output
    with Store(path) as store:
        for predicted in (0.02, 0.011):  # the second (newer) one counts
            store.add_prediction(target="validate:mlp", params={"batch": 1, "threads": 1},
                                 hardware="local", predicted_s=predicted, measured_s=0.010,
                                 confidence="CALIBRATED",
                                 data={"theoretical_s": 0.005,
                                       "predicted_by_category_s": {"gemm": 0.009,
                                                                   "elementwise": 0.002}})
        store.add_prediction(target="validate:cnn", params={"batch": 8, "threads": 2},
                             hardware="local", predicted_s=0.030, measured_s=0.040,
                             confidence="INTERPOLATED", data={"theoretical_s": 0.020})
    return path


@pytest.fixture(scope="module")
def client(db: Path) -> TestClient:
    with TestClient(create_app(db_path=db)) as c:
        yield c


def mlp_onnx(batch: object = "N") -> bytes:
    """x[batch, 64] @ w1[64, 128] + b1 -> relu -> reshape -> Gemm(w2[10, 128]^T, b2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.zeros(shape, dtype), name) for name, shape, dtype in (
        ("w1", (64, 128), np.float32), ("b1", (128,), np.float32),
        ("w2", (10, 128), np.float32), ("b2", (10,), np.float32),
        ("shape", (2,), np.int64))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"], name="/fc1/MatMul"),
             helper.make_node("Add", ["h0", "b1"], ["h1"], name="/fc1/Add"),
             helper.make_node("Relu", ["h1"], ["h2"], name="/act/Relu"),
             helper.make_node("Reshape", ["h2", "shape"], ["h3"], name="/Reshape"),
             helper.make_node("Gemm", ["h3", "w2", "b2"], ["y"], name="/fc2/Gemm", transB=1)]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def assert_error(response, status: int, field: str | None, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert {"error", "field", "reason"} <= set(body)
    assert body["field"] == field, body
    for word in words:
        assert word in body["reason"], body
    return body


def wait_for(client: TestClient, url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(url).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {url} did not finish in {timeout} s")


# -- system and hardware -----------------------------------------------------------------


def test_health_system_and_openapi(client: TestClient, db: Path) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    system = client.get("/api/system").json()
    assert system["catalog"]["hardware"] == len(catalog_names())
    assert system["store"] == {"path": str(db), "exists": True, "ok": True,
                               "schema_version": system["store"]["schema_version"], "runs": 2}
    assert {d["name"] for d in system["dependencies"]} >= {"numpy", "pydantic"}
    assert system["features"]["onnx upload"]["ok"] is True
    assert system["server"]["token_required"] is False
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths >= {"/api/health", "/api/system", "/api/hardware", "/api/hardware/detect",
                     "/api/hardware/{key}", "/api/examples", "/api/analyze",
                     "/api/analyze/onnx", "/api/llm/models", "/api/llm/estimate",
                     "/api/llm/sweep", "/api/jobs/{job_id}", "/api/runs", "/api/runs/{run_id}",
                     "/api/runs/compare", "/api/history", "/api/validation"}
    assert client.get("/docs").status_code == 200


def test_hardware_list_show_detect(client: TestClient) -> None:
    rows = client.get("/api/hardware").json()
    assert [r["name"] for r in rows] == catalog_names()
    h100 = next(r for r in rows if r["name"] == "h100-sxm")
    assert h100["peak_flops"]["bf16"] == load_spec("h100-sxm").peak_flops("bf16")
    shown = client.get("/api/hardware/h100").json()  # an alias resolves
    assert shown == cli_json("hw", "show", "h100-sxm", "--json")
    detected = client.get("/api/hardware/detect").json()
    assert detected["spec"]["name"] == "local" and detected["facts"]["logical_cores"] >= 1


def test_unknown_hardware_names_closest_and_paths_are_refused(client: TestClient) -> None:
    body = assert_error(client.get("/api/hardware/h1OO"), 404, "key", "h100-sxm")
    assert "h100-sxm" in body["allowed"]
    assert_error(client.get("/api/hardware/a..b"), 422, "key", "not a catalog name")
    assert_error(client.get("/api/hardware/..%5Cetc%5Cpasswd"), 422, "key", "paths")
    assert_error(client.get("/api/hardware/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"), 404, "path")


# -- analysis ----------------------------------------------------------------------------


def test_analyze_example_equals_cli_and_has_roofline_fields(client: TestClient) -> None:
    names = [e["name"] for e in client.get("/api/examples").json()]
    assert {"mlp", "resnet50", "gpt2"} <= set(names)
    body = {"model": "mlp", "hardware": ["h100", "mi300x"], "batch": 2}
    got = client.post("/api/analyze", json=body).json()
    assert got == cli_json("analyze", "examples:mlp", "-H", "h100", "-H", "mi300x",
                           "--batch", "2", "--json")
    # MLP 1024-4096-4096-1024: 2*B*(K*N) per linear, hand-computed
    gemm = 2 * 2 * (1024 * 4096 + 4096 * 4096 + 4096 * 1024)
    assert got[0]["totals"]["flops_by_category"]["gemm"] >= gemm
    for k in got[0]["kernels"]:
        assert k["intensity"] == pytest.approx(k["flops"] / k["bytes"])
        assert k["achieved_flops_per_s"] == pytest.approx(k["flops"] / k["time_s"])
        assert k["achieved_flops_per_s"] <= k["peak_flops"]
    assert sum(row["kernels"] for row in got[0]["layers"]) == len(got[0]["kernels"])


@pytest.mark.parametrize(("body", "status", "field", "word"), [
    ({"model": "no-such-model"}, 404, "model", "unknown model"),
    ({"model": "mlp", "batch": 0}, 422, "batch", "greater than or equal to 1"),
    ({"model": "mlp", "batch": 10**7}, 422, "batch", "less than or equal"),
    ({"model": "mlp", "batch": "two"}, 422, "batch", "valid integer"),
    ({"model": "mlp", "dtype": "int8"}, 422, "dtype", "floating-point"),
    ({"model": "mlp", "dtype": "fp7"}, 422, "dtype", "unknown dtype"),
    ({"model": "mlp", "hardware": []}, 422, "hardware", "at least 1"),
    ({"model": "mlp", "hardware": ["../../etc/passwd"]}, 422, "hardware", "paths"),
    ({"model": "mlp", "hardware": ["h100", "tpu9"]}, 404, "hardware", "unknown hardware"),
    ({"model": "mlp", "target": "jit"}, 422, "target", "eager"),
    ({"model": "../tests/data/factories.py:mlp"}, 422, "model", "paths"),
    ({"hardware": ["h100"]}, 422, "model", "Field required"),
])
def test_analyze_bad_input(client: TestClient, body: dict, status: int, field: str,
                           word: str) -> None:
    assert_error(client.post("/api/analyze", json=body), status, field, word)
    assert client.get("/api/health").status_code == 200


def test_analyze_onnx_upload(client: TestClient) -> None:
    files = {"file": ("mlp.onnx", mlp_onnx())}
    got = client.post("/api/analyze/onnx", files=files,
                      data={"hardware": ["h100", "h200"], "batch": "4"}).json()
    assert [e["hardware"] for e in got] == ["h100-sxm", "h200"]
    b = 4  # matmul + bias add + relu + gemm with its bias, hand-computed
    assert got[0]["totals"]["flops"] == 2 * b * 64 * 128 + b * 128 + b * 128 + \
        2 * b * 128 * 10 + b * 10
    assert got[0]["model"] == "mlp" and got[0]["totals"]["params"] == 64 * 128 + 128 + 1290
    assert [k["op"] for k in got[0]["kernels"]] == ["matmul", "add", "relu", "linear"]
    assert {row["layer"] for row in got[0]["layers"]} == {"fc1", "act", "fc2"}
    named = client.post("/api/analyze/onnx", files={"file": ("m.onnx", mlp_onnx("seq"))},
                        data={"dims": '{"seq": 3}'}).json()
    assert named[0]["kernels"][0]["flops"] == 2 * 3 * 64 * 128


def test_analyze_onnx_bad_uploads(db: Path) -> None:
    with TestClient(create_app(db_path=db, max_upload_bytes=2000)) as small:
        big = b"\0" * 3000
        assert_error(small.post("/api/analyze/onnx", files={"file": ("m.onnx", big)}), 413,
                     "file", "2,000 bytes")
        assert_error(small.post("/api/analyze/onnx", content=b"x" * 100_000,
                                headers={"content-type": "multipart/form-data; boundary=b"}),
                     413, "body", "limit")

        def chunks():
            for _ in range(100):
                yield b"x" * 1000

        assert_error(small.post("/api/analyze/onnx", content=chunks(),
                                headers={"content-type": "multipart/form-data; boundary=b"}),
                     413, "body", "limit")
        onnx_ok = mlp_onnx()
        assert len(onnx_ok) > 2000  # the limit applies to real models too
        assert small.get("/api/health").status_code == 200
    with TestClient(create_app(db_path=db)) as c:
        post = c.post
        assert_error(post("/api/analyze/onnx", files={"file": ("m.onnx", b"garbage")}), 422,
                     "file", "not an ONNX model")
        assert_error(post("/api/analyze/onnx", files={"file": ("../../evil.onnx",
                                                                mlp_onnx())}),
                     422, "file", "no path")
        assert_error(post("/api/analyze/onnx", files={"file": ("m.onnx", mlp_onnx("seq"))},
                          data={"dims": "{bad json"}), 422, "dims", "not valid JSON")
        assert_error(post("/api/analyze/onnx", files={"file": ("m.onnx", mlp_onnx())},
                          data={"batch": "0"}), 422, "batch", "greater than")
        assert_error(post("/api/analyze/onnx", files={"file": ("m.onnx", mlp_onnx())},
                          data={"hardware": ["../h100.yaml"]}), 422, "hardware", "paths")
        assert_error(post("/api/analyze/onnx", data={"batch": "1"}), 422, "file", "required")
        assert c.get("/api/health").status_code == 200


# -- LLM ---------------------------------------------------------------------------------


def test_llm_models_and_estimate_equal_cli(client: TestClient) -> None:
    assert client.get("/api/llm/models").json() == cli_json("llm", "models", "--json")
    body = {"model": "llama-3.1-70b", "hardware": "h200", "tp": 4, "concurrency": 32,
            "precision": "fp8", "isl": 2048, "osl": 512}
    got = client.post("/api/llm/estimate", json=body).json()
    assert got == cli_json("llm", "estimate", "-m", "llama-3.1-70b", "-H", "h200", "--tp", "4",
                           "-c", "32", "--precision", "fp8", "--isl", "2048", "--osl", "512",
                           "--json")
    assert got["parallelism"]["gpus"] == 4
    measured = client.post("/api/llm/estimate", json={**body, "engine": "trtllm"}).json()
    assert measured == cli_json("llm", "estimate", "-m", "llama-3.1-70b", "-H", "h200", "--tp",
                                "4", "-c", "32", "--precision", "fp8", "--isl", "2048",
                                "--osl", "512", "--engine", "trtllm", "--json")
    assert measured["profile"] == "h200/trtllm"


@pytest.mark.parametrize(("body", "status", "field", "word"), [
    ({"model": "llama-9"}, 404, "model", "unknown model"),
    ({"model": "../../etc/passwd"}, 422, "model", "paths"),
    ({"model": "src"}, 404, "model", "unknown model"),  # a directory here: never read
    ({"model": "config.json"}, 404, "model", "unknown model"),
    ({"model": "llama-3.1-8b", "hardware": "h1OO"}, 404, "hardware", "h100-sxm"),
    ({"model": "llama-3.1-8b", "tp": 3}, 422, "parallelism", "does not divide"),
    ({"model": "llama-3.1-8b", "tp": 0}, 422, "tp", "greater than or equal to 1"),
    ({"model": "llama-3.1-8b", "concurrency": "many"}, 422, "concurrency", "valid integer"),
    ({"model": "llama-3.1-8b", "isl": 10**9}, 422, "isl", "less than or equal"),
    ({"model": "llama-3.1-8b", "precision": "fp3"}, 422, "precision", "unknown precision"),
    ({"model": "llama-3.1-8b", "kv_cache": "int3"}, 422, "kv_cache", "int3"),
    ({"model": "llama-3.1-8b", "concurrency": 8, "requests": 4}, 422, "requests", "at least"),
    ({"model": "llama-3.1-8b", "speed": "fast"}, 422, "speed", "Extra inputs"),
    ({"model": "llama-3.1-8b", "engine": "tensorrt"}, 422, "engine", "'fitted', 'trtllm'"),
    ({"model": ["llama-3.1-8b"]}, 422, "model", "valid string"),
])
def test_llm_estimate_bad_input(client: TestClient, body: dict, status: int, field: str,
                                word: str) -> None:
    assert_error(client.post("/api/llm/estimate", json=body), status, field, word)
    ok = client.post("/api/llm/estimate", json={"model": "llama-3.1-8b"})
    assert ok.status_code == 200 and ok.json()["tpot_s"] > 0


def test_malformed_json_and_unknown_routes(client: TestClient) -> None:
    assert_error(client.post("/api/llm/estimate", content=b"{not json",
                             headers={"content-type": "application/json"}), 422, "body", "JSON")
    assert_error(client.post("/api/llm/estimate", content=b"x" * (2 << 20),
                             headers={"content-type": "application/json"}), 413, "body")
    assert_error(client.get("/api/nothing"), 404, "path", "no route")
    assert_error(client.delete("/api/hardware"), 405, "path")


def test_llm_sweep_job_equals_cli(client: TestClient) -> None:
    body = {"model": "llama-3.1-8b", "hardware": ["h100", "h200"], "tp": [1, 3, 2],
            "precision": ["bf16", "fp8"], "concurrency": [1, 8, 64]}
    accepted = client.post("/api/llm/sweep", json=body)
    assert accepted.status_code == 202
    job = wait_for(client, accepted.json()["url"])
    assert job["status"] == "done" and job["progress"] == 1.0
    want = cli_json("llm", "sweep", "-m", "llama-3.1-8b", "-H", "h100,h200", "--tp", "1,3,2",
                    "--precision", "bf16,fp8", "-c", "1,8,64", "--json")
    got = job["result"]
    assert got.pop("elapsed_s") > 0 and want.pop("elapsed_s") > 0
    assert got == want
    assert got["skipped_detail"][0]["kind"] == "layout"  # tp=3 once, over both devices
    assert got["skipped_detail"][0]["configurations"] == 2 * 2 * 3
    listed = client.get("/api/jobs").json()
    assert any(j["job_id"] == job["job_id"] for j in listed)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"model": "llama-3.1-8b", "hardware": ["nope-9000"]}, 404, "hardware"),
    ({"model": "llama-3.1-8b", "tp": []}, 422, "tp"),
    ({"model": "llama-3.1-8b", "dp_attention": "maybe"}, 422, "dp_attention"),
    ({"model": "llama-3.1-8b", "concurrency": list(range(1, 257)), "isl": list(range(1, 65)),
      "osl": list(range(1, 65))}, 422, "request"),
    ({"model": "llama-3.1-8b", "concurrency": list(range(1, 257)), "isl": list(range(1, 65)),
      "show_all": True}, 422, "show_all"),
])
def test_llm_sweep_bad_input_refused_before_a_job(client: TestClient, body: dict,
                                                  status: int, field: str) -> None:
    assert_error(client.post("/api/llm/sweep", json=body), status, field)


def test_unknown_job(client: TestClient) -> None:
    assert_error(client.get("/api/jobs/0123abcd"), 404, "job_id", "unknown job_id")


# -- runs, history, validation -----------------------------------------------------------


def test_runs_list_show_compare_equal_cli(client: TestClient, db: Path) -> None:
    runs = client.get("/api/runs").json()
    assert runs == cli_json("bench", "runs", "--db", str(db), "--json")
    new, old = runs[0]["id"], runs[1]["id"]
    shown = client.get(f"/api/runs/{new}").json()
    assert shown == cli_json("bench", "report", new, "--db", str(db), "--format", "json")
    assert {r["params"]["n"] for r in shown["results"]} == {100, 1000}
    compared = client.get("/api/runs/compare", params={"a": old, "b": new}).json()
    result = runner.invoke(cli, ["bench", "compare", old, new, "--db", str(db), "--json"])
    assert compared == json.loads(result.output)
    assert len(compared["results"]) == 2


def test_runs_bad_input(client: TestClient) -> None:
    body = assert_error(client.get("/api/runs/20990101-000000-ffff"), 404, "run_id", "unknown")
    assert len(body["allowed"]) == 2
    assert_error(client.get("/api/runs/..%5C..%5Cetc"), 422, "run_id", "no paths")
    assert_error(client.get("/api/runs/compare", params={"a": "x"}), 422, "b", "required")
    assert_error(client.get("/api/runs/compare", params={"a": "x", "b": "y"}), 404, "a")
    assert_error(client.get("/api/runs", params={"limit": 0}), 422, "limit")
    assert_error(client.get("/api/runs", params={"status": "bogus"}), 404, "status")


def test_history_medians_and_ci(client: TestClient, db: Path) -> None:
    assert client.get("/api/history/targets").json() == ["demo:sum"]
    got = client.get("/api/history", params={"target": "demo:sum",
                                             "params": '{"n": 100}'}).json()
    (series,) = got["series"]
    with Store(db) as store:
        stored = [r for r in store.results(target="demo:sum") if r.params == {"n": 100}]
    assert [p["median_s"] for p in series["points"]] == [r.median_s for r in stored]
    assert all(p["ci_low_s"] <= p["median_s"] <= p["ci_high_s"] for p in series["points"])
    both = client.get("/api/history", params={"target": "demo:sum"}).json()
    assert len(both["series"]) == 2
    assert_error(client.get("/api/history", params={"target": "demo:sum", "params": "{"}),
                 422, "params", "JSON")
    assert_error(client.get("/api/history", params={"target": "demo:sum", "params": "[1]"}),
                 422, "params", "object")
    assert_error(client.get("/api/history", params={"target": "demo:summ"}), 404, "target",
                 "demo:sum")
    assert_error(client.get("/api/history"), 422, "target", "required")


def test_validation_summary(client: TestClient) -> None:
    got = client.get("/api/validation").json()
    by_model = {m["model"]: m for m in got["models"]}
    assert by_model["mlp"]["predicted_s"] == 0.011  # the newer prediction
    assert by_model["mlp"]["ape"] == pytest.approx(0.1)
    assert by_model["cnn"]["ape"] == pytest.approx(0.25)
    assert got["mape"] == pytest.approx((0.1 + 0.25) / 2)
    assert got["within_10pct"] == pytest.approx(0.5)
    assert got["by_confidence"]["CALIBRATED"]["count"] == 1
    assert got["predicted_by_category_s"] == {"gemm": 0.009, "elementwise": 0.002}
    assert_error(client.get("/api/validation/llm", params={"hardware": "../x"}), 422,
                 "hardware", "paths")


def test_benchmark_run_job_is_stored(client: TestClient) -> None:
    assert "demo:sum" in {t["target"] for t in client.get("/api/bench/targets").json()}
    accepted = client.post("/api/runs", json={"targets": ["demo:sum"], "params": {"n": ["100"]},
                                              "budget_s": 0.05, "min_samples": 5})
    assert accepted.status_code == 202
    job = wait_for(client, accepted.json()["url"])
    assert job["status"] == "done", job
    run_id = job["result"]["run_id"]
    assert [r["params"] for r in job["result"]["results"]] == [{"n": 100}]
    assert client.get(f"/api/runs/{run_id}").json()["run"]["status"] == "complete"
    assert_error(client.post("/api/runs", json={"targets": ["demo:nope"]}), 422, "targets",
                 "demo:nope")
    assert_error(client.post("/api/runs", json={"targets": ["demo:sum"], "budget_s": 0}), 422,
                 "budget_s")
    assert_error(client.post("/api/runs", json={"targets": []}), 422, "targets")


# -- security ----------------------------------------------------------------------------


def test_token_required_when_set(db: Path) -> None:
    token = "t0ken-" + "x" * 20
    with TestClient(create_app(db_path=db, token=token)) as c:
        assert c.get("/api/health").status_code == 200
        assert_error(c.get("/api/hardware"), 401, "token", "Bearer")
        assert_error(c.get("/api/hardware", headers={"Authorization": "Bearer wrong"}), 401,
                     "token")
        assert c.get("/api/hardware", headers={"Authorization": f"Bearer {token}"}).is_success
        first = c.get("/", params={"token": token})
        assert first.status_code == 200 and "perfcast_token" in first.headers["set-cookie"]
        assert c.get("/api/system").json()["server"]["token_required"] is True  # the cookie


def test_host_guard_refuses_foreign_hosts(db: Path) -> None:
    with TestClient(create_app(db_path=db, allowed_hosts=["127.0.0.1", "localhost"])) as c:
        assert_error(c.get("/api/health", headers={"host": "evil.example:8000"}), 400, "host")
        assert c.get("/api/health", headers={"host": "127.0.0.1:8000"}).status_code == 200


def test_serve_refuses_public_host_without_token() -> None:
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0"], env={"PERFCAST_TOKEN": ""})
    assert result.exit_code == 2 and "--token" in result.output
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code == 2 and "16 characters" in result.output
