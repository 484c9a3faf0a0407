"""Adversarial training on the embeddings, switched on by one hparam of any run:

    "adversarial": {"method": "fgm", "epsilon": 1.0}
    "adversarial": {"method": "pgd", "epsilon": 1.0, "alpha": 0.3, "steps": 3}

FGM (Miyato et al., 2017): after the usual backward of a batch, add ``r = epsilon * g / ||g||``
to the embedding table (``g``: this batch's gradient of the table; ``||.||`` the L2 norm over
the whole table, so only the rows the batch used move), run forward and backward on the same
batch again (its gradients add to the clean ones), then put the table back. One step costs two
forward/backward passes.

PGD (Madry et al., 2018): ``steps`` ascent steps of size ``alpha`` in the same normalised
direction, each projected back into the L2 ball of radius ``epsilon`` around the clean table;
the gradients of the intermediate steps only steer the next one; the last step's gradients are
added to the clean ones. ``steps + 1`` passes per step.

Keys (every default listed): ``method`` ("fgm" or "pgd", required), ``epsilon`` (1.0),
``alpha`` (0.3, PGD), ``steps`` (3, PGD), ``param`` ("word_embeddings": every trainable
parameter whose name contains it is perturbed, each by its own norm; ERNIE and BERT name their
token embedding so). The Learner calls :meth:`Adversary.before_backward` and
:meth:`Adversary.attack` around each micro-batch's backward; the reported loss is the clean one.
"""
import paddle

__all__ = ["Adversary", "METHODS", "DEFAULTS"]

METHODS = ("fgm", "pgd")
DEFAULTS = {"epsilon": 1.0, "alpha": 0.3, "steps": 3, "param": "word_embeddings"}


def _norm(t):
    return float(paddle.linalg.norm(t.astype("float32")))


class Adversary:
    def __init__(self, model, method, epsilon=1.0, alpha=0.3, steps=3, param="word_embeddings"):
        if method not in METHODS:
            raise ValueError(f"adversarial method must be one of {METHODS}, got {method!r}")
        if not epsilon > 0 or (method == "pgd" and (not alpha > 0 or int(steps) < 1)):
            raise ValueError(f"adversarial: epsilon and alpha must be > 0 and steps >= 1, got "
                             f"epsilon={epsilon!r}, alpha={alpha!r}, steps={steps!r}")
        self.method, self.epsilon, self.alpha, self.steps = method, float(epsilon), float(alpha), int(steps)
        self.params = [(n, p) for n, p in model.named_parameters() if param in n and not p.stop_gradient]
        if not self.params:
            raise ValueError(f"adversarial: no trainable parameter of {type(model).__name__} has {param!r} in its "
                             f"name (set \"param\" to part of the embedding's name)")
        self.model = model
        self._before = None
        self.last_norms = []  # the L2 norm of each perturbation of the last attack (what the tests check)

    @classmethod
    def from_hparams(cls, model, value):
        """An Adversary from the ``adversarial`` hparam (a dict), or None when it is absent/null."""
        if value is None:
            return None
        if not isinstance(value, dict) or "method" not in value:
            raise ValueError(f"hparam 'adversarial' must be a dict with a 'method' ({' or '.join(METHODS)}), "
                             f"got {value!r}")
        unknown = set(value) - set(DEFAULTS) - {"method"}
        if unknown:
            raise ValueError(f"hparam 'adversarial': unknown keys {sorted(unknown)} (known: method, "
                             f"{', '.join(DEFAULTS)})")
        return cls(model, **dict(DEFAULTS, **value))

    def _grads(self):
        return [None if p.grad is None else p.grad.clone() for _, p in self.params]

    def before_backward(self):
        """Remember the embedding gradients accumulated so far (earlier micro-batches), so the
        attack follows this batch's gradient alone."""
        self._before = self._grads()

    def _direction(self, before):
        """This batch's gradient of each perturbed parameter (None where it has none)."""
        out = []
        for (_, p), b in zip(self.params, before):
            g = p.grad
            out.append(None if g is None else (g - b if b is not None else g))
        return out

    @paddle.no_grad()
    def _step(self, dirs, size, clean):
        """Move each parameter by ``size`` along its direction, then (PGD) back into the epsilon ball."""
        norms = []
        for (_, p), g, c in zip(self.params, dirs, clean):
            n = _norm(g) if g is not None else 0.0
            if n == 0.0 or n != n:  # no gradient reached it (or a non-finite one): leave it
                norms.append(0.0)
                continue
            p.add_(g * (size / n))
            delta = p - c
            dn = _norm(delta)
            if dn > self.epsilon:
                p.set_value(c + delta * (self.epsilon / dn))
                dn = self.epsilon
            norms.append(dn)
        return norms

    def attack(self, forward_backward):
        """Perturb, run ``forward_backward()`` (forward, loss and backward of the same batch) on the
        perturbed embeddings, restore them. Call after the clean backward."""
        before = self._before or [None] * len(self.params)
        self._before = None
        clean = [p.detach().clone() for _, p in self.params]
        dirs = self._direction(before)
        try:
            if self.method == "fgm":
                self.last_norms = self._step(dirs, self.epsilon, clean)
                forward_backward()
                return
            all_params = [p for p in self.model.parameters() if not p.stop_gradient]
            clean_grads = [None if p.grad is None else p.grad.clone() for p in all_params]
            for t in range(self.steps):
                self.last_norms = self._step(dirs, self.alpha, clean)
                for p in all_params:  # each ascent step's own gradient
                    p.clear_gradient(set_to_zero=True)
                forward_backward()
                if t < self.steps - 1:
                    dirs = [p.grad for _, p in self.params]
            with paddle.no_grad():  # the last step's gradients on top of the clean ones
                for p, g in zip(all_params, clean_grads):
                    if g is not None and p.grad is not None:
                        p.grad.add_(g)
        finally:
            with paddle.no_grad():
                for (_, p), c in zip(self.params, clean):
                    p.set_value(c)
