"""Diagrams the chapters draw when the book is built (matplotlib): boxes, arrows, the unrolled RNN
with its gradient path (chapters 1 and 4), the LSTM cell (chapter 7) and the GRU cell (chapter 8).

Only the book uses this module; it is not part of ``rnnlib``. A chapter imports it as ``_figures``
(the book executes each page in this folder).
"""
import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch

COLORS = {"x": "#dbe9f6", "h": "#fde9c8", "y": "#d8f0d8", "c": "#f3d9ee", "gate": "#fff2b3",
          "init": "#eeeeee", "loss": "#f6d5d5"}
GRAD = "tab:red"


def node(ax, x, y, text, color, w=0.76, h=0.56, fontsize=10):
    """A rounded box of size ``w`` x ``h`` centred on ``(x, y)`` with ``text`` in it."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", fc=color, ec="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def op(ax, x, y, text, r=0.22, fontsize=10):
    """A circle on ``(x, y)`` for an element-wise operation (``text``: "×", "+", "tanh", "1−")."""
    ax.add_patch(Circle((x, y), r, fc="white", ec="0.3", zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize if len(text) < 3 else fontsize - 3, zorder=4)


def arrow(ax, x0, y0, x1, y1, label=None, color="0.3", lw=1.4, dx=0.08, dy=0.0, fontsize=8, **kw):
    """An arrow from ``(x0, y0)`` to ``(x1, y1)``, with an optional label beside its middle."""
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color=color, lw=lw, **kw))
    if label:
        ax.text((x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, label, fontsize=fontsize, color=color,
                ha="left", va="center")


def line(ax, xs, ys, color="0.3", lw=1.4):
    """A polyline without an arrow head (a wire that splits or joins)."""
    ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="round")


def unrolled_rnn(ax, T=4, gradients=False):
    """The RNN unrolled over ``T`` steps: inputs x_t, states h_t, outputs y_t, the initial state h_{-1}.

    With ``gradients=True`` the outputs become losses L_t and the backward pass is drawn in red: each
    loss sends g_t into its state, each state sends da_t W_hh to the one before, and the shared
    weights collect one term per step."""
    xs = [2.5 + 1.9 * t for t in range(T)]
    ax.set_xlim(0.4, xs[-1] + 1.3)
    ax.set_ylim(-0.9, 3.5)
    ax.axis("off")
    node(ax, 1.1, 1.4, "$h_{-1}$", COLORS["init"])
    for t, cx in enumerate(xs):
        node(ax, cx, 0, f"$x_{t}$", COLORS["x"])
        node(ax, cx, 1.4, f"$h_{t}$", COLORS["h"])
        node(ax, cx, 2.8, f"$L_{t}$" if gradients else f"$y_{t}$", COLORS["loss"] if gradients else COLORS["y"])
        arrow(ax, cx, 0.33, cx, 1.07, None if gradients else "$W_{ih}$")
        left = xs[t - 1] if t else 1.1
        if gradients:
            arrow(ax, cx - 0.12, 1.73, cx - 0.12, 2.47)                       # forward: h_t -> L_t
            arrow(ax, cx + 0.12, 2.47, cx + 0.12, 1.73, color=GRAD, dx=0.06)   # backward: g_t
            ax.text(cx + 0.2, 2.1, f"$g_{t}$", color=GRAD, fontsize=9, va="center")
            arrow(ax, left + 0.45, 1.5, cx - 0.45, 1.5)                         # forward: h_{t-1} -> h_t
            arrow(ax, cx - 0.45, 1.28, left + 0.45, 1.28, color=GRAD)           # backward: da_t W_hh
            ax.text((left + cx) / 2, 1.02, f"$da_{t} W_{{hh}}$", fontsize=8, color=GRAD, ha="center")
        else:
            arrow(ax, cx, 1.73, cx, 2.47, "$W_{out}$")
            arrow(ax, left + 0.45, 1.4, cx - 0.45, 1.4, color=GRAD)
            ax.text((left + cx) / 2, 1.58, "$W_{hh}$", fontsize=8, color=GRAD, ha="center")
    ax.text(xs[-1] + 0.75, 1.4, "...", fontsize=14, va="center")


def _cell_frame(ax, name_in, name_out, color, x_times, x_plus, label, label_x):
    """The frame shared by the LSTM and GRU diagrams: the cell's box, the state path along its top
    (``name_in`` -> a product at ``x_times`` -> a sum at ``x_plus`` -> ``name_out``, in red) and the
    input ``x_t`` entering from below."""
    ax.set_xlim(-1.6, 11.6)
    ax.set_ylim(-2.2, 6.4)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((0, 0), 10, 5.8, boxstyle="round,pad=0.1", fc="#fafafa", ec="0.6"))
    node(ax, -0.9, 5, name_in, color, w=1.0)
    node(ax, 10.9, 5, name_out, color, w=0.8)
    arrow(ax, -0.35, 5, x_times - 0.22, 5, color=GRAD, lw=2.2)
    arrow(ax, x_times + 0.22, 5, x_plus - 0.22, 5, color=GRAD, lw=2.2)
    arrow(ax, x_plus + 0.22, 5, 10.45, 5, color=GRAD, lw=2.2)
    op(ax, x_times, 5, "×")
    op(ax, x_plus, 5, "+")
    ax.text(label_x, 5.35, label, color=GRAD, fontsize=9)
    node(ax, 1.0, -0.75, "$x_t$", COLORS["x"], h=0.46)
    line(ax, [1.0, 1.0], [-0.47, 0.7])


def lstm_cell(ax):
    """One LSTM step in PyTorch's form: gates i, f, g, o from [x_t, h_{t-1}], the cell path on top."""
    _cell_frame(ax, "$c_{t-1}$", "$c_t$", COLORS["c"], 2.5, 5.0, r"cell path: only $\times f_t$ and $+$", 6.3)
    # inputs: h_{t-1} from the left, x_t from below, joined into one bus under the gates
    node(ax, -0.9, 0.7, "$h_{t-1}$", COLORS["h"], w=1.0)
    line(ax, [-0.35, 7.2], [0.7, 0.7])
    gates = [(2.5, "$f_t$", r"$\sigma$"), (4.0, "$i_t$", r"$\sigma$"), (5.5, "$g_t$", "tanh"), (7.2, "$o_t$", r"$\sigma$")]
    for gx, name, fn in gates:
        arrow(ax, gx, 0.7, gx, 1.62)
        node(ax, gx, 2.0, f"{fn}: {name}", COLORS["gate"], w=1.15, h=0.66, fontsize=9)
    # f -> the product on the cell path; i and g -> their product -> the sum
    arrow(ax, 2.5, 2.38, 2.5, 4.76)
    op(ax, 4.75, 3.5, "×")
    line(ax, [4.0, 4.0, 4.53], [2.38, 3.5, 3.5])
    line(ax, [5.5, 5.5, 4.97], [2.38, 3.5, 3.5])
    arrow(ax, 4.75, 3.72, 4.97, 4.78)
    # read-out: h_t = o_t * tanh(c_t)
    op(ax, 8.7, 3.9, "tanh")
    arrow(ax, 8.7, 5, 8.7, 4.14)
    op(ax, 8.7, 2.0, "×")
    arrow(ax, 8.7, 3.66, 8.7, 2.24)
    arrow(ax, 7.8, 2.0, 8.46, 2.0)
    node(ax, 10.9, 2.0, "$h_t$", COLORS["h"], w=0.8)
    arrow(ax, 8.94, 2.0, 10.45, 2.0)
    ax.text(5.0, -1.8, r"$[i, f, g, o] = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}$, "
            r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$, $h_t = o_t \odot \tanh(c_t)$",
            ha="center", fontsize=9)


