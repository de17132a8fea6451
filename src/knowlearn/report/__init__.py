"""Reports of experiments: report.md, results.json and PNG plots, read from run directories only."""

from knowlearn.report.aggregate import aggregate
from knowlearn.report.collect import collect
from knowlearn.report.render import main_table
from knowlearn.report.report import write_report

__all__ = ["aggregate", "collect", "main_table", "write_report"]
