"""Hidden tests run in the grader, never in the student's kernel.

A student's kernel runs the student's code, so everything in it can be changed by that code:
``checks.grading``, ``numpy.testing``, ``AssertionError``, IPython's input transformers (which can
rewrite the next cell, hidden tests included), the display hooks that report errors. A hidden test
that runs there can be made to pass. So the grader runs each hidden-test block itself, in its own
process, with the check module imported there; the names the block uses (``rnn_step``, ``a0``...)
become :class:`Remote` proxies. Calling one sends the arguments to the kernel, calls the student's
function there, and brings the result back. Only plain data crosses, in a format that cannot run
code when read (JSON, and arrays as ``np.save`` bytes read with ``allow_pickle=False``); anything
else stays in the kernel and comes back as an opaque handle (calling it, or reading an attribute or
an item, is again a remote request). Inputs are drawn in the grader when the check runs, outputs are
compared in the grader: the student's code controls only what its own functions return.

Nothing the kernel reports about itself counts: it could say anything. That is why the grade does not
depend on watching whether the student's function calls the rnnlib reference (a profiler in the
kernel can be switched off from the kernel). Instead the sandboxed kernel has no reference to call:
its ``rnnlib`` is the restricted package that ``checks.allowlist.build_student_rnnlib`` writes for the
problem set, holding only what the notebook may use (ps03's forward passes, not its backward ones).
"""
import ast
import base64
import builtins
import inspect
import io
import json

import numpy as np


class RemoteError(Exception):
    """The kernel could not answer a request (it raised, died, or timed out)."""


def decode_value(v, handle, error):
    """A value from its JSON form, as :func:`encode` and the kernel's ``enc`` write it: no pickle, no code.

    Both sides use this one function: the grader for what the kernel sends, the kernel for what the grader
    sends (its source is part of :data:`KERNEL_HELPER`, so it may only use ``base64``, ``io`` and ``np``).
    ``handle(v)`` gives the value of a ``{"handle": ...}`` entry; ``error(message)`` is the exception
    raised for anything else that is not a value."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if not isinstance(v, dict) or len(v) not in (1, 3):
        raise error("malformed reply")
    if "handle" in v:
        return handle(v)
    (kind, val), = v.items()
    if kind == "int":
        return int(val)
    if kind == "float":
        return float(val)
    if kind == "complex":
        return complex(float(val[0]), float(val[1]))
    if kind in ("ndarray", "npscalar", "tensor"):
        arr = np.load(io.BytesIO(base64.b64decode(val)), allow_pickle=False)
        if kind == "npscalar":
            return arr[()]
        if kind == "tensor":
            import torch
            return torch.from_numpy(arr)
        return arr
    if kind in ("list", "tuple"):
        items = [decode_value(x, handle, error) for x in val]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {str(k): decode_value(x, handle, error) for k, x in val.items()}
    raise error(f"unknown value kind {kind!r}")


# The kernel side: executed fresh for every request (nothing defined earlier in the kernel is reused).
KERNEL_HELPER = """import base64, io
import numpy as np


