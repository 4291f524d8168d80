"""What counts as "the rnnlib reference", and what each problem set's notebook may import from rnnlib.

Two tables, used by the whole grading side:

* :data:`REFERENCE`: the reference functions and classes an answer must not call instead of computing
  its answer. :func:`checks.grading.reference_code` watches them when hidden tests run in the same
  process as the student's code (the unsandboxed path: tests, plain ``nbgrader autograde``).
* :data:`ALLOWED`: per problem set, the rnnlib functions, classes and constants its notebook uses (the
  given code and the visible tests; the hidden tests run in the grader, see
  :mod:`coursegrade.remote`). Inside the grading sandbox the real ``rnnlib`` is hidden and
  :func:`build_student_rnnlib` provides a package that holds only these: there is nothing left to
  detect, and nothing the student's code can switch off. ps03 may build caches with the forward passes
  but finds no backward; ps04 reads the Seattle windows but finds no ``StandardScaler``, no
  ``rnnlib.train``; ps05 runs ``rnn_forward`` but finds no ``rnnlib.truncated``.

The restricted package is made from the source: for every allowed definition, its source text (AST)
and, transitively, the module-level definitions and imports it uses (private helpers, constants,
other rnnlib modules' functions). Every other rnnlib module is a stub. Any name of the real module
that is missing raises an ``ImportError`` whose message says why (for the reference: that an answer
calling it scores 0), at ``from rnnlib.cells import rnn_step_backward`` or at attribute access. The
build refuses (``ValueError``) if an allowed definition needs a reference definition not allowed for
that set, or uses rnnlib in a way it cannot follow (an rnnlib import inside a function, a module
object passed around).
"""
import ast
import importlib.util
import pathlib
import re

# What counts as the reference: "module": (names...). A class counts with all its methods. (The in-process
# watch looks at rnnlib.torch modules only once something has imported them: it never imports torch.)
# rnnlib.gradcheck is a utility (ps03 grades numerical_gradient through its probe; ps03's sandbox
# does not have it); rnnlib.data, .jacobian and rnnlib.torch are not answers to any graded cell
# except data.StandardScaler (ps04 grades scaling).
REFERENCE = {
    "rnnlib.cells": ("rnn_step_forward", "rnn_step_backward", "lstm_step_forward", "lstm_step_backward",
                     "gru_step_forward", "gru_step_backward"),
    "rnnlib.sequence": ("rnn_forward", "rnn_backward", "linear_forward", "linear_backward", "lstm_forward",
                        "lstm_backward", "gru_forward", "gru_backward"),
    "rnnlib.fast": ("rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
                    "gru_backward"),
    "rnnlib.stacked": ("stacked_forward", "stacked_backward", "run_forward", "run_backward"),
    "rnnlib.losses": ("mse", "softmax", "softmax_cross_entropy"),
    "rnnlib.optim": ("SGD", "Momentum", "Adam", "clip_grad_norm", "clip_grad_value"),
    "rnnlib.train": ("rnn_regression_forward", "rnn_regression_step", "iterate_minibatches", "fit"),
    "rnnlib.truncated": ("rnn_backward_truncated", "fit_tbptt"),
    "rnnlib.data": ("StandardScaler",),
    "rnnlib.attention": ("masked_softmax", "masked_softmax_backward", "attention_forward", "attention_backward",
                         "additive_attention_forward", "additive_attention_backward"),
    "rnnlib.torch.seq2seq": ("greedy_decode", "beam_search"),
}

# What each problem set's notebook may import: "module.name". Read from the solution notebooks' given
# code and visible tests (their imports). A set not listed here gets an rnnlib with nothing in it.
ALLOWED = {
    "ps01": (),
    "ps02": (),
    "ps03": ("rnnlib.cells.rnn_step_forward", "rnnlib.sequence.rnn_forward", "rnnlib.sequence.linear_forward",
             "rnnlib.gradcheck.rel_error", "rnnlib.gradcheck.numerical_gradient"),  # see SUBSTITUTES
    "ps04": ("rnnlib.data.seattle_windows", "rnnlib.data.chronological_split", "rnnlib.data.SEATTLE_FEATURES"),
    "ps05": ("rnnlib.sequence.rnn_forward", "rnnlib.cells.rnn_step_forward"),
    "ps06": ("rnnlib.gradcheck.rel_error",),
    "ps07": ("rnnlib.gradcheck.rel_error",),
    "ps08": ("rnnlib.torch.torch_io.stack_from_torch", "rnnlib.torch.torch_io.stack_to_torch",
             "rnnlib.torch.torch_io.to_torch"),
    "ps09": (),
    # ps10 (chapter 11, attention): never rnnlib.attention nor rnnlib.torch.seq2seq (graded there);
    # the notebook writes its own GRU step and imports rel_error alone (tests/test_allowlist.py
    # checks the notebook against this list).
    "ps10": ("rnnlib.gradcheck.rel_error",),
}

