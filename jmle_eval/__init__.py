"""jmle-eval: measure LLMs on the Japanese National Medical Licensing Examination as it is graded."""

__version__ = "0.1.0"