""" + inspect.getsource(decode_value) + r'''

def __coursegrade_rpc(user_ns, request):
    import base64, io, json, sys
    import numpy as np

    handles = user_ns.setdefault("__coursegrade_handles__", {})

    def enc(v, depth=0):
        if depth > 20:
            raise ValueError("value nested too deeply")
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (np.ndarray, np.generic)) and getattr(v, "dtype", None) is not None and v.dtype != object:
            buf = io.BytesIO()
            np.save(buf, np.asarray(v), allow_pickle=False)
            key = "ndarray" if isinstance(v, np.ndarray) else "npscalar"
            return {key: base64.b64encode(buf.getvalue()).decode()}
        if isinstance(v, int) and not isinstance(v, bool):
            return {"int": str(int(v))}
        if isinstance(v, float):
            return {"float": float.__repr__(v)}
        if isinstance(v, complex):
            return {"complex": [float.__repr__(v.real), float.__repr__(v.imag)]}
        if type(v).__module__ == "torch" and type(v).__name__ in ("Tensor", "Parameter"):
            buf = io.BytesIO()
            np.save(buf, v.detach().cpu().numpy(), allow_pickle=False)
            return {"tensor": base64.b64encode(buf.getvalue()).decode()}
        if type(v) in (list, tuple):
            return {type(v).__name__: [enc(x, depth + 1) for x in v]}
        if type(v) is dict and all(isinstance(k, str) for k in v):
            return {"dict": {k: enc(x, depth + 1) for k, x in v.items()}}
        hid = str(len(handles))
        handles[hid] = v
        return {"handle": hid, "type": type(v).__name__, "callable": callable(v)}

    def dec(v):
        return decode_value(v, lambda h: handles[h["handle"]], ValueError)

    req = json.loads(request)
    op = req["op"]
    try:
        if op == "get":
            if req["name"] not in user_ns:
                # why, when a cell stopped at the restricted rnnlib (only ever used in a message)
                last = getattr(sys, "last_value", None)
                hint = str(last)[:1000] if type(last).__name__ == "NotAvailable" else ""
                return json.dumps({"status": "missing", "hint": hint})
            value = user_ns[req["name"]]
            return json.dumps({"status": "ok", "value": enc(value)})
        target = handles[req["handle"]]
        if op == "getattr":
            return json.dumps({"status": "ok", "value": enc(getattr(target, req["name"]))})
        if op == "getitem":
            return json.dumps({"status": "ok", "value": enc(target[dec(req["key"])])})
        if op == "list":
            return json.dumps({"status": "ok", "value": enc(list(target))})
        args = [dec(a) for a in req["args"]]
        kwargs = {k: dec(a) for k, a in req["kwargs"].items()}
        result = target(*args, **kwargs)
        return json.dumps({"status": "ok", "value": enc(result), "args": [enc(a) for a in args]})
    except BaseException as exc:  # the student's error, reported to the grader
        return json.dumps({"status": "error", "ename": type(exc).__name__, "evalue": str(exc)[:2000]})
'''


def kernel_code(request):
    """Code for one execute request: defines the helper afresh and returns its answer as the value."""
    return (f"exec({KERNEL_HELPER!r}, __coursegrade_ns := {{}})\n"
            f"__coursegrade_ns['__coursegrade_rpc'](globals(), {json.dumps(request)!r})")


# ------------------------------------------------------------------------------------ the grader --

def encode(v, depth=0):
    if depth > 20:
        raise TypeError("value nested too deeply")
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, Remote):
        return {"handle": v._handle}
    if isinstance(v, (np.ndarray, np.generic)):
        buf = io.BytesIO()
        np.save(buf, np.asarray(v), allow_pickle=False)
        return {("ndarray" if isinstance(v, np.ndarray) else "npscalar"): base64.b64encode(buf.getvalue()).decode()}
    if isinstance(v, int) and not isinstance(v, bool):
        return {"int": str(int(v))}
    if isinstance(v, float):
        return {"float": float.__repr__(v)}
    if type(v).__module__ == "torch" and type(v).__name__ in ("Tensor", "Parameter"):
        buf = io.BytesIO()
        np.save(buf, v.detach().cpu().numpy(), allow_pickle=False)
        return {"tensor": base64.b64encode(buf.getvalue()).decode()}
    if isinstance(v, (list, tuple)):
        return {("tuple" if isinstance(v, tuple) else "list"): [encode(x, depth + 1) for x in v]}
    if isinstance(v, dict):
        return {"dict": {str(k): encode(x, depth + 1) for k, x in v.items()}}
    raise TypeError(f"cannot send a {type(v).__name__} to the student's kernel")


def decode(v, client):
    """Safe decoding of what the kernel sent (:func:`decode_value`); its handles become :class:`Remote` proxies."""
    def remote(h):
        return Remote(client, handle=str(h["handle"]), type_name=str(h.get("type")), is_callable=bool(h.get("callable")))

    return decode_value(v, remote, lambda message: RemoteError(f"{message} from the kernel"))


def _write_back(original, updated):
    """Functions may update their arguments in place (an optimiser step): copy the kernel's result back."""
    if isinstance(original, np.ndarray) and isinstance(updated, np.ndarray):
        if original.shape == updated.shape and original.flags.writeable:
            try:
                np.copyto(original, updated, casting="unsafe")
            except (TypeError, ValueError):
                pass
    elif isinstance(original, dict) and isinstance(updated, dict):
        for k in list(original):
            if k in updated:
                if isinstance(original[k], (np.ndarray, dict, list)):
                    _write_back(original[k], updated[k])
                else:
                    original[k] = updated[k]
    elif isinstance(original, list) and isinstance(updated, (list, tuple)) and len(original) == len(updated):
        for i, (o, u) in enumerate(zip(original, updated)):
            if isinstance(o, (np.ndarray, dict, list)):
                _write_back(o, u)
            else:
                original[i] = u


