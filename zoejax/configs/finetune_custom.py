"""Fine-tune a released ZoeDepth (ZoeD_N or ZoeD_NK) on your own RGB-D data, given as CSV/JSONL lists.

One command (lists in the format of ``data_pipelines/sources/custom.py``: columns image, depth, depth_scale,
optional focal / valid_mask; relative paths are resolved against the list's folder, or ``root=``)::

  zoejax-train --workdir runs/mine \\
      --config configs/finetune_custom.py:train=/data/mine/train.csv,val=/data/mine/val.csv \\
      --config.init_from=ZoeD_M12_N.pt

The config argument is comma-separated key=value pairs:
  train     training list (required)
  val       evaluation list ("" = no evaluation)
  root      folder the lists' relative paths are resolved against ("" = each list's folder)
  variant   n (default) or nk: the architecture of the checkpoint you start from
  backbone  beit_l384 (default, the released models), beit_b384, small, tiny
  domain    0 indoor (default; depth <= 10 m, NK: NYU head) or 1 outdoor (<= 80 m, NK: KITTI head)
  size      H:W crop/pad of the frames when they vary in size (e.g. 480:640; default: as stored)

``init_from`` (required) is an official ``ZoeD_M12_N.pt`` / ``ZoeD_M12_NK.pt``, a folder written by
``zoejax-convert``, or an earlier work directory. The recipe is the official one at a tenth of the learning
rate, 2000 steps at batch 16, evaluation every 250 steps keeping the best checkpoint by abs_rel; override any
field with ``--config.<field>=<value>`` (e.g. ``--config.num_train_steps=5000 --config.global_batch_size=8``).
"""

from data_pipelines.config import DataConfig, SourceConfig
from zoejax.config_base import base_config, network_input, parse_backbone
from zoejax.models.presets import zoed_n, zoed_nk

KEYS = ("train", "val", "root", "variant", "backbone", "domain", "size")


def parse_arg(arg: str | None) -> dict[str, str]:
    fields = {"train": "", "val": "", "root": "", "variant": "n", "backbone": "beit_l384", "domain": "0",
              "size": ""}
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
    if fields["variant"] not in ("n", "nk"):
        raise ValueError(f"variant must be n or nk, got {fields['variant']!r}")
    if fields["domain"] not in ("0", "1"):
        raise ValueError(f"domain must be 0 (indoor) or 1 (outdoor), got {fields['domain']!r}")
    return fields


def get_config(arg: str | None = None):
    f = parse_arg(arg)
    backbone = parse_backbone(f["backbone"])
    size = tuple(int(x) for x in f["size"].split(":")) if f["size"] else None
    domain = int(f["domain"])
    source = SourceConfig("custom", root=f["root"], list_file=f["train"], domain=domain, size=size)
    model = zoed_n(backbone) if f["variant"] == "n" else zoed_nk(backbone)
    nk = f["variant"] == "nk"
    config = base_config(model, network_input(backbone, (384, 512)), lr=(2.512e-4 if nk else 1.61e-4) / 10,
                         midas_lr_factor=10.0 if nk else 1.0, num_train_steps=2000, w_domain=100.0 if nk else 0.0,
                         data=DataConfig(sources=(source,)), eval_every_steps=250 if f["val"] else 0,
                         eval_datasets="custom" if f["val"] else "")
    config.init_from = "ZoeD_M12_NK.pt" if nk else "ZoeD_M12_N.pt"  # the official file name; override it
    config.checkpoint_every_steps = 250
    config.eval.list_file = f["val"]
    config.eval.data_root = f["root"]
    config.eval.custom_domain = domain
    return config
