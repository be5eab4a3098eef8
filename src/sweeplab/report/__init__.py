"""The answer at a glance: a finished sweep's verdict, table and plots — as Markdown in the MLflow parent run's
description and the optuna-dashboard study note, and as one self-contained report.html (plots inlined as SVG)."""
