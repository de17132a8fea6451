"""Reports of experiments: report.md, results.json and PNG plots, read from run directories only."""

from knowlearn.report.report import aggregate, collect, main_table, write_report

__all__ = ["aggregate", "collect", "main_table", "write_report"]
