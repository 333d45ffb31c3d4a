"""2,000 structure-aware fuzz cases (benchmarks/fuzz_envelope.py) through the envelope decoder and
the pipeline's intake with the real CPU JPEG decoder: every outcome is "accepted" or a
dead-letter reason, never an uncaught exception."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

pytestmark = pytest.mark.badinput


def test_two_thousand_fuzz_cases_raise_nothing_uncaught():
    from fuzz_envelope import run

    result = run(2000, seed=12345, progress=False)
    assert result["uncaught"] == 0, result["uncaught_cases"][:3]
    reasons = set(result["outcomes"])
    # the mutations reach deep: accepted messages, envelope faults and JPEG faults all occur
    assert {"accepted", "bad_fps", "truncated", "corrupt_frame", "size_mismatch", "limit_exceeded"} <= reasons, reasons
