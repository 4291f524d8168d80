"""checks.allowlist: the restricted rnnlib a problem set's notebook sees while graded.

For every problem set: each allowed name imports from the restricted package and gives the same values
as the real one; every reference definition not allowed is absent (its import raises ImportError with
a message); nothing in the restricted package reaches, through ``__globals__``, closures, defaults or
class dictionaries, a forbidden definition or the real package; the build is deterministic; and every
rnnlib name a solution notebook's own code (not its hidden tests) imports is allowed.
"""
import ast
import filecmp
import importlib
import json
import re
import subprocess
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from checks import allowlist
from checks.grading import random_rnn_args

ROOT = Path(__file__).resolve().parents[1]
SETS = sorted(allowlist.ALLOWED)
REAL_DIR = allowlist.real_package_dir().resolve()


@contextmanager
def restricted(dest):
    """Import from the restricted package at ``dest`` in this process; the real rnnlib is restored after.
    Yields ``import_module``; what it returned keeps working afterwards (the functions hold their modules)."""
    def ours(name):
        return name == "rnnlib" or name.startswith("rnnlib.")

    saved = {k: v for k, v in sys.modules.items() if ours(k)}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(dest))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module
    finally:
        for k in [k for k in sys.modules if ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
        sys.path.remove(str(dest))
        importlib.invalidate_caches()


class _Built(dict):
    """``{set: dest}``, each set's restricted package built when first asked for."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def __missing__(self, assignment):
        self[assignment] = allowlist.build_student_rnnlib(assignment, self.base / assignment)
        return self[assignment]


@pytest.fixture
def built(tmp_path):
    """``{set: dest}``: the restricted packages a test asks for, built in that test (a few ms each), so that
    a mutation of the builder is run against every test that reads what it builds."""
    return _Built(tmp_path / "restricted")


def split(entry):
    module, _, name = entry.rpartition(".")
    return module, name


# ------------------------------------------------------------------------------------------------
# Values: the allowed names behave as the real ones


def _lstm():
    import torch

    torch.manual_seed(0)
    return torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()


def _state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _layers(rng, num_layers=2, directions=2, D=3, H=4):
    """Random weights ``layers[l][d]`` for a 2-layer bidirectional LSTM of ``_lstm()``'s shape."""
    return [[{"W_ih": rng.standard_normal((4 * H, D if layer == 0 else 2 * H)), "W_hh": rng.standard_normal((4 * H, H)),
              "b_ih": rng.standard_normal(4 * H), "b_hh": rng.standard_normal(4 * H)} for _ in range(directions)]
            for layer in range(num_layers)]


def _to_torch(fn, rng):
    module = _lstm()
    fn(_layers(rng)[1][1], module, 1, True)
    return _state(module)


def _numerical_gradient(fn, rng):
    x = rng.standard_normal((3, 2))
    A = rng.standard_normal((2, 2))
    return fn(lambda: float(np.sum(np.tanh(x @ A)) + np.sum(x ** 3)), x, 1e-5), x


def _split_args(rng):
    from rnnlib import data

    return data.seattle_windows()


# "module.name" -> call(fn, rng) -> value; a constant (not callable) is compared as it is.
VALUE_CASES = {
    "rnnlib.cells.rnn_step_forward": lambda fn, rng: fn(*dict(random_rnn_args(rng)).values()),
    "rnnlib.sequence.rnn_forward": lambda fn, rng: fn(*dict(random_rnn_args(rng, sequence_input=True)).values()),
    "rnnlib.sequence.linear_forward": lambda fn, rng: fn(rng.standard_normal((2, 3, 4)),
                                                         rng.standard_normal((5, 4)), rng.standard_normal(5)),
    "rnnlib.gradcheck.rel_error": lambda fn, rng: fn(rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
    "rnnlib.gradcheck.numerical_gradient": _numerical_gradient,
    "rnnlib.data.seattle_windows": lambda fn, rng: fn(),
    "rnnlib.data.chronological_split": lambda fn, rng: fn(*_split_args(rng)),
    "rnnlib.torch.torch_io.stack_from_torch": lambda fn, rng: fn(_lstm()),
    "rnnlib.torch.torch_io.stack_to_torch": lambda fn, rng: _state(fn(_layers(rng), _lstm())),
    "rnnlib.torch.torch_io.to_torch": _to_torch,
}


def assert_same(got, expected, where):
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == expected.dtype, where
        np.testing.assert_array_equal(got, expected, err_msg=where)
    elif isinstance(expected, (tuple, list)):
        assert type(got).__name__ == type(expected).__name__ and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for k in expected:
            assert_same(got[k], expected[k], f"{where}[{k!r}]")
    else:
        assert got == expected, where


@pytest.mark.parametrize("assignment", SETS)
def test_allowed_names_behave_as_the_real_ones(assignment, built):
    for entry in allowlist.allowed(assignment):
        if entry in allowlist.SUBSTITUTES.get(assignment, {}):
            continue  # test_ps03_numerical_gradient_is_the_five_point_stencil
        module, name = split(entry)
        real = getattr(importlib.import_module(module), name)
        with restricted(built[assignment]) as import_module:
            ours = getattr(import_module(module), name)
        assert ours is not real
        if not callable(real):
            assert ours == real, entry
            continue
        assert entry in VALUE_CASES, f"{entry}: add a value test to VALUE_CASES"
        assert Path(ours.__code__.co_filename).resolve().is_relative_to(built[assignment].resolve())
        for seed in range(2):
            expected = VALUE_CASES[entry](real, np.random.default_rng(seed))
            got = VALUE_CASES[entry](ours, np.random.default_rng(seed))
            assert_same(got, expected, f"{assignment} {entry} seed {seed}")


# ------------------------------------------------------------------------------------------------
# Absence: the reference that is not allowed is not there, and cannot be reached


def forbidden(assignment):
    return allowlist.reference_names() - set(allowlist.allowed(assignment))


@pytest.mark.parametrize("assignment", SETS)
def test_forbidden_reference_is_absent_with_a_message(assignment, built):
    with restricted(built[assignment]) as import_module:
        for entry in sorted(forbidden(assignment)):
            module, name = split(entry)
            mod = import_module(module)
            assert name not in vars(mod), entry
            with pytest.raises(ImportError, match=rf"{re.escape(entry)} is the rnnlib reference.*scores 0"):
                getattr(mod, name)
            with pytest.raises(ImportError, match="scores 0"):
                exec(f"from {module} import {name}", {})
        # names that never existed are plain AttributeErrors (hasattr works)
        assert not hasattr(import_module("rnnlib.cells"), "no_such_name")


def reachable(modules):
    """Every function, class and module reachable from ``modules`` through globals, closures,
    defaults, class dictionaries and module dictionaries (rnnlib objects only are followed)."""
    seen, todo, found = set(), list(modules), []
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            if obj.__name__ == "rnnlib" or obj.__name__.startswith("rnnlib."):
                found.append(obj)
                todo.extend(vars(obj).values())
        elif isinstance(obj, (types.FunctionType, types.MethodType)):
            fn = getattr(obj, "__func__", obj)
            found.append(fn)
            todo.extend(fn.__globals__.values())
            todo.extend(c.cell_contents for c in fn.__closure__ or () if c.cell_contents is not None)
            todo.extend(fn.__defaults__ or ())
            todo.extend((fn.__kwdefaults__ or {}).values())
        elif isinstance(obj, type) and str(getattr(obj, "__module__", "")).startswith("rnnlib"):
            found.append(obj)
            todo.extend(vars(obj).values())
        elif isinstance(obj, (staticmethod, classmethod, property)):
            todo.extend(x for x in (getattr(obj, "__func__", None), getattr(obj, "fget", None)) if x)
        elif isinstance(obj, (dict, list, tuple, set, frozenset)):
            todo.extend(obj.values() if isinstance(obj, dict) else obj)
    return found


@pytest.mark.parametrize("assignment", SETS)
def test_nothing_reaches_a_forbidden_definition_or_the_real_package(assignment, built):
    dest = built[assignment].resolve()
    names = sorted(allowlist.module_files(dest / "rnnlib"))
    with restricted(built[assignment]) as import_module:
        modules = [import_module(n) for n in names]
    bad = forbidden(assignment)
    for obj in reachable(modules):
        if isinstance(obj, types.ModuleType):
            assert Path(obj.__file__).resolve().is_relative_to(dest), obj
            continue
        qual = f"{obj.__module__}.{obj.__qualname__.split('.')[0]}"
        assert qual not in bad, f"{assignment}: {qual} reachable"
        code = getattr(obj, "__code__", None)
        if code is not None and str(obj.__module__).startswith("rnnlib"):
            assert Path(code.co_filename).resolve().is_relative_to(dest), (assignment, qual)


@pytest.mark.parametrize("assignment", ["ps03", "ps04", "ps08"])
def test_importing_everything_never_loads_the_real_package(assignment, built):
    """In a fresh interpreter with the restricted package first on the path (as in the sandbox, but with
    the real one still installed behind it), importing every module loads nothing of the real one."""
    dest = built[assignment]
    names = sorted(allowlist.module_files(dest / "rnnlib"))
    code = (f"import importlib, json, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            f"print(json.dumps(sorted({{m.__file__ for k, m in sys.modules.items()\n"
            f"    if k.split('.')[0] in ('rnnlib', 'checks') and getattr(m, '__file__', None)}})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=dest, env={"PYTHONPATH": str(dest)},
                         capture_output=True, text=True, check=True).stdout
    files = json.loads(out)
    assert files and all(Path(f).resolve().is_relative_to(dest.resolve()) for f in files), files


def test_ps03_numerical_gradient_is_the_five_point_stencil(built):
    """Accurate enough for ps03's visible tests (better than the two-point difference at eps 1e-6), and
    never what ps03's hidden test asks for: at eps 0.01-0.05 it differs from the two-point difference
    by far more than that test's tolerance (rtol 1e-7)."""
    from checks import ps03
    from rnnlib.gradcheck import numerical_gradient as two_point

    with restricted(built["ps03"]) as import_module:
        five_point = import_module("rnnlib.gradcheck").numerical_gradient
    rng = np.random.default_rng(0)
    x, A, c = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    exact = (c * (1 - np.tanh(x @ A) ** 2)) @ A.T + x ** 2
    f = lambda: ps03.probe_function(x, A, c)  # noqa: E731
    x_before = x.copy()
    assert np.max(np.abs(five_point(f, x) - exact)) < 1e-8
    assert np.array_equal(x, x_before)
    for eps in (0.01, 0.05):
        gap = np.abs(five_point(f, x, eps) - two_point(f, x, eps))
        assert np.all(gap > 1e-7 * np.abs(exact) + 1e-9), eps
        assert np.max(np.abs(five_point(f, x, eps) - exact)) < np.max(np.abs(two_point(f, x, eps) - exact))


def test_ps04_and_ps05_graded_modules_are_unreachable(built):
    """The finding-4 cases the kernel-side profiler missed: ps04's scaler and training loop, ps05's
    truncated BPTT."""
    with restricted(built["ps04"]) as import_module:
        data = import_module("rnnlib.data")
        with pytest.raises(ImportError, match="StandardScaler is the rnnlib reference"):
            data.StandardScaler
        train = import_module("rnnlib.train")
        assert not [v for v in vars(train).values() if callable(v) and not isinstance(v, type)
                    and getattr(v, "__module__", "") == "rnnlib.train" and v.__name__ != "__getattr__"]
        with pytest.raises(ImportError, match="iterate_minibatches is the rnnlib reference"):
            from rnnlib.train import iterate_minibatches  # noqa: F401
    with restricted(built["ps05"]) as import_module:
        with pytest.raises(ImportError, match="rnn_backward_truncated is the rnnlib reference"):
            import_module("rnnlib.truncated").rnn_backward_truncated
        with pytest.raises(ImportError, match="rnn_backward is the rnnlib reference"):
            import_module("rnnlib.sequence").rnn_backward
        with pytest.raises(ImportError, match="clip_grad_norm is the rnnlib reference"):
            import_module("rnnlib.optim").clip_grad_norm


def test_build_is_deterministic(tmp_path, built):
    for assignment in ("ps03", "ps08"):
        again = allowlist.build_student_rnnlib(assignment, tmp_path / assignment)
        first = sorted(p.relative_to(built[assignment]) for p in built[assignment].rglob("*.py"))
        second = sorted(p.relative_to(again) for p in again.rglob("*.py"))
        assert first == second
        for rel in first:
            assert filecmp.cmp(built[assignment] / rel, again / rel, shallow=False), rel


def test_a_leaking_allow_list_is_refused(tmp_path, monkeypatch):
    """An allowed function that needs a reference function the set does not allow: the build refuses."""
    monkeypatch.setitem(allowlist.ALLOWED, "psXX", ("rnnlib.sequence.rnn_forward",))
    with pytest.raises(ValueError, match="rnnlib.cells.rnn_step_forward"):
        allowlist.build_student_rnnlib("psXX", tmp_path)


# ------------------------------------------------------------------------------------------------
# The tables against the code and the notebooks


def test_every_reference_name_exists():
    """A rename in rnnlib must be followed here (or the reference would silently stop being watched)."""
    files = allowlist.module_files(REAL_DIR)
    for module, names in allowlist.REFERENCE.items():
        tree = ast.parse(files[module].read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert set(names) <= defined, (module, set(names) - defined)


HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.DOTALL)


def notebook_rnnlib_names(path):
    """``"module.name"`` of every rnnlib name a notebook's own code imports or reads (hidden tests aside)."""
    nb = json.loads(path.read_text())
    source = "\n".join(HIDDEN.sub("", "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code")
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    tree = ast.parse(source)
    modules, names = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rnnlib":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in allowlist.module_files(REAL_DIR):
                    modules[alias.asname or alias.name] = full
                else:
                    names.add(full)
        elif isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "rnnlib" for a in node.names), f"{path}: import rnnlib..."
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            names.add(f"{modules[node.value.id]}.{node.attr}")
    return names


@pytest.mark.parametrize("assignment", SETS)
def test_notebooks_import_only_what_is_allowed(assignment):
    path = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    used = notebook_rnnlib_names(path)
    assert used <= set(allowlist.allowed(assignment)), used - set(allowlist.allowed(assignment))


GOLDEN_PACKAGES = Path(__file__).resolve().parent / "golden" / "restricted_packages.json"


def test_built_packages_are_the_reviewed_ones(built):
    """What each problem set's sandbox can import, file by file, equals the reviewed copy in
    tests/golden/restricted_packages.json: a change of rnnlib or of the allow-lists that changes what
    students can reach shows up as a diff to review. After a deliberate change, write the new copy with
    RESTRICTED_PACKAGES=update and review the diff."""
    import json
    import os

    now = {s: {str(p.relative_to(built[s])): p.read_text() for p in sorted(built[s].rglob("*.py"))} for s in SETS}
    if os.environ.get("RESTRICTED_PACKAGES") == "update":
        GOLDEN_PACKAGES.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    reviewed = json.loads(GOLDEN_PACKAGES.read_text())
    for s in SETS:
        assert sorted(now[s]) == sorted(reviewed[s]), (s, "files differ from the reviewed copy")
        for rel, text in now[s].items():
            if text != reviewed[s][rel]:
                ours, theirs = text.splitlines() + [""], reviewed[s][rel].splitlines() + [""]
                line = next(k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b)
                raise AssertionError(f"{s}/{rel} differs from the reviewed copy from line {line + 1}:\n"
                                     f"now:      {ours[line:line + 3]}\nreviewed: {theirs[line:line + 3]}")


# ------------------------------------------------------------------------------------------------
# The builder on a small package of its own: what rnnlib does not (yet) contain

FAKE = {
    "__init__.py": '"""A small package with what the builder must follow or refuse."""\n',
    "base.py": '''
import os.path

SCALE: float = 2.0
OFFSET = 1.0


def double(x):
    return SCALE * x


def memo(fn):
    fn.memo = True
    return fn


@memo
def shifted(x):
    return x + OFFSET


def joined(a, b):
    return os.path.join(a, b)


def countdown(n):
    return 0 if n == 0 else countdown(n - 1)


def ping(n):
    return 0 if n == 0 else pong(n - 1)


def pong(n):
    return 1 if n == 0 else ping(n - 1)


def secret(x):
    return -x


def leaks(x):
    return secret(x) + hidden(x)


def hidden(x):
    return x
''',
    "sub/__init__.py": '''
from .inner import triple
from .. import base


def shifted_twice(x):
    return base.shifted(base.shifted(x))
''',
    "sub/inner.py": '''
from ..base import double
from . import helpers as h
import rnnlib.base as b


def triple(x):
    return double(x) + h.once(x) + b.countdown(3)
''',
    "sub/helpers.py": "def once(x):\n    return x\n",
    "sub/deep/__init__.py": "from ..helpers import once\nfrom ...base import double\n",
    "sub/deep/leaf.py": "from .. import helpers\n\n\ndef twice(x):\n    return 2 * helpers.once(x)\n",
    ".hidden/ghost.py": "def ghost():\n    pass\n",
    "__pycache__/ghost.py": "def ghost():\n    pass\n",
    "inside.py": '''
import math


def absolute():
    from rnnlib.base import double
    return double(1)


def relative():
    from .base import double
    return double(1)


def package():
    from . import base
    return base.double(1)


def aliased():
    import math, rnnlib.base as b
    return b.double(math.pi)


def harmless():
    import math
    return math.pi
''',
    "alias_use.py": '''
from rnnlib import base


def helper(module):
    return module


def passes_module():
    return helper(base)
''',
    "whole.py": '''
import rnnlib.base


def uses_whole():
    return rnnlib.base.double(1)
''',
    "broken.py": "def f(:\n    pass\n",
}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The builder pointed at the package FAKE (in tmp_path/src/rnnlib), with base.secret as its only
    reference; ``fake(*entries, substitutes=None)`` builds a set "psT" allowed ``entries``."""
    root = tmp_path / "src" / "rnnlib"
    for rel, text in FAKE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text.lstrip())
    monkeypatch.setattr(allowlist, "real_package_dir", lambda: root)
    monkeypatch.setattr(allowlist, "REFERENCE", {"rnnlib.base": ("secret",)})

    def build(*entries, substitutes=None):
        monkeypatch.setitem(allowlist.ALLOWED, "psT", entries)
        monkeypatch.setitem(allowlist.SUBSTITUTES, "psT", substitutes or {})
        return allowlist.build_student_rnnlib("psT", tmp_path / "built")
    return build


def test_the_builder_follows_relative_imports_decorators_and_annotations(fake):
    dest = fake("rnnlib.sub.triple", "rnnlib.sub.shifted_twice", "rnnlib.base.joined", "rnnlib.sub.deep.once",
                "rnnlib.sub.deep.double", "rnnlib.sub.deep.leaf.twice")
    files = sorted(str(p.relative_to(dest / "rnnlib")) for p in (dest / "rnnlib").rglob("*.py"))
    assert files == ["__init__.py", "_restricted.py", "alias_use.py", "base.py", "broken.py", "inside.py",
                     "sub/__init__.py", "sub/deep/__init__.py", "sub/deep/leaf.py", "sub/helpers.py", "sub/inner.py",
                     "whole.py"]
    with restricted(dest) as import_module:
        sub, base, deep = import_module("rnnlib.sub"), import_module("rnnlib.base"), import_module("rnnlib.sub.deep")
        assert sub.triple(2.0) == 6.0 and sub.shifted_twice(1.0) == 3.0
        assert deep.once(4) == 4 and deep.double(4) == 8.0 and import_module("rnnlib.sub.deep.leaf").twice(3) == 6
        assert base.joined("a", "b") == "a/b" and base.shifted.memo
        assert import_module("rnnlib.sub.helpers").once(5) == 5
        with pytest.raises(ImportError, match=r"rnnlib.base.secret is the rnnlib reference, which is not available "
                                              r"while psT is graded: an answer that calls the rnnlib reference "
                                              r"scores 0; write it yourself"):
            base.secret
        with pytest.raises(ImportError, match=r"^rnnlib.base.ping is not available while psT is graded"):
            base.ping
        with pytest.raises(AttributeError, match=r"module 'rnnlib.base' has no attribute 'nothing'"):
            base.nothing
    assert "def f(:" not in (dest / "rnnlib" / "broken.py").read_text()  # a stub


def test_each_definition_is_read_once_recursion_included(fake, monkeypatch):
    read, real = [], allowlist._references

    def once(nodes, module):
        key = (module.name, tuple(id(n) for n in nodes))
        assert key not in read, f"{key} read twice"
        read.append(key)
        return real(nodes, module)

    monkeypatch.setattr(allowlist, "_references", once)
    dest = fake("rnnlib.base.countdown", "rnnlib.base.ping", "rnnlib.sub.triple", "rnnlib.sub.shifted_twice")
    with restricted(dest) as import_module:
        base = import_module("rnnlib.base")
        assert base.countdown(3) == 0 and base.ping(3) == 1 and base.pong(2) == 1


@pytest.mark.parametrize("entry, line", [("absolute", 5), ("relative", 10), ("package", 15), ("aliased", 20)])
def test_an_rnnlib_import_inside_a_definition_is_refused(fake, entry, line):
    with pytest.raises(ValueError, match=rf"^rnnlib.inside: an rnnlib import inside a definition \(line {line}\) "
                                         r"cannot be restricted$"):
        fake(f"rnnlib.inside.{entry}")


def test_other_imports_inside_a_definition_are_kept(fake):
    with restricted(fake("rnnlib.inside.harmless")) as import_module:
        assert import_module("rnnlib.inside").harmless() == np.pi


@pytest.mark.parametrize("entry, message", [
    ("rnnlib.alias_use.passes_module", r"^rnnlib.alias_use: the module rnnlib.base is used other than as `base.name` "
                                       r"\(line 9\); cannot be restricted$"),
    ("rnnlib.whole.uses_whole", r"^rnnlib.whole: `import rnnlib.base` binds the whole package; use "
                                r"`from ... import ...`$"),
    ("rnnlib.nope.f", r"^rnnlib.nope.f: no module rnnlib.nope in rnnlib$"),
    ("rnnlib.base.nothing", r"^rnnlib.base.nothing is not defined in rnnlib$"),
    ("rnnlib.broken.f", r"^rnnlib.broken does not parse: cannot restrict it$"),
    ("rnnlib.base.leaks", r"^psT: the allowed rnnlib definitions need the reference rnnlib.base.secret; allow them "
                          r"explicitly in checks.allowlist.ALLOWED or change the set$"),
])
def test_what_the_builder_cannot_follow_is_refused_with_a_message(fake, entry, message):
    with pytest.raises(ValueError, match=message):
        fake(entry)


def test_a_leak_of_several_references_names_them_all(fake, monkeypatch):
    monkeypatch.setattr(allowlist, "REFERENCE", {"rnnlib.base": ("hidden", "secret")})
    with pytest.raises(ValueError, match=r"need the reference rnnlib.base.hidden, rnnlib.base.secret; allow"):
        fake("rnnlib.base.leaks")


def test_a_substitute_must_define_the_name_it_replaces(fake):
    with pytest.raises(ValueError, match=r"^rnnlib.base: the substitute for double defines triple$"):
        fake("rnnlib.base.double", substitutes={"rnnlib.base.double": "def triple(x):\n    return 3 * x"})
    with pytest.raises(ValueError, match=r"^rnnlib.base: the substitute for double defines \?$"):
        fake("rnnlib.base.double", substitutes={"rnnlib.base.double": "double = 3"})
    dest = fake("rnnlib.base.double", substitutes={"rnnlib.base.double": "def double(x):\n    return OFFSET + x"})
    with restricted(dest) as import_module:
        assert import_module("rnnlib.base").double(2.0) == 3.0


def test_the_real_package_is_found_without_importing_it(monkeypatch):
    assert (allowlist.real_package_dir() / "cells.py").exists()
    monkeypatch.setattr(allowlist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"^the rnnlib package is not installed$"):
        allowlist.real_package_dir()
    monkeypatch.setattr(allowlist.importlib.util, "find_spec",
                        lambda name: types.SimpleNamespace(submodule_search_locations=[]))  # a module, not a package
    with pytest.raises(ImportError, match=r"^the rnnlib package is not installed$"):
        allowlist.real_package_dir()


def test_an_unknown_set_gets_nothing(tmp_path):
    assert allowlist.allowed("ps99") == ()
    with restricted(allowlist.build_student_rnnlib("ps99", tmp_path)) as import_module:
        with pytest.raises(ImportError, match="rnnlib.cells.rnn_step_forward is the rnnlib reference"):
            import_module("rnnlib.cells").rnn_step_forward
