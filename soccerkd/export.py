"""Export a trained model to TorchScript and ONNX, with a numeric parity check against eager PyTorch.

Both artifacts take ``clips`` (``B×C×T×H×W`` float32, dynamic batch ``B``) and return ``logits``
(``B×num_classes``), and embed the model's :class:`~soccerkd.spec.InputSpec` as JSON (TorchScript
extra file ``input_spec.json``; ONNX metadata key ``input_spec``), which is also written next to
them. Parity = max |exported − eager| over random clips at batch sizes other than the one traced;
above the fp32 tolerance (1e-4) the export fails with :class:`ExportError`.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from soccerkd.errors import SoccerKDError
from soccerkd.spec import InputSpec

FORMATS = ("torchscript", "onnx")
FILENAMES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
DEFAULT_TOLERANCE = 1e-4
# The ONNX file holds its weights inline below this size (protobuf's limit is 2 GiB).
_INLINE_WEIGHTS_LIMIT = 1_800_000_000


class ExportError(SoccerKDError):
    """An export failed, or an exported model's logits differ from eager beyond the tolerance."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_model` wrote and how closely each artifact matches eager PyTorch."""

    out_dir: Path
    artifacts: dict[str, Path]
    max_abs_diff: dict[str, float]
    tolerance: float
    batch_sizes: tuple[int, ...]
    input_shape: tuple[int, ...]
    input_spec: InputSpec = field(repr=False)

    @property
    def ok(self) -> bool:
        return all(d <= self.tolerance for d in self.max_abs_diff.values())

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "artifacts": {k: str(v) for k, v in self.artifacts.items()},
                "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance, "ok": self.ok,
                "batch_sizes": list(self.batch_sizes), "input_shape": list(self.input_shape),
                "input_spec": self.input_spec.to_dict()}

    def lines(self) -> list[str]:
        shape = "×".join(map(str, self.input_shape))
        return [f"parity {fmt:<11} max|exported - eager| = {diff:.3e} on random {shape} clips, "
                f"batch sizes {list(self.batch_sizes)} (tolerance {self.tolerance:.0e}) "
                f"{'OK' if diff <= self.tolerance else 'FAIL'}  -> {self.artifacts[fmt]}"
                for fmt, diff in self.max_abs_diff.items()]


def export_model(model: nn.Module, input_spec: InputSpec | None, out_dir: str | Path, *,
                 formats: Sequence[str] = FORMATS, tolerance: float = DEFAULT_TOLERANCE,
                 batch_sizes: Sequence[int] = (1, 3), seed: int = 0, opset: int | None = None,
                 echo: Callable[[str], None] | None = print) -> ExportReport:
    """Write ``formats`` of ``model`` (fp32, CPU, eval) to ``out_dir`` and check parity.

    ``input_spec`` defaults to ``model.input_spec``. The report is written to
    ``out_dir/export_report.json`` and its lines are passed to ``echo``. Raises
    :class:`ExportError` on an unknown format, a failed export, or parity above ``tolerance``.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ExportError(f"unknown export format(s) {bad or list(formats)!r}; choose from {list(FORMATS)}")
    spec = input_spec if input_spec is not None else getattr(model, "input_spec", None)
    if not isinstance(spec, InputSpec):
        raise ExportError("no input spec: pass input_spec= or give the model an .input_spec")
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ExportError(f"batch_sizes must be >= 1, got {list(batch_sizes)!r}")
    eager = copy.deepcopy(model).cpu().float().eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape = (3, spec.clip.num_frames, spec.size, spec.size)
    spec_json = json.dumps(spec.to_dict(), indent=2)
    (out / "input_spec.json").write_text(spec_json + "\n")
    generator = torch.Generator().manual_seed(seed)
    # Trace at batch 2: torch.export specialises a batch of 1, and parity uses other sizes.
    example = torch.randn(2, *shape, generator=generator)
    clips = [torch.randn(b, *shape, generator=generator) for b in batch_sizes]
    with torch.no_grad():
        expected = [eager(c) for c in clips]

    artifacts: dict[str, Path] = {}
    diffs: dict[str, float] = {}
    for fmt in formats:
        path = out / FILENAMES[fmt]
        try:
            run = (_export_torchscript if fmt == "torchscript" else _export_onnx)(eager, example, path, spec_json, opset)
            got = [run(c) for c in clips]
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{fmt} export of {getattr(model, 'model_name', type(model).__name__)} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        artifacts[fmt] = path
        diffs[fmt] = max(float((g - e).abs().max()) for g, e in zip(got, expected))
    report = ExportReport(out_dir=out, artifacts=artifacts, max_abs_diff=diffs, tolerance=tolerance,
                          batch_sizes=tuple(batch_sizes), input_shape=shape, input_spec=spec)
    (out / "export_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if echo is not None:
        for line in report.lines():
            echo(line)
    if not report.ok:
        worst = max(diffs, key=diffs.__getitem__)
        raise ExportError(f"{worst} logits differ from eager by {diffs[worst]:.3e} > tolerance {tolerance:.0e} "
                          f"(fp32); the exported files in {str(out)!r} are not faithful")
    return report


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, spec_json: str,
                        opset: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
    with warnings.catch_warnings(), torch.no_grad():
        # torch.jit is deprecated upstream but is still how TorchScript artifacts are produced; the
        # TracerWarning is the clip-length check, which is constant for an exported model.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"input_spec.json": spec_json})
        loaded = torch.jit.load(str(path), map_location="cpu")

    def run(clips: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return loaded(clips)

    return run


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, spec_json: str,
                 opset: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        raise ExportError(f"ONNX export needs onnx, onnxscript and onnxruntime ({exc}); "
                          "install the 'export' extra: pip install 'soccerkd-stream[export]'") from exc
    arg = next(iter(_forward_arg_names(model)), "x")
    inline = sum(p.numel() * p.element_size() for p in model.parameters()) < _INLINE_WEIGHTS_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["clips"],
                          output_names=["logits"], dynamic_shapes={arg: {0: torch.export.Dim("batch")}},
                          opset_version=opset, external_data=not inline, verbose=False, report=False)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "input_spec", spec_json
    onnx.save(proto, str(path), save_as_external_data=not inline)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(clips: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: clips.numpy()})[0])

    return run


def _forward_arg_names(model: nn.Module) -> list[str]:
    import inspect

    return [p for p in inspect.signature(model.forward).parameters if p != "self"]
