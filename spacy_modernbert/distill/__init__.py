"""Knowledge distillation: a small student pipeline from a trained teacher pipeline and text.

One job per module: `teacher.py` runs the teacher once per text and caches what it says
(silver entities, soft anomaly/textcat scores, token vectors); `hidden.py` is the training-only
component that pulls the student's token vectors toward the teacher's; `student.py` builds the
student from its config (and copies a subset of the teacher's layers into it when the shapes
allow); `loop.py` trains, saves, resumes. The command is `cli/distill.py`; docs/distill.md.
"""


class DistillSettingsError(ValueError):
    """A distillation setting or input is unusable: the message names it and the fix."""