# Definitions a set gets in a different form. ps03 grades numerical_gradient (the two-point central
# difference) and its visible tests check the backward passes against a numerical gradient: in ps03's
# sandbox rnnlib.gradcheck.numerical_gradient is the five-point stencil, more accurate for those tests
# (error O(eps^4)) and never equal to the two-point difference the hidden test asks for at eps 0.01-0.05
# (an answer that calls it is off by O(eps^2) and fails the comparison in the grader).
SUBSTITUTES = {
    "ps03": {"rnnlib.gradcheck.numerical_gradient": '''
def numerical_gradient(f, x, eps=1e-6):
    """Five-point central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``f`` takes no arguments and reads ``x``, which is perturbed in place one element at a time and
    restored afterwards. (While ps03 is graded this stencil replaces rnnlib's two-point one.)
    """
    if x.dtype != np.float64:
        raise ValueError(f"x: expected dtype float64 for a gradient check, got {x.dtype}")
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        values = []
        for step in (2 * eps, eps, -eps, -2 * eps):
            x[i] = old + step
            values.append(f())
        x[i] = old
        grad[i] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * eps)
    return grad
'''.strip()},
}

STUB_NOTE = "rnnlib, restricted for grading"


def reference_names():
    """Every reference definition as ``"module.name"``."""
    return {f"{module}.{name}" for module, names in REFERENCE.items() for name in names}


def allowed(assignment):
    """The ``"module.name"`` entries problem set ``assignment`` may import (none for an unknown set)."""
    return tuple(ALLOWED.get(assignment, ()))


# ------------------------------------------------------------------------------------------------
# Reading the real package's source (never importing it)


def real_package_dir():
    """The folder of the real ``rnnlib`` package (found without importing it)."""
    spec = importlib.util.find_spec("rnnlib")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the rnnlib package is not installed")
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def module_files(root):
    """``{"rnnlib.cells": path, ...}`` for every module of the package at ``root`` (packages by their
    ``__init__.py``), sorted by name."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if any(p.startswith(".") or p == "__pycache__" for p in parts):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return dict(sorted(files.items()))


class _Module:
    """The top-level definitions and imports of one module, from its source."""

    broken = False

    def __init__(self, name, path, is_package):
        self.name, self.path = name, path
        self.source = path.read_text()
        self.lines = self.source.splitlines()
        self.package = name if is_package else name.rpartition(".")[0]
        try:
            body = ast.parse(self.source).body
        except SyntaxError:  # a module being edited: it can only be a stub (closure() needs it whole)
            body, self.broken = [], True
        self.texts = {}     # id(node) -> source, for substituted definitions
        self.defs = {}      # name -> [node] (functions, classes, assignments), in source order
        self.imports = {}   # bound name -> (import node, alias)
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs.setdefault(node.name, []).append(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for t in ast.walk(target):
                        if isinstance(t, ast.Name):
                            self.defs.setdefault(t.id, []).append(node)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    self.imports[bound] = (node, alias)

    def public_names(self):
        """The module's own public definitions and the rnnlib names it imports (not numpy and such)."""
        def from_rnnlib(bound):
            node, alias = self.imports[bound]
            module = alias.name if isinstance(node, ast.Import) else self.absolute(node)
            return module.split(".")[0] == "rnnlib"

        names = set(self.defs) | {n for n in self.imports if from_rnnlib(n)}
        return sorted(n for n in names if not n.startswith("_"))

    def absolute(self, node):
        """The absolute module name of an ``ImportFrom`` (relative imports resolved)."""
        if not node.level:
            return node.module
        base = self.package.split(".")
        if node.level > 1:
            base = base[:-(node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def rnnlib_binding(self, bound):
        """What an imported name is: ``("module", "rnnlib.cells")``, ``("name", "rnnlib.cells", "x")``,
        or ``None`` for an import from outside rnnlib."""
        node, alias = self.imports[bound]
        if isinstance(node, ast.Import):
            if alias.name.split(".")[0] != "rnnlib":
                return None
            if alias.asname is None:
                raise ValueError(f"{self.name}: `import {alias.name}` binds the whole package; use "
                                 f"`from ... import ...`")
            return ("module", alias.name)
        module = self.absolute(node)
        if module.split(".")[0] != "rnnlib":
            return None
        full = f"{module}.{alias.name}"
        return ("module", full) if _is_module(full) else ("name", module, alias.name)

    def substitute(self, name, source):
        """Replace the definition ``name`` by ``source`` (one top-level definition)."""
        node, = ast.parse(source).body
        if getattr(node, "name", None) != name:
            raise ValueError(f"{self.name}: the substitute for {name} defines {getattr(node, 'name', '?')}")
        original = self.defs[name][0]
        node.lineno_in_module = original.lineno
        self.texts[id(node)] = source
        self.defs[name] = [node]

    def segment(self, node):
        if id(node) in self.texts:
            return self.texts[id(node)]
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(self.lines[start - 1:node.end_lineno])


_MODULE_FILES = {}


def _is_module(name):
    return name in _MODULE_FILES


def _load(name):
    path = _MODULE_FILES[name]
    return _Module(name, path, path.name == "__init__.py")


# ------------------------------------------------------------------------------------------------
# The closure of the allowed definitions


def _references(nodes, module):
    """The names a definition reads (``set``) and its uses of rnnlib module aliases, ``alias.attr``
    (``{(module, attr)}``); refuses rnnlib imports inside it and module aliases used other than as
    ``alias.attr``."""
    names, attrs, alias_uses = set(), set(), []
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)) and sub is not node:
                targets = [module.absolute(sub)] if isinstance(sub, ast.ImportFrom) else [a.name for a in sub.names]
                if any(t.split(".")[0] == "rnnlib" for t in targets):
                    raise ValueError(f"{module.name}: an rnnlib import inside a definition (line "
                                     f"{sub.lineno}) cannot be restricted")
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                names.add(sub.id)
                alias_uses.append(sub)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                attrs.add((sub.value.id, sub.attr, id(sub.value)))
    attr_ids = {i for _, _, i in attrs}
    module_attrs = set()
    for bound, attr, _ in attrs:
        if bound in module.imports and module.rnnlib_binding(bound) and module.rnnlib_binding(bound)[0] == "module":
            module_attrs.add((module.rnnlib_binding(bound)[1], attr))
    for use in alias_uses:
        if use.id in module.imports and id(use) not in attr_ids:
            binding = module.rnnlib_binding(use.id)
            if binding and binding[0] == "module":
                raise ValueError(f"{module.name}: the module {binding[1]} is used other than as "
                                 f"`{use.id}.name` (line {use.lineno}); cannot be restricted")
    return names, module_attrs


