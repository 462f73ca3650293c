"""Evaluation: score a model on a dataset split (``evaluate``), score MPII prediction files (``mpii_files``)."""
