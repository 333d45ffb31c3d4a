"""Smoke test of benchmarks/bench_models.py at a tiny size (the numbers themselves are not asserted)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_models.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_models", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = load_bench().main(["--teacher", "tsm_resnet50", "--frames", "2", "--size", "32", "--batch", "1",
                            "--iters", "1", "--warmup", "0", "--device", "cpu", "--channels-last", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["teacher"]["model"] == "tsm_resnet50" and report["student"]["model"] == "tsm_resnet18"
    assert report["teacher"]["gflops_per_clip"] > report["student"]["gflops_per_clip"] > 0
    assert report["speedup_student_over_teacher"] > 0
    assert "student/teacher speedup" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_models_on_cuda_bf16_match_fp32():
    from soccerkd.models import create_model

    for name in ("tsm_resnet18", "r3d_18"):
        torch.manual_seed(0)
        model = create_model(name, num_classes=4, frames=4).eval().cuda()
        clips = torch.randn(2, 3, 4, 64, 64, device="cuda")
        with torch.no_grad():
            ref = model(clips)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                low = model(clips)
        assert low.shape == (2, 4)
        assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05
