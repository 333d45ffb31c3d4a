"""Export of a tiny TSM ResNet-18 to TorchScript and ONNX: parity < 1e-4, embedded spec, CLI, failures."""

import json

import pytest
import torch

from soccerkd.errors import SoccerKDError
from soccerkd.export import ExportError, export_model
from soccerkd.models import create_model
from soccerkd.spec import ClipSpec, InputSpec

SPEC = InputSpec(clip=ClipSpec(num_frames=2), size=32, resize=36, class_names=("a", "b", "c"))


def tiny():
    torch.manual_seed(0)
    return create_model("tsm_resnet18", num_classes=3, input_spec=SPEC)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    lines = []
    report = export_model(tiny(), SPEC, out, echo=lines.append)
    return report, out, lines


def test_parity_below_1e4_for_both_formats(exported):
    report, out, lines = exported
    assert set(report.max_abs_diff) == {"torchscript", "onnx"}
    assert all(d < 1e-4 for d in report.max_abs_diff.values()) and report.ok
    assert len(lines) == 2 and all("OK" in line for line in lines)
    saved = json.loads((out / "export_report.json").read_text())
    assert saved["ok"] and saved["input_spec"]["class_names"] == ["a", "b", "c"]


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:FutureWarning")
def test_artifacts_run_at_new_batch_sizes_and_carry_the_spec(exported):
    import onnx
    import onnxruntime as ort

    report, out, _ = exported
    model = tiny().eval()
    clips = torch.randn(5, 3, 2, 32, 32)
    with torch.no_grad():
        ref = model(clips)
    extra = {"input_spec.json": ""}
    scripted = torch.jit.load(str(report.artifacts["torchscript"]), _extra_files=extra)
    torch.testing.assert_close(scripted(clips), ref, atol=1e-4, rtol=0)
    assert InputSpec.from_dict(json.loads(extra["input_spec.json"])) == SPEC
    session = ort.InferenceSession(str(report.artifacts["onnx"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["clips"]
    got = session.run(["logits"], {"clips": clips.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), ref, atol=1e-4, rtol=0)
    meta = {p.key: p.value for p in onnx.load(str(report.artifacts["onnx"])).metadata_props}
    assert InputSpec.from_dict(json.loads(meta["input_spec"])) == SPEC


def test_parity_failure_and_bad_format_raise(tmp_path):
    with pytest.raises(ExportError, match="torchscript logits differ from eager by .* > tolerance"):
        export_model(tiny(), SPEC, tmp_path, formats=("torchscript",), tolerance=-1.0, echo=None)
    with pytest.raises(ExportError, match="'tflite'"):
        export_model(tiny(), SPEC, tmp_path, formats=("tflite",))
    assert issubclass(ExportError, SoccerKDError)


def test_export_leaves_the_callers_model_alone(tmp_path):
    model = tiny().train()
    export_model(model, None, tmp_path, formats=("torchscript",), echo=None)
    assert model.training


def test_cli_exports_a_training_checkpoint(tmp_path, capsys):
    checkpoint = pytest.importorskip("soccerkd.train.checkpoint")
    from stream.cli import main

    model = tiny()
    ckpt = checkpoint.save_checkpoint(tmp_path / "ckpt.pt", model_name="tsm_resnet18", model_kwargs={},
                                      model_state=model.state_dict(), input_spec=SPEC.to_dict(), epoch=1)
    rc = main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--format", "torchscript"])
    assert rc == 0
    assert "parity torchscript" in capsys.readouterr().out
    assert (tmp_path / "out" / "model.torchscript.pt").is_file()
    assert main(["export", "--model", "no_such_net", "--out", str(tmp_path / "x")]) == 2
