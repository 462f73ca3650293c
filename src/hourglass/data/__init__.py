"""Keypoint data: skeletons, heatmap codec, transforms, the datasets of real files (MPII, COCO, LSP) (never imports
models). The figures the project draws itself are :mod:`hourglass.synthetic`'s."""

from hourglass.errors import DataError

from .coco import COCOKeypoints
from .codec import HeatmapCodec, flip_back, flip_keypoints, flip_test
from .dataset import KeypointDataset, Record, check_record, collate, worker_init_fn
from .lsp import LSPDataset, read_lsp_joints
from .mpii import MPIIDataset, load_mpii, load_mpii_h5, load_mpii_json
from .skeletons import (
    AIC_14,
    COCO_17,
    CROWDPOSE_14,
    HALPE_26,
    HALPE_136,
    KNOWN_SKELETONS,
    LSP_14,
    MPII_16,
    Skeleton,
    get_skeleton,
    recognise_skeleton,
    skeleton_spec,
)
from .transforms import (
    Augmentation,
    AugmentParams,
    box_to_center_scale,
    colour_jitter,
    get_affine_matrix,
    mirror_matrix,
    transform_points,
    warp_image,
)

__all__ = [
    "AIC_14",
    "COCO_17",
    "CROWDPOSE_14",
    "HALPE_26",
    "HALPE_136",
    "KNOWN_SKELETONS",
    "LSP_14",
    "MPII_16",
    "AugmentParams",
    "Augmentation",
    "COCOKeypoints",
    "DataError",
    "HeatmapCodec",
    "KeypointDataset",
    "LSPDataset",
    "MPIIDataset",
    "Record",
    "Skeleton",
    "box_to_center_scale",
    "check_record",
    "collate",
    "colour_jitter",
    "flip_back",
    "flip_keypoints",
    "flip_test",
    "get_affine_matrix",
    "get_skeleton",
    "load_mpii",
    "load_mpii_h5",
    "load_mpii_json",
    "mirror_matrix",
    "read_lsp_joints",
    "recognise_skeleton",
    "skeleton_spec",
    "transform_points",
    "warp_image",
    "worker_init_fn",
]