def gru_cell(ax):
    """One GRU step in PyTorch's form: r, z from [x_t, h_{t-1}], the candidate n with the reset gate
    applied after the product (b_hn inside it), h_t = (1 - z) n + z h_{t-1} on top."""
    _cell_frame(ax, "$h_{t-1}$", "$h_t$", COLORS["h"], 5.5, 8.0, r"state path: only $\times z_t$ and $+$", 0.3)
    line(ax, [0.4, 0.4, 7.4], [5, 0.7, 0.7])  # h_{t-1} down to the bus under the gates
    gates = [(2.0, "$z_t$", r"$\sigma$"), (3.8, "$r_t$", r"$\sigma$")]
    for gx, name, fn in gates:
        arrow(ax, gx, 0.7, gx, 1.62)
        node(ax, gx, 2.0, f"{fn}: {name}", COLORS["gate"], w=1.15, h=0.66, fontsize=9)
    # z: keeps h_{t-1} (top product) and, through 1 - z, writes the candidate
    line(ax, [2.0, 2.0, 6.38], [2.38, 3.6, 3.6])
    arrow(ax, 5.5, 3.6, 5.5, 4.76)
    op(ax, 6.6, 3.6, "1−", fontsize=9)
    arrow(ax, 6.82, 3.6, 7.76, 3.6)
    op(ax, 8.0, 3.6, "×")
    arrow(ax, 8.0, 3.84, 8.0, 4.76)
    # candidate n_t = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)): the reset gate after the product
    op(ax, 5.6, 2.0, "×")
    arrow(ax, 4.38, 2.0, 5.36, 2.0)
    arrow(ax, 5.6, 0.7, 5.6, 1.76, r"$h_{t-1} W_{hn}^\top + b_{hn}$", dy=-0.2)
    node(ax, 7.4, 2.0, "tanh: $n_t$", COLORS["gate"], w=1.15, h=0.66, fontsize=9)
    arrow(ax, 5.84, 2.0, 6.82, 2.0)
    arrow(ax, 7.4, 0.7, 7.4, 1.62, r"$x_t W_{in}^\top + b_{in}$", dy=-0.2)
    line(ax, [7.4, 7.4, 8.0], [2.38, 2.9, 2.9])
    arrow(ax, 8.0, 2.9, 8.0, 3.36)
    ax.text(5.0, -1.8, r"$[r, z] = \sigma(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh})$ (their rows), "
            r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$", ha="center", fontsize=9)


def figure(width=10, height=4.2):
    """A new figure with one axes for a diagram."""
    return plt.subplots(figsize=(width, height))
