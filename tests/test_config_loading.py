"""The CLIs' ``--config`` check: a missing file, a failing ``get_config`` or an unknown override field is one
error line (exit code 2), before absl and ml_collections parse anything."""

import sys

import pytest

from zoejax.cli import info as info_cli
from zoejax.cli import train as train_cli
from zoejax.cli.config_loading import check_config_file, config_argument


def test_config_argument_forms():
    assert config_argument(["--config=a.py:x", "--workdir", "w"]) == "a.py:x"
    assert config_argument(["--config", "b.py", "--config.optim.lr=1"]) == "b.py"
    assert config_argument(["--workdir", "w"]) is None


@pytest.mark.parametrize("argv,message", [
    (["--config", "configs/nope.py"], "config file not found: configs/nope.py"),
    (["--config=configs/zoedepth_n.py:demo"], "config configs/zoedepth_n.py:demo: ValueError: unknown backbone 'demo'"),
    (["--config=configs/zoedepth_n.py:tiny", "--config.optim.lrr=1"],
     "configs/zoedepth_n.py:tiny has no field 'optim.lrr' (did you mean 'optim.lr'?)"),
    (["--config=configs/zoedepth_nk.py:tiny", "--config.optimm.lr", "1"],
     "has no field 'optimm.lr' (did you mean 'optim'?)"),
])
def test_bad_config_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        check_config_file(argv, "zoejax-x")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("zoejax-x: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_good_config_passes(capsys):
    check_config_file(["--config=configs/zoedepth_n.py:tiny", "--config.optim.lr=1e-4", "--config.mesh_shape=(1,1,1)",
                       "--workdir", "w"], "zoejax-x")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("cli,program", [(train_cli, "zoejax-train"), (info_cli, "zoejax-info")])
def test_clis_check_before_parsing_flags(cli, program, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [program, "--config", "configs/missing.py", "--workdir", "w"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"{program}: error: config file not found: configs/missing.py\n"
