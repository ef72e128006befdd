"""Fine-tune a released metric model (ZoeD_N, ZoeD_NK, Depth Anything V1 metric or V2 metric) on your own RGB-D
data, given as CSV/JSONL lists.

One command (lists in the format of ``data_pipelines/sources/custom.py``: columns image, depth, depth_scale,
optional focal / valid_mask; relative paths are resolved against the list's folder, or ``root=``)::

  zoejax-train --workdir runs/mine \\
      --config configs/finetune_custom.py:train=/data/mine/train.csv,val=/data/mine/val.csv \\
      --config.init_from=ZoeD_M12_N.pt
  zoejax-train --workdir runs/mine_da2 \\
      --config configs/finetune_custom.py:train=/data/mine/train.csv,val=/data/mine/val.csv,variant=da2 \\
      --config.init_from=depth_anything_v2_metric_hypersim_vitl.pth

The config argument is comma-separated key=value pairs:
  train     training list (required)
  val       evaluation list ("" = no evaluation)
  root      folder the lists' relative paths are resolved against ("" = each list's folder)
  variant   the architecture of the checkpoint you start from: n (default, ZoeD_N) or nk (ZoeD_NK) on BEiT / Swin;
            da1 (Depth Anything V1 metric: ZoeDepth's head on DINOv2) or da2 (Depth Anything V2 metric: sigmoid x
            max_depth) on DINOv2
  backbone  n / nk: beit_l384 (default, the released models), beit_b384, small, tiny; da1 / da2: dinov2_vitl14
            (default), dinov2_vitb14 and dinov2_vits14 (da2), dinov2_tiny (tests)
  domain    0 indoor (default; depth <= 10 m, NK: NYU head, da1: the indoor model, da2: the Hypersim model, 20 m)
            or 1 outdoor (<= 80 m, NK: KITTI head, da1: the outdoor model, da2: the Virtual KITTI 2 model)
  size      H:W crop/pad of the frames when they vary in size (e.g. 480:640; default: as stored)

``init_from`` (required) is an official checkpoint of that architecture (``ZoeD_M12_N.pt``, ``ZoeD_M12_NK.pt``,
``depth_anything_metric_depth_{indoor,outdoor}.pt``, ``depth_anything_v2_metric_{hypersim,vkitti}_vit?.pth``), a
folder written by ``zoejax-convert``, or an earlier work directory. The recipe is the model's official one
(``configs/zoedepth_*.py``, ``configs/depth_anything_metric_n.py``, ``configs/depth_anything_v2_metric_*.py``: its
input size, optimizer groups, schedule, loss and, for da2, its cover-crop) at a tenth of the learning rate, 2000
steps at batch 16, evaluation every 250 steps keeping the best checkpoint by abs_rel. That rule (lr / 10, 2000
steps) is zoejax's choice for continuing a released model; neither upstream publishes a custom fine-tune recipe.
Override any field with ``--config.<field>=<value>`` (e.g. ``--config.num_train_steps=5000``).

Ranges: training pixels are valid on the domain's range (1e-3..10 m indoor, ..80 m outdoor), except for da2
indoor, whose training range is its model's 20 m (the official loss's bound); evaluation scores the domain's
range (``zoejax-eval``'s custom protocol).
"""

from __future__ import annotations

import ml_collections

from data_pipelines.config import DataConfig, SourceConfig
from zoejax.config_base import base_config, network_input, parse_backbone
from zoejax.models.presets import zoed_n, zoed_nk

KEYS = ("train", "val", "root", "variant", "backbone", "domain", "size")
VARIANTS = ("n", "nk", "da1", "da2")
DEFAULT_BACKBONE = {"n": "beit_l384", "nk": "beit_l384", "da1": "dinov2_vitl14", "da2": "dinov2_vitl14"}
# The official file each variant starts from, by domain (da2: by encoder size too); an override is expected.
DA1_FILES = ("depth_anything_metric_depth_indoor.pt", "depth_anything_metric_depth_outdoor.pt")
DA2_SIZES = {"dinov2_vits14": "vits", "dinov2_vitb14": "vitb", "dinov2_vitl14": "vitl"}
LR_DIVISOR = 10.0  # a tenth of the official learning rate: continuing a released model, not training one


