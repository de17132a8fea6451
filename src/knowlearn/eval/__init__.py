"""Measure a trained model: QA (generated and teacher-forced), memorization, the probe, retention, errors."""
