"""The prediction service: ``POST /predict``, ``GET /health``, ``GET /model``, OpenAPI at ``/docs``.

Messages of concurrent requests are micro-batched (:mod:`textdistill.serve.batching`) and the
model runs in one worker thread, so the event loop keeps answering while it predicts. On
shutdown, requests in flight are finished before the model's thread is stopped.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from textdistill import __version__
from textdistill.models.automation import Automation, read_automation
from textdistill.models.base import TextClassifier, load_model
from textdistill.models.out_of_scope import OUT_OF_SCOPE, OutOfScope, read_out_of_scope
from textdistill.serve.batching import BatcherClosed, MicroBatcher
from textdistill.serve.body_limit import BodySizeLimit
from textdistill.serve.errors import ApiError, install_error_handlers, summarise
from textdistill.serve.predictor import Prediction, Predictor, limit_threads
from textdistill.serve.schema import (
    ErrorBody,
    ErrorDetail,
    Health,
    Message,
    MessagePrediction,
    ModelInfo,
    OutOfScopeVerdict,
    PredictRequest,
    PredictResponse,
    ServingLimits,
    WithheldLabel,
)
from textdistill.serve.settings import ServeSettings

WARM_UP_TEXT = "Hello, where is my order?"
_ERRORS = {
    400: {"model": ErrorBody, "description": "The body is not valid UTF-8 JSON, is nested too deep, or holds a number too long to parse."},
    413: {"model": ErrorBody, "description": "Too many messages, a text over max_text_chars (oversize = reject), or a body over max_request_bytes."},
    415: {"model": ErrorBody, "description": "The body is not sent as application/json."},
    422: {"model": ErrorBody, "description": "Missing or unknown fields, wrong types, an empty list, an empty or whitespace-only text, or duplicate ids."},
    500: {"model": ErrorBody, "description": "The model failed; the server log has the details."},
    503: {"model": ErrorBody, "description": "The service is shutting down."},
}


def create_app(
    model: TextClassifier | str | Path, settings: ServeSettings | None = None, automation: Automation | None = None, out_of_scope: OutOfScope | None = None
) -> FastAPI:
    """The FastAPI app serving ``model`` (a loaded model or a saved model directory, loaded now,
    with the automation thresholds and reject option saved beside it). ``automation`` and
    ``out_of_scope``: those of a loaded model."""
    settings = settings or ServeSettings()
    if isinstance(model, str | Path):
        directory, model = model, load_model(model)
        automation = read_automation(directory, model.manifest)
        out_of_scope = read_out_of_scope(directory, model.manifest)
    predictor = Predictor(model, automation, out_of_scope)
    service = _Service()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(1, thread_name_prefix="textdistill-model", initializer=limit_threads, initargs=(settings.threads,))
        try:
            # the first call pays for lazy initialisation (tokenizers, thread pools), not a client
            await asyncio.get_running_loop().run_in_executor(executor, predictor, [WARM_UP_TEXT])
            service.batcher = MicroBatcher(predictor, max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms, executor=executor)
            await service.batcher.start()
            service.started = time.monotonic()
            yield
        finally:
            if service.batcher is not None:
                await service.batcher.stop()
            executor.shutdown(wait=True)

    app = FastAPI(
        title="textdistill prediction service",
        version=__version__,
        description=f"Classifies business messages with a {model.kind} model. Every error answer is a JSON `ErrorBody`.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    install_error_handlers(app)

    @app.post("/predict", response_model=PredictResponse, response_model_exclude_none=True, responses=_ERRORS)
    async def predict(
        request: PredictRequest,
        scores: Annotated[bool, Query(description="Also return every label's confidence, not only the predicted labels'.")] = False,
    ) -> PredictResponse:
        """Classify messages. Each result has the message's id, its labels (thresholds applied,
        hierarchy parents included) and their confidences, in request order; with automation
        thresholds, also the predicted labels withheld below them."""
        texts, truncated = _checked_texts(request.messages, settings)
        if service.batcher is None:
            raise ApiError(503, "unavailable", "the model is not loaded yet; retry in a moment.")
        try:
            predictions = await service.batcher.submit(texts)
        except BatcherClosed:
            raise ApiError(503, "unavailable", "the service is shutting down; send the request to another instance.") from None
        except Exception as error:
            raise ApiError(500, "model_error", f"the model failed on this request ({type(error).__name__}); the server log has the details.") from error
        return PredictResponse(
            results=[_result(m, p, cut, scores) for m, p, cut in zip(request.messages, predictions, truncated)]
        )

    @app.get("/health", response_model=Health, responses={503: {"model": Health, "description": "Starting up or shutting down."}})
    async def health() -> JSONResponse:
        """Whether the model is loaded and taking requests (200), or not (503)."""
        loaded = service.batcher is not None and service.batcher.running
        body = Health(
            status="ok" if loaded else "unavailable",
            model_loaded=loaded,
            model_kind=model.kind,
            uptime_s=round(time.monotonic() - service.started, 3),
            pending_messages=service.batcher.pending if service.batcher is not None else 0,
        )
        return JSONResponse(body.model_dump(), status_code=200 if loaded else 503)

    info = _model_info(model, settings, automation, out_of_scope)

    @app.get("/model", response_model=ModelInfo)
    async def model_info() -> ModelInfo:
        """The served model's manifest (kind, labels, hierarchy, thresholds, metrics, size,
        versions) and the service's limits."""
        return info

    return app


