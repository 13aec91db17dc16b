"""Row "upgrade": a store built by another embedding model or dimension.

Every command that opens it (search, draft, an incremental ingest) fails with one clear error naming
both models and the rebuild command; `assistant ingest --rebuild` recovers. Pointing
ASSISTANT_EMBEDDING_MODEL_DIR at another model is caught in both directions.
"""

from __future__ import annotations

import json
import os

import pytest

from assistant.embeddings import DIMENSION, MODEL_NAME, default_model_dir
from assistant.settings import Settings
from assistant.store import REBUILD_HINT, KnowledgeStore
from assistant.wiring import reset_cache
from tests.faults.procs import generate_kb

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(monkeypatch, capsys):
    from assistant.cli import main

    def run(data_dir, *args, model_dir=None):
        reset_cache()
        monkeypatch.setenv("ASSISTANT_DATA_DIR", str(data_dir))
        if model_dir is None:
            monkeypatch.delenv("ASSISTANT_EMBEDDING_MODEL_DIR", raising=False)
        else:
            monkeypatch.setenv("ASSISTANT_EMBEDDING_MODEL_DIR", str(model_dir))
        capsys.readouterr()
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    yield run
    reset_cache()


def _other_model(dest, dimension: int | None = None):
    """A sentence-transformers folder under another name (the MiniLM files, linked), optionally claiming
    another output dimension in its pooling config."""
    src = default_model_dir()
    dest.mkdir(parents=True)
    for item in src.iterdir():
        if item.name != "1_Pooling":
            os.symlink(item, dest / item.name)
    (dest / "1_Pooling").mkdir()
    config = json.loads((src / "1_Pooling" / "config.json").read_text())
    if dimension:
        config["word_embedding_dimension"] = dimension
    (dest / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return dest


def _assert_refused(rc, out, err, old_model: str, old_dim, new_model: str, new_dim):
    assert rc == 1 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert f"was built with embedding model {old_model!r} (dimension {old_dim})" in errors[0]
    assert f"this version uses {new_model!r} (dimension {new_dim})" in errors[0]
    assert f"hint: {REBUILD_HINT}" in err


@pytest.mark.parametrize("model, dim", [("other-model", 768), (MODEL_NAME, 512), ("sentence-t5-base", DIMENSION)])
def test_a_store_built_by_another_model_or_dimension_is_refused_with_the_rebuild_command(tmp_path, cli, model, dim):
    kb = generate_kb(tmp_path / "notes", files=4)
    data = tmp_path / "data"
    old = KnowledgeStore(Settings.from_env({"ASSISTANT_DATA_DIR": str(data)}), model_name=model, dimension=dim)
    old.collection("knowledge", create=True)
    old.collection("tickets", create=True)
    del old
    for args in (["search", "torn sleeve"], ["draft", "--backend", "composer", "My jacket is torn"],
                 ["ingest", "--no-progress", str(kb)]):
        _assert_refused(*cli(data, *args), model, dim, MODEL_NAME, DIMENSION)
    rc, out, err = cli(data, "ingest", "--rebuild", "--json", "--no-progress", str(kb))
    assert rc == 0, err
    assert json.loads(out)["chunks_total"] > 0
    rc, out, err = cli(data, "search", "--json", "care for the zip")
    assert rc == 0 and json.loads(out), err


def test_switching_the_embedding_model_dir_is_caught_both_ways(tmp_path, cli):
    kb = generate_kb(tmp_path / "notes", files=4)
    data = tmp_path / "data"
    other = _other_model(tmp_path / "other-minilm")
    assert cli(data, "ingest", "--no-progress", str(kb))[0] == 0  # built with the packaged model
    _assert_refused(*cli(data, "search", "zip", model_dir=other), MODEL_NAME, DIMENSION, "other-minilm", DIMENSION)
    rc, _, err = cli(data, "ingest", "--rebuild", "--no-progress", str(kb), model_dir=other)
    assert rc == 0, err
    assert cli(data, "search", "zip", model_dir=other)[0] == 0
    _assert_refused(*cli(data, "search", "zip"), "other-minilm", DIMENSION, MODEL_NAME, DIMENSION)
    wide = _other_model(tmp_path / "wide-model", dimension=768)
    _assert_refused(*cli(data, "search", "zip", model_dir=wide), "other-minilm", DIMENSION, "wide-model", 768)
