"""ONNX Runtime single-query embeddings: the torch model's vectors, exported once, never trusted unverified."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant import onnx_query
from assistant.embeddings import Embedder, default_model_dir

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "My Skerry Rain Shell arrived with a torn sleeve, order #4521.",
    "Mein Paket ist nicht angekommen. Können Sie mir helfen?",
    "¿Dónde está mi pedido? Han pasado diez días y no sé nada.",
    "x",
    "",
    "zip broken " * 300,  # longer than the model's 256 tokens: truncated exactly as sentence-transformers does
]


def cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_onnx_queries_give_the_torch_vectors(onnx_cache):
    fast = Embedder(onnx_cache_dir=onnx_cache)
    assert fast.query_engine == "onnx"
    exported = list((onnx_cache / "onnx").glob("*.onnx"))
    assert len(exported) == 1 and not list((onnx_cache / "onnx").glob(".export-*"))  # no temp file left
    reference = Embedder()  # torch only
    assert reference.query_engine == "torch"
    for q in QUERIES:
        a, b = fast.embed_query(q), reference.embed_query(q)
        assert len(a) == 384 and abs(np.linalg.norm(a) - 1) < 1e-5
        assert cos(a, b) > 0.99999, q[:40]


def test_the_export_is_reused_by_the_next_process(onnx_cache, monkeypatch):
    Embedder(onnx_cache_dir=onnx_cache).prepare_queries()
    before = {p: p.stat().st_mtime_ns for p in (onnx_cache / "onnx").glob("*.onnx")}

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_query, "export", no_export)
    e = Embedder(onnx_cache_dir=onnx_cache)
    assert e.query_engine == "onnx"
    assert {p: p.stat().st_mtime_ns for p in (onnx_cache / "onnx").glob("*.onnx")} == before


def test_a_damaged_cache_file_is_exported_again(tmp_path, caplog):
    Embedder(onnx_cache_dir=tmp_path).prepare_queries()
    (path,) = (tmp_path / "onnx").glob("*.onnx")
    path.write_bytes(b"not an onnx graph")
    with caplog.at_level(logging.WARNING):
        e = Embedder(onnx_cache_dir=tmp_path)
        assert e.query_engine == "onnx"
    assert "exporting it again" in caplog.text
    assert path.stat().st_size > 1_000_000
    assert cos(e.embed_query(QUERIES[0]), Embedder().embed_query(QUERIES[0])) > 0.99999


def test_a_graph_that_disagrees_with_torch_is_never_used(tmp_path, monkeypatch, caplog):
    real_encode = onnx_query.OnnxQueryEncoder.encode
    monkeypatch.setattr(onnx_query.OnnxQueryEncoder, "encode", lambda self, text: -real_encode(self, text))
    with caplog.at_level(logging.WARNING):
        e = Embedder(onnx_cache_dir=tmp_path)
        assert e.query_engine == "torch"  # and it says so in the log
    assert "disagrees with torch" in caplog.text and "embedded with torch" in caplog.text
    assert not list((tmp_path / "onnx").glob("*.onnx"))  # nothing unverified left for the next process
    monkeypatch.undo()
    assert cos(e.embed_query(QUERIES[1]), Embedder().embed_query(QUERIES[1])) > 0.99999


def test_only_plain_mean_pooling_models_qualify(tmp_path):
    assert onnx_query.supported(default_model_dir())
    model = tmp_path / "dense-model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "tokenizer.json").write_text("{}")
    modules = [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
    (model / "modules.json").write_text(json.dumps(modules))
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    assert not onnx_query.supported(model)  # a Dense layer is not in the exported graph
    (model / "modules.json").write_text(json.dumps(modules[:2]))
    assert onnx_query.supported(model)
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert not onnx_query.supported(model)
    assert not onnx_query.supported(tmp_path / "missing")
    # bf16 embedders (the eval's similarity) never use the fp32 graph
    assert Embedder(precision="bf16", onnx_cache_dir=tmp_path).query_engine == "torch"


def test_settings_switch(tmp_path):
    from assistant.settings import Settings
    from assistant.wiring import build_embedder

    on = Settings.from_env({"ASSISTANT_CACHE_DIR": str(tmp_path)})
    assert on.onnx_queries and on.cache_dir == tmp_path
    assert build_embedder(on).onnx_cache_dir == tmp_path
    off = Settings.from_env({"ASSISTANT_CACHE_DIR": str(tmp_path), "ASSISTANT_ONNX_QUERIES": "false"})
    assert build_embedder(off).onnx_cache_dir is None


def test_a_drafting_process_never_imports_torch(kb_settings, onnx_cache):
    """Cold start: with the encoder exported, `draft` needs neither torch nor transformers."""
    Embedder(onnx_cache_dir=onnx_cache).prepare_queries()
    code = (
        "import sys\n"
        "from assistant.settings import Settings\n"
        "from assistant.wiring import build_drafter\n"
        "d = build_drafter(Settings.from_env(), backend_name='composer')\n"
        "r = d.draft('My jacket arrived with a torn sleeve. What can you do?')\n"
        "assert r.text and r.sources\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules),\n"
        "      d.retriever.embedder.query_engine)\n"
    )
    env = {"ASSISTANT_DATA_DIR": str(kb_settings.data_dir), "ASSISTANT_CACHE_DIR": str(onnx_cache),
           "PATH": "/usr/bin:/bin", "HOME": str(onnx_cache)}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "onnx"], r.stdout
