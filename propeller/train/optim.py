"""Optimisation as the original ERNIE scripts did it: AdamW whose weight decay skips biases and
LayerNorm, linear warm-up then linear decay to 0, global-norm gradient clipping."""
import paddle

# every hparam build_optimizer reads
OPTIMIZER_HPARAMS = frozenset({"learning_rate", "max_steps", "warmup_steps", "warmup_proportion",
                               "max_grad_norm", "weight_decay", "beta1", "beta2", "epsilon"})


def _no_decay(name):
    return name.endswith("bias") or "norm" in name or "layer_norm" in name


def linear_warmup_decay(learning_rate, warmup_steps, total_steps):
    """LR scheduler: 0 -> lr over warmup_steps, then linearly to 0 at total_steps."""
    warmup_steps, total_steps = int(warmup_steps), max(int(total_steps), 1)

    def factor(step):
        if warmup_steps and step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return paddle.optimizer.lr.LambdaDecay(learning_rate, factor)


def build_optimizer(layer, hparams, max_steps):
    """AdamW + scheduler from hparams: learning_rate (5e-5), weight_decay (0.01),
    warmup_proportion (0.1) or warmup_steps, max_grad_norm (1.0; 0 disables clipping)."""
    h = hparams or {}
    get = h.get if hasattr(h, "get") else (lambda k, d=None: getattr(h, k, d))
    lr = float(get("learning_rate", 5e-5))
    total = int(max_steps or get("max_steps", 0) or 0)
    warmup = get("warmup_steps", None)
    if warmup is None:
        warmup = int(float(get("warmup_proportion", 0.1)) * total)
    sched = linear_warmup_decay(lr, warmup, total) if total else None
    names = {p.name: n for n, p in layer.named_parameters()}
    clip_norm = float(get("max_grad_norm", 1.0))
    opt = paddle.optimizer.AdamW(
        learning_rate=sched if sched is not None else lr,
        parameters=layer.parameters(),
        weight_decay=float(get("weight_decay", 0.01)),
        apply_decay_param_fun=lambda pname: not _no_decay(names.get(pname, pname)),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(clip_norm) if clip_norm > 0 else None,
        beta1=float(get("beta1", 0.9)), beta2=float(get("beta2", 0.999)), epsilon=float(get("epsilon", 1e-6)),
    )
    return opt, sched
