"""The rule of the exercise: the model learns from logs + the public catalog only."""
import ast
import os
import subprocess
import sys
from pathlib import Path

from sim_bridge.contract.catalog import write_catalog

from tests.model.conftest import REPO

CONTRACT = "sim_bridge.contract"


def _sim_bridge_imports(path: Path) -> set[str]:
    """Every ``sim_bridge`` module ``path`` imports (``from sim_bridge import x`` counts as ``sim_bridge.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "sim_bridge" else {node.module}
    return {m for m in found if m == "sim_bridge" or m.startswith("sim_bridge.")}


def _inside_contract(module: str) -> bool:
    return module == CONTRACT or module.startswith(CONTRACT + ".")


def test_model_imports_only_the_public_contract():
    files = sorted((REPO / "model").rglob("*.py"))
    assert len(files) >= 6
    for path in files:
        outside = sorted(m for m in _sim_bridge_imports(path) if not _inside_contract(m))
        assert not outside, f"model/{path.name} imports {outside}, outside {CONTRACT}"
        text = path.read_text()
        assert "tracks.npy" not in text and "users.json" not in text, path.name


def test_the_contract_imports_nothing_of_the_hidden_side():
    files = sorted((REPO / "sim_bridge" / "contract").rglob("*.py"))
    assert len(files) >= 5
    for path in files:
        outside = sorted(m for m in _sim_bridge_imports(path) if not _inside_contract(m))
        assert not outside, f"contract/{path.name} imports {outside}"
        assert "tracks.npy" not in path.read_text() and "users.json" not in path.read_text(), path.name


def tiny_yaml(tmp_path: Path) -> Path:
    """configs/train.yaml made tiny: 2 epochs, width 8, one thread."""
    text = (REPO / "configs/train.yaml").read_text()
    for a, b in (("max_epochs: 50", "max_epochs: 2"), ("embedding_dim: 96", "embedding_dim: 8"),
                 ("hidden_dim: 64", "hidden_dim: 8"), ("num_threads: 0", "num_threads: 1")):
        assert a in text
        text = text.replace(a, b)
    (tmp_path / "tiny.yaml").write_text(text)
    return tmp_path / "tiny.yaml"


def test_cli_trains_from_catalog_and_logs_only(catalog, events, tmp_path):
    world = tmp_path / "world"
    world.mkdir()
    write_catalog(catalog, world / "tracks.json")
    events.to_json(world / "logs.json", orient="records", lines=True)
    assert sorted(p.name for p in world.iterdir()) == ["logs.json", "tracks.json"]
    # a tracer that fails the run if any sim_bridge module outside the contract is imported, or a
    # hidden file opened
    guard = (
        "import sys, builtins\n"
        "class G:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('sim_bridge.') and not name.startswith('sim_bridge.contract'):\n"
        "            raise ImportError('hidden module ' + name)\n"
        "sys.meta_path.insert(0, G())\n"
        "_open = builtins.open\n"
        "def op(f, *a, **k):\n"
        "    if str(f).endswith(('tracks.npy', 'users.json')): raise PermissionError(f)\n"
        "    return _open(f, *a, **k)\n"
        "builtins.open = op\n"
        "from model.train import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", guard, "--config", str(tiny_yaml(tmp_path)), "--logs",
           str(world / "logs.json"), "--out", str(out), "--device", "cpu", "--k", "7"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p.name for p in out.iterdir()} >= {"checkpoint.pt", "recommendations.json", "item_embeddings.npy",
                                               "item_ids.npy", "metrics.json"}
    assert "hidden" not in proc.stderr