def closure(entries, substitutes=None):
    """The module-level definitions the ``"module.name"`` entries need: ``{module: {names}}`` of
    definitions (functions, classes, assignments) and ``{module: {bound names}}`` of imports."""
    _MODULE_FILES.clear()
    _MODULE_FILES.update(module_files(real_package_dir()))
    modules = {}
    defs, imports = {}, {}
    todo = []
    for entry in entries:
        module_name, _, name = entry.rpartition(".")
        if module_name not in _MODULE_FILES:
            raise ValueError(f"{entry}: no module {module_name} in rnnlib")
        todo.append((module_name, name))
    seen = set()
    while todo:
        module_name, name = todo.pop()
        if (module_name, name) in seen:
            continue
        seen.add((module_name, name))
        if module_name not in modules:
            modules[module_name] = _load(module_name)
        module = modules[module_name]
        if module.broken:
            raise ValueError(f"{module_name} does not parse: cannot restrict it")
        if f"{module_name}.{name}" in (substitutes or {}):
            module.substitute(name, substitutes[f"{module_name}.{name}"])
        if name in module.defs:
            defs.setdefault(module_name, set()).add(name)
            names, module_attrs = _references(module.defs[name], module)
            for n in names:
                if n in module.defs or n in module.imports:
                    todo.append((module_name, n))
            for target_module, attr in module_attrs:
                todo.append((target_module, attr))
        elif name in module.imports:
            imports.setdefault(module_name, set()).add(name)
            binding = module.rnnlib_binding(name)  # (refuses `import rnnlib.x` without `as`)
            if binding and binding[0] == "name":
                todo.append((binding[1], binding[2]))
        else:
            raise ValueError(f"{module_name}.{name} is not defined in rnnlib")
    return modules, defs, imports


# ------------------------------------------------------------------------------------------------
# Writing the restricted package

# The message of a reference name that is not there (the restricted package's NotAvailable error);
# checks.grading turns it back into its usual "calls the rnnlib reference" message.
REFERENCE_MESSAGE = ("{module}.{name} is the rnnlib reference, which is not available while {assignment} is "
                     "graded: an answer that calls the rnnlib reference scores 0; write it yourself")
