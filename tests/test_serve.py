"""The prediction service, through the real server (uvicorn in a subprocess): answers that match
the model, a clear JSON 4xx for every bad request, concurrent requests, the OpenAPI schema
fuzzed, graceful shutdown; and in-process: model errors, settings, the CLI."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from typer.testing import CliRunner

import textdistill
from textdistill.cli import app as cli_app
from textdistill.data.labels import ancestors
from textdistill.data.messages import DataSpec, load_messages
from textdistill.demo import best_student
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline
from textdistill.serve import ServeSettings
from textdistill.serve.app import create_app

SPEC = DataSpec(text_columns=("subject", "body"), id_column="id")
SINGLE_OPTIONS = ["--max-messages", "20", "--max-text-chars", "2000", "--max-batch", "8", "--max-wait-ms", "20", "--max-request-mb", "0.25"]
MULTI_OPTIONS = ["--max-text-chars", "100", "--oversize", "truncate"]


# -- fixtures: two small models and a server for each ---------------------------------------
@pytest.fixture(scope="module")
def models(sample_data, tmp_path_factory):
    """A single-label hierarchical and a multi-label hierarchical TF-IDF model, saved."""
    train = load_messages(sample_data.train, SPEC)
    directory = tmp_path_factory.mktemp("serve-models")
    single = TfidfBaseline().fit(train.texts, [labels[:1] for labels in train.labels], multi_label=False, hierarchy_sep=" > ")
    multi = TfidfBaseline().fit(train.texts, train.labels, multi_label=True, hierarchy_sep=" > ")
    return {
        "single": single.save(directory / "single", config={}, training_data={}),
        "multi": multi.save(directory / "multi", config={}, training_data={}),
    }


@pytest.fixture(scope="module")
def held_out_texts(sample_data):
    return load_messages(sample_data.test, SPEC).texts


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_server(model_dir: Path, log: Path, *options: str) -> Server:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "textdistill", "serve", str(model_dir), "--port", str(port), "--threads", "1", *options]
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    return Server(process, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"the server did not answer /health within {timeout_s} s:\n{server.output()}")


@pytest.fixture(scope="module")
def servers(models, tmp_path_factory):
    logs = tmp_path_factory.mktemp("serve-logs")
    running = {
        "single": start_server(models["single"], logs / "single.log", *SINGLE_OPTIONS),
        "multi": start_server(models["multi"], logs / "multi.log", *MULTI_OPTIONS),
    }
    try:
        for server in running.values():
            wait_ready(server)
        yield running
    finally:
        for server in running.values():
            server.stop()


@pytest.fixture(scope="module")
def single(servers) -> Server:
    return servers["single"]


@pytest.fixture(scope="module")
def multi(servers) -> Server:
    return servers["multi"]


def post(server: Server, messages, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json={"messages": messages}, timeout=60, **kwargs)


# -- answers ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_single_label_answers_are_the_models_with_hierarchy_parents(single, models, held_out_texts):
    texts = held_out_texts[:20]
    ids = [f"msg-{i}" if i % 2 else i for i in range(len(texts))]
    response = post(single, [{"id": i, "text": t} for i, t in zip(ids, texts)])
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    model = textdistill.load(models["single"])
    proba = model.predict_proba(texts)
    assert [r["id"] for r in results] == ids
    for result, leaf, row in zip(results, model.predict(texts), proba):
        assert ancestors(leaf, " > ") and result["labels"] == [*ancestors(leaf, " > "), leaf]
        assert result["confidences"][leaf] == pytest.approx(row.max(), abs=1e-6)
        parent = result["labels"][0]
        siblings = [j for j, label in enumerate(model.label_space.labels) if label.startswith(parent + " > ")]
        assert result["confidences"][parent] == pytest.approx(row[siblings].sum(), abs=1e-6)
        assert result["truncated"] is False and "scores" not in result


@pytest.mark.slow
def test_scores_flag_returns_every_labels_confidence(single, models, held_out_texts):
    response = post(single, [{"id": 1, "text": held_out_texts[0]}], params={"scores": "true"})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    space = textdistill.load(models["single"]).label_space
    parents = {label.split(" > ")[0] for label in space.labels}
    assert set(result["scores"]) == set(space.labels) | parents
    assert sum(result["scores"][label] for label in space.labels) == pytest.approx(1.0, abs=1e-6)
    assert all(result["scores"][label] == value for label, value in result["confidences"].items())


@pytest.mark.slow
def test_multi_label_answers_apply_the_thresholds_and_include_parents(multi, models, held_out_texts):
    texts = [t[:100] for t in held_out_texts[:40]]
    response = post(multi, [{"id": i, "text": t} for i, t in enumerate(texts)], params={"scores": "true"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    model = textdistill.load(models["multi"])
    thresholds = dict(zip(model.label_space.labels, model.thresholds))
    assert [r["labels"] for r in results] == model.predict(texts)
    assert any(len(r["labels"]) > 2 for r in results)  # some messages really have several labels
    for result in results:
        for label in result["labels"]:
            assert set(ancestors(label, " > ")) <= set(result["labels"])
        leaves = [label for label in result["labels"] if not any(other.startswith(label + " > ") for other in result["labels"])]
        assert all(result["scores"][label] >= thresholds[label] for label in leaves)
        assert all(score < thresholds[label] for label, score in result["scores"].items() if label not in result["labels"])


@pytest.mark.slow
def test_a_long_text_is_truncated_and_flagged_under_the_truncate_policy(multi, models, held_out_texts):
    long_text = " ".join(held_out_texts[:5])
    assert len(long_text) > 100
    response = post(multi, [{"id": "long", "text": long_text}, {"id": "short", "text": "Where is my parcel?"}])
    assert response.status_code == 200, response.text
    long_result, short_result = response.json()["results"]
    assert long_result["truncated"] is True and short_result["truncated"] is False
    assert long_result["labels"] == textdistill.load(models["multi"]).predict([long_text[:100]])[0]


@pytest.mark.slow
def test_concurrent_requests_all_get_the_unbatched_models_answers(single, models, held_out_texts):
    requests = [[{"id": f"{r}-{k}", "text": held_out_texts[(r * 3 + k) % len(held_out_texts)]} for k in range(1 + r % 3)] for r in range(32)]
    barrier = threading.Barrier(len(requests))

    def send(messages):
        barrier.wait()
        return post(single, messages)

    with ThreadPoolExecutor(len(requests)) as pool:
        responses = list(pool.map(send, requests))
    assert [r.status_code for r in responses] == [200] * len(requests)
    model = textdistill.load(models["single"])
    for messages, response in zip(requests, responses):
        results = response.json()["results"]
        assert [r["id"] for r in results] == [m["id"] for m in messages]
        assert [r["labels"][-1] for r in results] == model.predict([m["text"] for m in messages])


@pytest.mark.slow
def test_a_message_without_an_id_gets_its_position_in_the_request(single, models, held_out_texts):
    texts = held_out_texts[:4]
    response = post(single, [{"text": texts[0]}, {"id": "b", "text": texts[1]}, {"text": texts[2]}, {"id": 7, "text": texts[3]}])
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == [0, "b", 2, 7]
    assert [r["labels"][-1] for r in results] == textdistill.load(models["single"]).predict(texts)
    # documented: the id is optional, and what it defaults to
    message = httpx.get(f"{single.url}/openapi.json").json()["components"]["schemas"]["Message"]
    assert message["required"] == ["text"] and "its position in the request" in message["properties"]["id"]["description"]


# -- bad requests ----------------------------------------------------------------------------
def message(i=1, text="Where is my parcel?"):
    return {"id": i, "text": text}


JSON = {"content-type": "application/json"}
BAD_REQUESTS = {
    "not JSON": ({"content": b'{"messages": [', "headers": JSON}, 400, "invalid_json", "not valid JSON"),
    "not UTF-8": ({"content": b'{"messages": [{"id": 1, "text": "\xff\xfe"}]}', "headers": JSON}, 400, "invalid_json", "UTF-8"),
    # valid UTF-8 JSON that Python's parser gives up on: the answer says why, not "send UTF-8"
    "JSON nested 1,000 deep": ({"content": b'{"messages": ' + b"[" * 1000 + b"]" * 1000 + b"}", "headers": JSON}, 400, "json_too_deep", "nested too deep to parse"),
    "an id of 4,301 digits": ({"content": b'{"messages": [{"id": ' + b"7" * 4301 + b', "text": "hi"}]}', "headers": JSON}, 400, "number_too_long", "a number with more than 4,300 digits"),
    "not sent as JSON": ({"content": json.dumps({"messages": [message()]}), "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type", "application/json"),
    "no body": ({"content": b"", "headers": JSON}, 422, "invalid_request", "body: required"),
    "a list, not an object": ({"json": [message()]}, 422, "invalid_request", "body: must be a JSON object"),
    "no messages field": ({"json": {"texts": ["hi"]}}, 422, "invalid_request", "messages: required"),
    "unknown top-level field": ({"json": {"messages": [message()], "model": "x"}}, 422, "invalid_request", "model: unknown field"),
    "messages not a list": ({"json": {"messages": "hi"}}, 422, "invalid_request", "messages: must be a JSON array"),
    "empty list": ({"json": {"messages": []}}, 422, "invalid_request", "messages: must not be empty"),
    "message without text": ({"json": {"messages": [message(), {"id": 2}]}}, 422, "invalid_request", "messages[1].text: required"),
    "unknown message field": ({"json": {"messages": [{**message(), "lang": "en"}]}}, 422, "invalid_request", "messages[0].lang: unknown field"),
    "float id": ({"json": {"messages": [message(1.5)]}}, 422, "invalid_request", "messages[0].id: must be a string or an integer"),
    "boolean id": ({"json": {"messages": [message(True)]}}, 422, "invalid_request", "messages[0].id: must be a string or an integer"),
    "null id": ({"json": {"messages": [message(None)]}}, 422, "invalid_request", "messages[0].id: must be a string or an integer"),
    "number text": ({"json": {"messages": [message(1, 42)]}}, 422, "invalid_request", "messages[0].text: must be a string"),
    "null text": ({"json": {"messages": [message(1, None)]}}, 422, "invalid_request", "messages[0].text: must be a string"),
    "empty text": ({"json": {"messages": [message(1), message(2, "")]}}, 422, "invalid_request", "messages[1].text: must not be empty"),
    "whitespace-only text": ({"json": {"messages": [message(1), message(2), message(3, " \n\t ")]}}, 422, "invalid_request", "messages[2].text: must not be empty or whitespace only"),
    "unpaired surrogate in text": ({"content": b'{"messages": [{"id": 1, "text": "a \\ud800 b"}]}', "headers": JSON}, 422, "invalid_request", "messages[0].text: must be valid Unicode"),
    "unpaired surrogate in id": ({"content": b'{"messages": [{"id": "\\udc00", "text": "hi"}]}', "headers": JSON}, 422, "invalid_request", "messages[0].id: must be valid Unicode"),
    "duplicate ids": ({"json": {"messages": [message(7), message("7"), message(7)]}}, 422, "duplicate_ids", "messages[2].id: duplicate id 7: messages[0] has it too"),
    "a given id equal to a missing one's position": (
        {"json": {"messages": [{"text": "hi"}, message(0)]}}, 422, "duplicate_ids",
        "messages[1].id: duplicate id 0: messages[0] has it too (sent without an id, it has its position as id)",
    ),
    "too many messages": ({"json": {"messages": [message(i) for i in range(21)]}}, 413, "too_many_messages", "21 messages in one request; the limit is 20"),
    "text over max_text_chars": ({"json": {"messages": [message(1), message(2, "a" * 2001)]}}, 413, "text_too_long", "messages[1].text: 2,001 characters; the limit is 2,000"),
    "body over max_request_mb": ({"json": {"messages": [message(1, "a" * 300_000)]}}, 413, "request_too_large", "the limit is 262,144"),
    "bad scores flag": ({"json": {"messages": [message()]}, "params": {"scores": "maybe"}}, 422, "invalid_request", "query parameter scores: must be true or false"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_a_bad_request_gets_a_clear_json_4xx(single, case):
    kwargs, status, code, fragment = BAD_REQUESTS[case]
    response = httpx.post(f"{single.url}/predict", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and fragment in body["message"], body


@pytest.mark.slow
def test_unknown_paths_and_methods_get_json_errors(single):
    missing = httpx.get(f"{single.url}/classify")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found" and "POST /predict" in missing.json()["message"]
    wrong_method = httpx.get(f"{single.url}/predict")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


# -- health, model, OpenAPI ------------------------------------------------------------------
@pytest.mark.slow
def test_health_model_and_openapi(single, multi, models):
    health = httpx.get(f"{single.url}/health").json()
    assert health["status"] == "ok" and health["model_loaded"] is True and health["model_kind"] == "baseline"
    assert health["uptime_s"] > 0 and health["pending_messages"] == 0
    info = httpx.get(f"{multi.url}/model").json()
    model = textdistill.load(models["multi"])
    assert info["kind"] == "baseline" and info["labels"] == list(model.label_space.labels)
    assert info["multi_label"] is True and info["hierarchy_sep"] == " > " and info["n_params"] == model.n_params
    assert info["thresholds"] == pytest.approx(dict(zip(model.label_space.labels, model.thresholds.tolist())))
    assert info["created"] == model.manifest.created and "numpy" in info["versions"]
    assert info["limits"]["oversize"] == "truncate" and info["limits"]["max_text_chars"] == 100
    assert httpx.get(f"{single.url}/model").json()["thresholds"] is None  # single-label: argmax, no thresholds
    openapi = httpx.get(f"{single.url}/openapi.json").json()
    assert {"/predict", "/health", "/model"} <= set(openapi["paths"])
    assert {"413", "422", "500"} <= set(openapi["paths"]["/predict"]["post"]["responses"])
    assert httpx.get(f"{single.url}/docs").status_code == 200


@pytest.mark.slow
def test_fuzzing_the_openapi_schema_finds_no_server_error_and_no_undocumented_answer(single):
    # Hypothesis driven directly: schemathesis.pytest.from_fixture fails on pytest 9 (no Function._nodeid).
    schema = schemathesis.openapi.from_url(f"{single.url}/openapi.json")
    cases = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, negative_data_rejection]

    @given(case=cases)
    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answer_is_well_formed(case):
        case.call_and_validate(checks=checks)

    answer_is_well_formed()


# -- graceful shutdown -------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(models, held_out_texts, tmp_path):
    server = start_server(models["single"], tmp_path / "server.log", "--max-batch", "1", "--max-messages", "2000", "--max-wait-ms", "0")
    try:
        wait_ready(server)
        messages = [{"id": i, "text": held_out_texts[i % len(held_out_texts)]} for i in range(600)]  # 600 model calls, one by one
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(post, server, messages)
            deadline = time.monotonic() + 60
            while httpx.get(f"{server.url}/health").json()["pending_messages"] == 0:
                assert not answer.done() and time.monotonic() < deadline, "the request never showed up as pending"
                time.sleep(0.02)
            server.process.send_signal(signal.SIGTERM)
            assert not answer.done()  # the signal came while the request was in flight
            response = answer.result(timeout=120)
        assert response.status_code == 200, response.text
        assert [r["id"] for r in response.json()["results"]] == list(range(600))
        assert server.process.wait(timeout=60) == 0, server.output()
        assert "Shutting down" in server.output()
    finally:
        server.stop()


# -- in process ------------------------------------------------------------------------------
def test_a_model_exception_is_a_logged_500_with_a_json_body(models, caplog):
    model = textdistill.load(models["single"])
    predict_proba = model.predict_proba

    def failing(texts):
        if any("explode" in t for t in texts):
            raise RuntimeError("weights on fire")
        return predict_proba(texts)

    model.predict_proba = failing
    with TestClient(create_app(model, ServeSettings(max_wait_ms=0))) as client, caplog.at_level(logging.ERROR, logger="textdistill"):
        failed = client.post("/predict", json={"messages": [message(1, "please explode")]})
        fine = client.post("/predict", json={"messages": [message(2, "where is my parcel")]})
    assert failed.status_code == 500
    assert failed.json()["error"] == "model_error" and "RuntimeError" in failed.json()["message"]
    assert "weights on fire" not in failed.text  # internals stay in the log
    assert any("weights on fire" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)
    assert fine.status_code == 200


def test_settings_are_checked():
    with pytest.raises(TextdistillError, match="max_batch must be at least 1"):
        ServeSettings(max_batch=0)
    with pytest.raises(TextdistillError, match="oversize must be 'reject' or 'truncate'"):
        ServeSettings(oversize="cut")  # type: ignore[arg-type]


def test_serve_without_fastapi_names_the_extra(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # makes `import fastapi` fail
    result = CliRunner().invoke(cli_app, ["serve", str(models["single"])])
    assert isinstance(result.exception, TextdistillError)
    assert "pip install 'textdistill[serve]'" in str(result.exception)


def test_serve_and_demo_serve_have_help_with_examples():
    runner = CliRunner()
    serve_help = runner.invoke(cli_app, ["serve", "--help"])
    assert serve_help.exit_code == 0 and "Example" in serve_help.output and "--oversize" in serve_help.output
    assert "--serve" in runner.invoke(cli_app, ["demo", "--help"]).output


def test_demo_serves_the_student_with_the_best_macro_f1(tmp_path):
    (tmp_path / "config.toml").write_text('[[students]]\nname = "static"\n\n[[students]]\nname = "bilstm"\n', encoding="utf-8")
    evaluations = tmp_path / "run" / "evaluations"
    evaluations.mkdir(parents=True)
    scores = {"static": (0.81, 0.2), "bilstm": (0.84, 1.5), "teacher": (0.95, 9.0)}  # the teacher is no student
    for name, (f1, ms) in scores.items():
        (evaluations / f"{name}.json").write_text(json.dumps({"name": name, "macro_f1": f1, "latency_ms_p50": ms}))
    assert best_student(tmp_path) == tmp_path / "run" / "models" / "bilstm"
    (evaluations / "static.json").write_text(json.dumps({"name": "static", "macro_f1": 0.84, "latency_ms_p50": 0.2}))
    assert best_student(tmp_path) == tmp_path / "run" / "models" / "static"  # a tie goes to the faster
