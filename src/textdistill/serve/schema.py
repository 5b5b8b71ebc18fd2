"""Request and response bodies of the prediction service (they make its OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictStr, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

NOT_UNICODE = "must be valid Unicode (it holds an unpaired surrogate)"


class Message(BaseModel):
    """One message to classify."""

    model_config = ConfigDict(extra="forbid")

    # None only until PredictRequest gives a message sent without an id its position; null is
    # refused like any other non-id, so the schema leaves it out (and the default with it).
    id: str | int | SkipJsonSchema[None] = Field(
        default=None,
        description="Your id for the message, echoed back; unique within a request. Optional: "
        "a message without one gets its position in the request (0 for the first) as its id.",
        examples=["msg-1"],
        json_schema_extra=lambda schema: schema.pop("default", None),
    )
    text: StrictStr = Field(min_length=1, description="The message text.", examples=["Where is my parcel? It was due on Monday."])
    _id_is_position: bool = PrivateAttr(default=False)

    @property
    def id_is_position(self) -> bool:
        """Whether the message came without an id and has its position in the request as id."""
        return self._id_is_position

    @field_validator("id", mode="before")
    @classmethod
    def _string_or_integer(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a string or an integer, or left out")  # noqa: TRY004  (pydantic reports ValueError, not TypeError)
        return value

    @field_validator("id")
    @classmethod
    def _valid_unicode(cls, value: str | int) -> str | int:
        # pydantic checks this for `text` (StrictStr) but not for a string in a union
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(NOT_UNICODE) from None
        return value

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or whitespace only")
        return value


class PredictRequest(BaseModel):
    """Messages to classify; the answers come back in the same order."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1, description="At least one message; the service's limit is in GET /model.")

    @model_validator(mode="after")
    def _positions_as_missing_ids(self) -> PredictRequest:
        for position, message in enumerate(self.messages):
            if message.id is None:
                message.id, message._id_is_position = position, True
        return self


class WithheldLabel(BaseModel):
    """A label the model predicted but the service does not return (automation thresholds)."""

    label: str
    confidence: float
    threshold: float | None = Field(default=None, description="The label's automation threshold; absent for a label that never reached its target precision.")
    reason: str = Field(description="`below_threshold`, or `target_not_reached`: the label is never automated.", examples=["below_threshold"])


class OutOfScopeVerdict(BaseModel):
    """Whether the message matches none of the model's labels (a reject option, `textdistill reject`)."""

    rejected: bool = Field(description="True when the score is above the threshold: the message gets no label.")
    score: float = Field(description="The message's out-of-scope score; higher is less like any label.")
    threshold: float
    reason: str | None = Field(default=None, description="`out_of_scope` when rejected.", examples=["out_of_scope"])


class MessagePrediction(BaseModel):
    """The model's answer for one message."""

    id: str | int = Field(description="The message's id, as sent; without one, its position in the request.")
    labels: list[str] = Field(
        description="Predicted labels, thresholds applied; hierarchical labels come with their parents (`Billing`, `Billing > Refund`)."
    )
    confidences: dict[str, float] = Field(description="Confidence of each predicted label; a parent's is never below its children's.")
    truncated: bool = Field(description="True when the text was cut to the service's max_text_chars before predicting.")
    scores: dict[str, float] | None = Field(
        default=None, description="Every label's confidence (parents included); only with `?scores=true`."
    )
    withheld: list[WithheldLabel] | None = Field(
        default=None,
        description="Only for a model with automation thresholds (`textdistill automate`): the predicted labels below their "
        "threshold, left out of `labels` (a single-label message whose label is withheld has no labels).",
    )
    out_of_scope: OutOfScopeVerdict | None = Field(
        default=None,
        description="Only for a model with a reject option (`textdistill reject`): its verdict; a rejected message has no labels.",
    )


class PredictResponse(BaseModel):
    results: list[MessagePrediction] = Field(description="One result per message, in request order.")


class Health(BaseModel):
    status: str = Field(description="`ok`, or `unavailable` while starting up or shutting down.", examples=["ok"])
    model_loaded: bool = Field(description="Whether the model is loaded and taking requests.")
    model_kind: str = Field(description="The model's kind, from its manifest.", examples=["static"])
    uptime_s: float = Field(description="Seconds since the service started.")
    pending_messages: int = Field(description="Messages received and not answered yet.")


class ServingLimits(BaseModel):
    max_messages: int
    max_text_chars: int
    oversize: str = Field(description="`reject` (413) or `truncate` (cut, flagged `truncated`).")
    max_request_bytes: int
    max_batch: int
    max_wait_ms: float


class ModelInfo(BaseModel):
    """What the served model is, from its manifest, and the limits the service applies."""

    kind: str
    labels: list[str]
    multi_label: bool
    hierarchy_sep: str | None = Field(description="Separator of hierarchical labels (`Parent > Child`), or null.")
    thresholds: dict[str, float] | None = Field(description="Multi-label decision threshold per label, or null.")
    threshold_mode: str | None
    automation: dict[str, float | None] | None = Field(
        default=None, description="Automation threshold per label (`textdistill automate`); null for a label never automated; null without."
    )
    out_of_scope: dict[str, Any] | None = Field(
        default=None, description="The reject option (`textdistill reject`): its score, threshold and what it gave on validation; null without."
    )
    metrics: dict[str, Any] | None
    n_params: int
    created: str | None
    versions: dict[str, str]
    limits: ServingLimits


class ErrorDetail(BaseModel):
    location: str = Field(description="Where in the request, e.g. `messages[2].text`.", examples=["messages[2].text"])
    problem: str = Field(examples=["must not be empty or whitespace only"])


class ErrorBody(BaseModel):
    """Every error answer, 4xx and 5xx alike."""

    error: str = Field(description="A stable code, e.g. `invalid_request`, `text_too_long`, `model_error`.", examples=["invalid_request"])
    message: str = Field(description="What was wrong and what to do, for people.")
    details: list[ErrorDetail] = Field(default_factory=list, description="One entry per problem found, with its location.")
