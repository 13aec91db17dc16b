"""Single-query embeddings through ONNX Runtime: the torch model's own fp32 vectors, about twice as fast.

A customer message is embedded one at a time, where PyTorch's per-operator overhead dominates (~12 ms for
a 30-token query on one core, ~6 ms with ONNX Runtime; scripts/bench.py). A process that only drafts (the
CLI, a UI replica after start-up) then never imports torch or transformers, which is most of a cold start.

The graph is exported once from the loaded sentence-transformers model (transformer + mean pooling +
L2 normalisation), checked against torch on probe sentences before it is used (cosine ≥ 0.99999), and
cached under `<cache dir>/onnx/`, named after the model folder's files, so a changed model is re-exported.
Only plain mean-pooling models qualify; anything else keeps using torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes
MIN_COSINE = 0.99999
PROBES = [
    "My jacket arrived with a torn sleeve, order #4521.",
    "Où est mon colis ? Il devait arriver lundi.",
    "refund",
    "I can't log in: the password reset e-mail never arrives and I've tried three times since yesterday. " * 12,
]


def supported(model_dir: Path) -> bool:
    """A sentence-transformers folder of Transformer → mean Pooling (→ Normalize) and nothing else."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return False
        pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
        return modes == {"pooling_mode_mean_tokens"} and (model_dir / "tokenizer.json").is_file()
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False


def fingerprint(model_dir: Path) -> str:
    """Names the exported file: the model folder's path and its files' sizes and modification times."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}:{model_dir.resolve()}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(model_dir)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def max_seq_length(model_dir: Path) -> int:
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 256


class OnnxQueryEncoder:
    """One text → one normalised float32 vector, with the model's own tokenizer and truncation."""

    def __init__(self, onnx_path: Path, model_dir: Path, threads: int = 1):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.path = onnx_path
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length(model_dir))
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Like OMP_WAIT_POLICY=PASSIVE for torch: no spinning threads fighting other work for 2 cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def encode(self, text: str):
        import numpy as np

        enc = self.tokenizer.encode(text)
        feeds = {
            "input_ids": np.asarray([enc.ids], dtype=np.int64),
            "attention_mask": np.asarray([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64),
        }
        return self.session.run(None, feeds)[0][0]


def export(st_model, target: Path) -> None:
    """Write the ONNX graph of `st_model` (a SentenceTransformer) to `target`."""
    import torch

    class _Encoder(torch.nn.Module):
        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = st_model.tokenizer(["a sample query"], return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    # The tracer warns that shape checks become constants: they are, for one unpadded text at a time (the
    # only input this graph gets), and the probes in `load_or_export` check the result on other lengths.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Encoder(st_model[0].auto_model).eval(),
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(target),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter: no onnxscript, one second for MiniLM
        )


def load_or_export(model_dir: Path, cache_dir: Path, torch_model, torch_encode) -> OnnxQueryEncoder:
    """The verified encoder for `model_dir`, exported first if it is not cached yet.

    `torch_model()` returns the loaded SentenceTransformer (only called to export); `torch_encode(text)` the
    reference vector. Raises on any failure; the caller decides what to do (it keeps using torch)."""
    import numpy as np

    folder = Path(cache_dir) / "onnx"
    path = folder / f"{model_dir.name or 'model'}-{fingerprint(model_dir)}.onnx"
    if path.is_file():
        try:
            return OnnxQueryEncoder(path, model_dir)
        except Exception as e:  # a damaged cache file: export it again
            log.warning("Cached ONNX query encoder %s is unusable (%s); exporting it again", path, e)
            path.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".onnx")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        export(torch_model(), tmp)
        encoder = OnnxQueryEncoder(tmp, model_dir)
        for text in PROBES:
            a = np.asarray(encoder.encode(text), dtype=np.float64)
            b = np.asarray(torch_encode(text), dtype=np.float64)
            cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            if cos < MIN_COSINE:
                raise RuntimeError(f"the exported graph disagrees with torch (cosine {cos:.6f} on a probe)")
        tmp.chmod(0o644)
        os.replace(tmp, path)  # atomic: concurrent processes see no file or a whole, verified one
    finally:
        tmp.unlink(missing_ok=True)
    return OnnxQueryEncoder(path, model_dir)
