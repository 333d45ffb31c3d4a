"""The demo renders its match with the generator version its student was trained on."""

from __future__ import annotations

from soccerkd.compact import compact_checkpoint
from soccerkd.models import create_model
from soccerkd.spec import ClipSpec, InputSpec
from soccerkd.train.checkpoint import load_checkpoint, save_checkpoint, synth_version
from stream.dev.demo import match_version


def _checkpoint(path, **extra):
    spec = InputSpec(clip=ClipSpec(num_frames=2, frame_stride=1), size=16, resize=18)
    model = create_model("tsm_resnet18", num_classes=4, frames=2, input_spec=spec, width=8)
    return save_checkpoint(path, model_state=model.state_dict(), model_name="tsm_resnet18", model_kwargs={"width": 8},
                           input_spec=spec.to_dict(), class_names=list(spec.class_names), run="kd", **extra)


def test_the_match_takes_the_students_generator_version_through_compaction(tmp_path):
    full = _checkpoint(tmp_path / "best.pt", synth={"version": 3, "width": 64, "height": 48, "source": "match"})
    compact = save_checkpoint(tmp_path / "int8.pt", **compact_checkpoint(load_checkpoint(full)))
    assert synth_version(load_checkpoint(compact)) == 3
    lines: list[str] = []
    assert match_version(compact, log=lines.append) == 3
    assert lines == []


def test_a_student_without_a_generator_record_gets_v2_and_the_demo_says_so(tmp_path):
    old = _checkpoint(tmp_path / "old.pt")
    lines: list[str] = []
    assert match_version(old, log=lines.append) == 2
    assert len(lines) == 1 and "records no generator version" in lines[0] and "v2" in lines[0]