class Remote:
    """A value that lives in the student's kernel (a function, or an object the grader cannot copy)."""

    def __init__(self, client, handle, type_name, is_callable):
        self._client, self._handle, self._type, self._callable = client, handle, type_name, is_callable

    def __repr__(self):
        return f"<student's {self._type}>"

    def __call__(self, *args, **kwargs):
        if not self._callable:
            raise TypeError(f"'{self._type}' object is not callable")
        reply = self._client.request({"op": "call", "handle": self._handle, "args": [encode(a) for a in args],
                                      "kwargs": {k: encode(a) for k, a in kwargs.items()}})
        for original, updated in zip(args, reply.get("args", [])):
            _write_back(original, decode(updated, self._client))
        return decode(reply["value"], self._client)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return decode(self._client.request({"op": "getattr", "handle": self._handle, "name": name})["value"],
                      self._client)

    def __getitem__(self, key):
        return decode(self._client.request({"op": "getitem", "handle": self._handle, "key": encode(key)})["value"],
                      self._client)

    def __iter__(self):
        return iter(decode(self._client.request({"op": "list", "handle": self._handle})["value"], self._client))

    def __len__(self):
        return len(list(iter(self)))


class _IPythonStub:
    """What ``get_ipython()`` gives a hidden-test block run in the grader (``%xmode`` does nothing)."""

    def run_line_magic(self, *args, **kwargs):
        return None

    def magic(self, *args, **kwargs):
        return None


def free_names(source):
    """Names a block reads without defining them (the student's functions and values)."""
    tree = ast.parse(source)
    assigned, loaded = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.append(node.id)
            else:
                assigned.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                assigned.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            assigned.add(node.name)
        elif isinstance(node, ast.arg):
            assigned.add(node.arg)
    seen, names = set(), []
    for n in loaded:
        if n not in assigned and n not in seen and not hasattr(builtins, n) and n != "get_ipython":
            seen.add(n)
            names.append(n)
    return names


def run_hidden_block(source, client, filename="<hidden tests>"):
    """Run a hidden-test block in this (the grader's) process, its free names fetched from the kernel.
    Raises what the block raises (an ``AssertionError``/``GradingError`` when the check fails)."""
    namespace = {"__name__": "__hidden_tests__", "get_ipython": _IPythonStub}
    namespace["get_ipython"] = lambda: _IPythonStub()
    for name in free_names(source):
        reply = client.request({"op": "get", "name": name})
        if reply.get("status") == "missing":
            hint = reply.get("hint")
            if hint and isinstance(hint, str):  # a cell stopped at the restricted rnnlib's NotAvailable
                from checks.allowlist import reference_in_message
                from checks.grading import GradingError

                why = f"name {name!r} is not defined (an earlier cell stopped: {hint[:1000]})"
                if reference_in_message(hint):
                    raise GradingError(f"{name} calls the rnnlib reference ({reference_in_message(hint)}) instead "
                                       f"of computing the answer itself: this part scores 0; {why}")
                raise NameError(why)
            continue  # the block raises NameError, as it would in the kernel
        namespace[name] = decode(reply["value"], client)
    exec(compile(source, filename, "exec"), namespace)
