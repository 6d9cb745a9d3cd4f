"""The package and the CLI work without PyTorch; only ``bci_credit.deep`` needs it (the ``deep`` extra)."""

import subprocess
import sys
import textwrap


def test_package_and_cli_import_without_torch():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None          # make `import torch` fail, as without the extra
        import bci_credit
        from bci_credit.cli import build_parser
        build_parser().parse_args(["train", "--out", "x"])   # the train command is registered
        try:
            import bci_credit.deep
        except ImportError as err:
            assert "deep" in str(err) and "pip install" in str(err), err
        else:
            raise AssertionError("bci_credit.deep imported without torch")
        from bci_credit.cli import main
        rc = main(["train", "--out", "x"])
        assert rc == 2, rc
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout
    assert "needs PyTorch" in res.stderr