class _Service:
    """What the endpoints share: the batcher, once the lifespan has started it."""

    def __init__(self) -> None:
        self.batcher: MicroBatcher[str, Prediction] | None = None
        self.started = time.monotonic()


def _checked_texts(messages: Sequence[Message], settings: ServeSettings) -> tuple[list[str], list[bool]]:
    """The texts to predict and which were truncated; 413 / 422 for requests over the limits
    or with duplicate ids."""
    if len(messages) > settings.max_messages:
        raise ApiError(
            413,
            "too_many_messages",
            f"{len(messages):,} messages in one request; the limit is {settings.max_messages:,}. Split them over several requests.",
        )
    first_index: dict[tuple[bool, str | int], int] = {}
    duplicates = []
    for i, message in enumerate(messages):
        key = (isinstance(message.id, str), message.id)  # 7 and "7" are different ids
        if key in first_index:
            first = first_index[key]
            why = " (sent without an id, it has its position as id)" if messages[first].id_is_position else ""
            duplicates.append(ErrorDetail(location=f"messages[{i}].id", problem=f"duplicate id {message.id!r}: messages[{first}] has it too{why}"))
        first_index.setdefault(key, i)
    if duplicates:
        raise ApiError(422, "duplicate_ids", f"ids must be unique within a request: {summarise(duplicates)}.", duplicates)
    limit = settings.max_text_chars
    too_long = [
        ErrorDetail(location=f"messages[{i}].text", problem=f"{len(m.text):,} characters; the limit is {limit:,}")
        for i, m in enumerate(messages)
        if len(m.text) > limit
    ]
    if too_long and settings.oversize == "reject":
        raise ApiError(
            413,
            "text_too_long",
            f"{summarise(too_long)}. Shorten the text, or run the service with --oversize truncate to cut long texts.",
            too_long,
        )
    return [m.text[:limit] for m in messages], [len(m.text) > limit for m in messages]


def _result(message: Message, prediction: Prediction, truncated: bool, all_scores: bool) -> MessagePrediction:
    return MessagePrediction(
        id=message.id,
        labels=list(prediction.labels),
        confidences={label: prediction.scores[label] for label in prediction.labels},
        truncated=truncated,
        scores=prediction.scores if all_scores else None,
        withheld=None if prediction.withheld is None else [WithheldLabel(**asdict(w)) for w in prediction.withheld],
        out_of_scope=None if prediction.out_of_scope is None else _verdict(*prediction.out_of_scope),
    )


def _verdict(rejected: bool, score: float, threshold: float) -> OutOfScopeVerdict:
    return OutOfScopeVerdict(rejected=rejected, score=score, threshold=threshold, reason=OUT_OF_SCOPE if rejected else None)


def _model_info(model: TextClassifier, settings: ServeSettings, automation: Automation | None, out_of_scope: OutOfScope | None) -> ModelInfo:
    space = model.label_space
    manifest = model.manifest
    thresholds = None if model.thresholds is None else {label: float(t) for label, t in zip(space.labels, model.thresholds)}
    return ModelInfo(
        kind=model.kind,
        labels=list(space.labels),
        multi_label=space.multi_label,
        hierarchy_sep=space.hierarchy_sep,
        thresholds=thresholds,
        threshold_mode=model.threshold_mode if space.multi_label else None,
        automation=None if automation is None else {entry.label: entry.threshold for entry in automation.labels},
        out_of_scope=None
        if out_of_scope is None
        else _finite({"score": out_of_scope.score, "threshold": out_of_scope.threshold, "max_in_scope_loss": out_of_scope.max_in_scope_loss, "validation": out_of_scope.validation}),
        metrics=_finite(manifest.metrics) if manifest else None,
        n_params=model.n_params,
        created=manifest.created if manifest else None,
        versions=manifest.versions if manifest else {},
        limits=ServingLimits(
            max_messages=settings.max_messages,
            max_text_chars=settings.max_text_chars,
            oversize=settings.oversize,
            max_request_bytes=settings.max_request_bytes,
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
        ),
    )


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite numbers as None: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