def parse_arg(arg: str | None) -> dict[str, str]:
    fields = {"train": "", "val": "", "root": "", "variant": "n", "backbone": "", "domain": "0", "size": ""}
    for part in (p for p in (arg or "").split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in KEYS:
            raise ValueError(f"configs/finetune_custom.py argument: expected key=value with key in {KEYS}, "
                             f"got {part!r}")
        fields[key] = value.strip()
    if not fields["train"]:
        raise ValueError("configs/finetune_custom.py needs train=<list.csv|jsonl> in its argument, e.g. "
                         "--config configs/finetune_custom.py:train=/data/mine/train.csv,val=/data/mine/val.csv")
    if fields["variant"] not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {fields['variant']!r}")
    if fields["domain"] not in ("0", "1"):
        raise ValueError(f"domain must be 0 (indoor) or 1 (outdoor), got {fields['domain']!r}")
    fields["backbone"] = fields["backbone"] or DEFAULT_BACKBONE[fields["variant"]]
    on_dinov2 = fields["backbone"].startswith("dinov2")
    if on_dinov2 != fields["variant"].startswith("da"):
        raise ValueError(f"variant={fields['variant']} takes a {'DINOv2' if not on_dinov2 else 'BEiT / Swin'} "
                         f"backbone, got backbone={fields['backbone']} (default: "
                         f"{DEFAULT_BACKBONE[fields['variant']]})")
    return fields


def _zoedepth(variant: str, backbone: str) -> ml_collections.ConfigDict:
    """ZoeD_N / ZoeD_NK's official recipe (``configs/zoedepth_{n,nk}.py``) on ``backbone``."""
    nk = variant == "nk"
    model = zoed_nk(backbone) if nk else zoed_n(backbone)
    return base_config(model, network_input(backbone, (384, 512)), lr=2.512e-4 if nk else 1.61e-4,
                       midas_lr_factor=10.0 if nk else 1.0, w_domain=100.0 if nk else 0.0)


def _depth_anything_v1(backbone: str, domain: int) -> ml_collections.ConfigDict:
    """Depth Anything V1 metric's recipe (``configs/depth_anything_metric_n.py``): the indoor or outdoor model."""
    from zoejax.configs.depth_anything_metric_n import recipe
    from zoejax.models.presets import da1_metric_k, da1_metric_n

    model = da1_metric_k(backbone) if domain else da1_metric_n(backbone)
    config = recipe(model, backbone, lr=1.61e-4, num_train_steps=1, eval_every_steps=0)
    config.init_from = DA1_FILES[domain]
    return config


def _depth_anything_v2(backbone: str, domain: int) -> ml_collections.ConfigDict:
    """Depth Anything V2 metric's recipe (``configs/depth_anything_v2_metric_{hypersim,vkitti}.py``)."""
    from zoejax.configs.depth_anything_v2_metric_hypersim import recipe

    dataset = "vkitti" if domain else "hypersim"
    config = recipe(dataset, backbone)
    config.global_batch_size = 16  # as every variant here (the official 32 is 8 GPUs x 4)
    config.init_from = f"depth_anything_v2_metric_{dataset}_{DA2_SIZES.get(backbone, 'vitl')}.pth"
    return config


def get_config(arg: str | None = None):
    f = parse_arg(arg)
    variant, backbone = f["variant"], parse_backbone(f["backbone"])
    size = tuple(int(x) for x in f["size"].split(":")) if f["size"] else None
    domain = int(f["domain"])
    if variant == "da1":
        config = _depth_anything_v1(backbone, domain)
    elif variant == "da2":
        config = _depth_anything_v2(backbone, domain)
    else:
        config = _zoedepth(variant, backbone)
        config.init_from = "ZoeD_M12_NK.pt" if variant == "nk" else "ZoeD_M12_N.pt"  # official names; override
    # The model's training range, where it differs from the domain's (da2 indoor: 20 m).
    max_depth = config.model.head.max_depth if variant == "da2" and not domain else None
    source = SourceConfig("custom", root=f["root"], list_file=f["train"], domain=domain, size=size,
                          max_depth=max_depth)
    # The recipe's resize and augmentation are kept; only its data (synthetic scenes) are replaced.
    data = DataConfig.from_dict(config.data.to_dict()).replace(sources=(source,))
    config.data = ml_collections.ConfigDict(data.to_dict())
    config.optim.lr = config.optim.lr / LR_DIVISOR
    config.num_train_steps = 2000
    config.eval_every_steps = config.checkpoint_every_steps = 250
    if not f["val"]:
        config.eval_every_steps = 0
    config.eval.datasets = "custom" if f["val"] else ""
    config.eval.list_file = f["val"]
    config.eval.data_root = f["root"]
    config.eval.custom_domain = domain
    return config
