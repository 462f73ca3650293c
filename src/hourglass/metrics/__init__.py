"""Metrics as pure functions of arrays: PCK for any skeleton, MPII PCKh, LSP PCK@0.2 of the torso, COCO OKS AP/AR."""

from .coco import COCO_STATS, coco_keypoint_eval
from .lsp import LSP_COLUMNS, lsp_pck, lsp_torso_size
from .mpii import (
    PCKH_COLUMNS,
    PROTOCOLS,
    TOTAL_JOINTS,
    mpii_head_size,
    mpii_pckh,
    mpii_pckh_per_joint,
    mpii_pckh_report,
    summarize_pckh,
)
from .pck import PCKResult, bbox_size, keypoint_distances, keypoint_pck_accuracy, pck_from_distances

__all__ = [
    "COCO_STATS",
    "LSP_COLUMNS",
    "PCKH_COLUMNS",
    "PROTOCOLS",
    "TOTAL_JOINTS",
    "PCKResult",
    "bbox_size",
    "coco_keypoint_eval",
    "keypoint_distances",
    "keypoint_pck_accuracy",
    "lsp_pck",
    "lsp_torso_size",
    "mpii_head_size",
    "mpii_pckh",
    "mpii_pckh_per_joint",
    "mpii_pckh_report",
    "pck_from_distances",
    "summarize_pckh",
]
