"""Knowledge distillation: the pure loss (:func:`kd_loss`) and the teacher+student step (:class:`DistillationTask`)."""

from soccerkd.kd.loss import kd_loss, validate_kd_params
from soccerkd.kd.task import DistillationTask

__all__ = ["DistillationTask", "kd_loss", "validate_kd_params"]
