"""Depth Anything V1 metric NK: ZoeD_NK's routed heads (nyu <= 10 m, kitti <= 80 m) on DINOv2-L/14 + the Depth
Anything DPT head; network input 392x518. No checkpoint of it was released.

Official recipe (LiheYoung/Depth-Anything@1d03336, metric_depth ``config_zoedepth_nk.json``): ZoeD_NK's (lr
2.512e-4, domain loss weight 100, batch 16) with the learning-rate factors 50 / 50 / 50 for the decoder
(``core/depth_head``), the encoder and its ``pos_embed``, and 10 epochs of 3032 NK steps (ZoeDepth's: 5),
validation every quarter epoch on the indoor set. Start the core from ``depth_anything_vitl14.pth`` with
``--config.init_from`` (see ``depth_anything_metric_n.py``). The default data mix synthetic rooms and streets.
"""

from zoejax.config_base import parse_backbone
from zoejax.configs.depth_anything_metric_n import recipe
from zoejax.models.presets import da1_metric_nk


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg or "dinov2_vitl14")
    return recipe(da1_metric_nk(backbone), backbone, lr=2.512e-4, num_train_steps=30320, eval_every_steps=758,
                  nk=True, w_domain=100.0)