_REFERENCE_PATTERN = re.compile(r"\brnnlib\.[\w.]*?\.?(\w+) is the rnnlib reference, which is not available")


def reference_in_message(text):
    """The reference name a restricted package's ``NotAvailable`` message is about, or ``None``."""
    match = _REFERENCE_PATTERN.search(str(text))
    return match.group(1) if match else None


RESTRICTED_HELPER = '''"""Messages for what this restricted rnnlib leaves out (checks.allowlist, grading side)."""


class NotAvailable(ImportError):
    """An rnnlib name that this problem set does not provide while it is graded."""


def missing(module, name, assignment, reference, available):
    """The error for ``module.name``: ``NotAvailable`` for a name of the real module, else AttributeError."""
    if name in reference:
        return NotAvailable(REFERENCE_MESSAGE.format(module=module, name=name, assignment=assignment))
    if name in available:
        return NotAvailable(f"{module}.{name} is not available while {assignment} is graded (this problem "
                            f"set provides only what its notebook imports from rnnlib)")
    return AttributeError(f"module {module!r} has no attribute {name!r}")
'''


def _getattr_code(assignment, hidden, reference):
    return (f"\n\n_NOT_HERE = {tuple(sorted(hidden))!r}\n"
            f"_REFERENCE = {tuple(sorted(reference))!r}\n\n\n"
            f"def __getattr__(name):\n"
            f"    from rnnlib._restricted import missing\n"
            f"    raise missing(__name__, name, {assignment!r}, _REFERENCE, _NOT_HERE)\n")


def _import_line(module, node, aliases):
    if isinstance(node, ast.ImportFrom):
        new = ast.ImportFrom(module=module.absolute(node), names=aliases, level=0)
    else:
        new = ast.Import(names=aliases)
    return ast.unparse(new)


def _module_text(module, assignment, defs, imports, reference):
    """The source of the restricted copy of ``module``."""
    kept = defs.get(module.name, set())
    kept_imports = imports.get(module.name, set())
    held = ", ".join(sorted(kept)) if kept else "none of its definitions"
    out = [f'"""{STUB_NOTE} ({assignment}): {module.name}, holding {held}."""']
    # imports, in source order, each statement reduced to the names kept
    seen = []
    for bound, (node, alias) in module.imports.items():
        if bound in kept_imports:
            seen.append((node, alias))
    statements = []
    for node, alias in seen:
        if statements and statements[-1][0] is node:
            statements[-1][1].append(alias)
        else:
            statements.append((node, [alias]))
    out += [_import_line(module, node, aliases) for node, aliases in statements]
    # definitions, in source order, each node once
    nodes = sorted({id(n): n for name in kept for n in module.defs[name]}.values(),
                   key=lambda n: getattr(n, "lineno_in_module", n.lineno))
    for node in nodes:
        out.append("\n\n" + module.segment(node))
    hidden = set(module.public_names()) - kept - kept_imports
    out.append(_getattr_code(assignment, hidden, reference.get(module.name, ())))
    return "\n".join(out)


def build_student_rnnlib(assignment, dest):
    """Write ``dest/rnnlib/``: rnnlib as problem set ``assignment``'s notebook may see it while graded.

    It holds the definitions :data:`ALLOWED` lists for the set and what they need, copied from the
    real package's source; every other module of the real package is there as a stub whose names
    raise ``ImportError`` with a message. The same set gives the same bytes. Returns ``dest``.
    Raises ``ValueError`` if an allowed definition needs a reference definition not allowed for the set.
    """
    dest = pathlib.Path(dest)
    entries = allowed(assignment)
    modules, defs, imports = closure(entries, SUBSTITUTES.get(assignment))
    reached = {f"{m}.{n}" for m, names in defs.items() for n in names}
    reached |= {f"{m}.{n}" for m, names in imports.items() for n in names}
    leaked = sorted((reached & reference_names()) - set(entries))
    if leaked:
        raise ValueError(f"{assignment}: the allowed rnnlib definitions need the reference "
                         f"{', '.join(leaked)}; allow them explicitly in checks.allowlist.ALLOWED or "
                         f"change the set")
    root = dest / "rnnlib"
    for name, path in _MODULE_FILES.items():
        rel = pathlib.Path(*name.split(".")[1:])
        target = root / rel / "__init__.py" if path.name == "__init__.py" else (root / rel).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        module = modules.get(name) or _load(name)
        target.write_text(_module_text(module, assignment, defs, imports, REFERENCE) + "\n")
    (root / "_restricted.py").write_text(RESTRICTED_HELPER + f"\n\nREFERENCE_MESSAGE = {REFERENCE_MESSAGE!r}\n")
    return dest
