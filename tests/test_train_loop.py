"""The training loop (s3prl.train.train). fairseq-style normalisation: a model returning (summed loss, sample
size) gets, per update, the gradient of (sum of its micro-batches' summed losses) / (their total sample size);
expected values are computed here with autograd on the whole update at once. And the logged learning rate of an
optimizer that schedules itself."""

import torch
import torch.nn as nn

from s3prl import train as trainer


class SumLoss(nn.Module):
    """Squared error summed over the rows of a batch; returns (sum, number of rows) or their mean."""

    def __init__(self, pair: bool):
        super().__init__()
        self.lin = nn.Linear(3, 1, bias=False)
        self.pair = pair

    def forward(self, batch):
        x, y = batch
        loss = ((self.lin(x).squeeze(-1) - y) ** 2).sum()
        return (loss, x.shape[0]) if self.pair else loss / x.shape[0]


def micro_batches():
    gen = torch.Generator().manual_seed(0)
    sizes = [1, 5, 2, 6]  # uneven: the two forms of normalisation differ
    return [(torch.randn(n, 3, generator=gen), torch.randn(n, generator=gen)) for n in sizes]


def run(model, batches, accumulate, tmp_path):
    cfg = trainer.TrainConfig(total_steps=len(batches) // accumulate, optimizer="SGD", lr=0.1,
                              gradient_accumulate_steps=accumulate, gradient_clipping=1e9, log_step=1,
                              eval_step=1000, save_step=1000, precision="fp32")
    trainer.train(model, {"Model": model}, lambda epoch, start: iter(batches[start:]), lambda split: {}, cfg,
                  tmp_path, eval_splits=(), progress=False)
    return model.lin.weight.detach().clone()


def expected(w0, batches, accumulate, pair):
    """SGD (lr 0.1) by hand: each update's gradient from one autograd call over its micro-batches."""
    w = w0.clone()
    for start in range(0, len(batches), accumulate):
        group = batches[start:start + accumulate]
        w_ = w.clone().requires_grad_(True)
        sums = [((x @ w_.t()).squeeze(-1) - y).pow(2).sum() for x, y in group]
        if pair:
            objective = sum(sums) / sum(x.shape[0] for x, _ in group)
        else:
            objective = sum(s / x.shape[0] for s, (x, _) in zip(sums, group)) / len(group)
        (grad,) = torch.autograd.grad(objective, w_)
        w = w - 0.1 * grad
    return w


def test_summed_losses_are_divided_by_the_updates_total_sample_size(tmp_path):
    torch.manual_seed(1)
    model = SumLoss(pair=True)
    w0 = model.lin.weight.detach().clone()
    batches = micro_batches()
    final = run(model, batches, accumulate=2, tmp_path=tmp_path / "pair")
    torch.testing.assert_close(final, expected(w0, batches, 2, pair=True), rtol=1e-6, atol=1e-7)
    # and it is not the per-micro-batch mean (the sizes are uneven, so the two differ)
    assert not torch.allclose(final, expected(w0, batches, 2, pair=False), rtol=1e-4, atol=1e-6)


def test_mean_losses_are_averaged_over_micro_batches(tmp_path):
    torch.manual_seed(1)
    model = SumLoss(pair=False)
    w0 = model.lin.weight.detach().clone()
    batches = micro_batches()
    final = run(model, batches, accumulate=2, tmp_path=tmp_path / "mean")
    torch.testing.assert_close(final, expected(w0, batches, 2, pair=False), rtol=1e-6, atol=1e-7)


def test_logged_lr_is_the_optimizers_own_schedule(tmp_path):
    """With ``make_optimizer`` giving an optimizer that schedules itself (fairseq's Adam), the loop logs that
    schedule's rate for the next update, not the constant base rate of its LambdaLR."""
    import json

    from s3prl.wav2vec2.train_schedule import FairseqAdam, polynomial_decay

    torch.manual_seed(1)
    model = SumLoss(pair=False)
    rate = polynomial_decay(0.1, 2, 6, 0.0, 1.0)
    cfg = trainer.TrainConfig(total_steps=4, optimizer="Adam", lr=0.1, log_step=1, eval_step=1000, save_step=1000,
                              precision="fp32")
    batches = micro_batches()
    trainer.train(model, {"Model": model}, lambda epoch, start: iter(batches[start:]), lambda split: {}, cfg,
                  tmp_path, eval_splits=(), progress=False,
                  make_optimizer=lambda params: FairseqAdam(params, 0.1, (0.9, 0.98), 1e-8, 0.0, rate))
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    logged = [r["lr"] for r in lines if r.get("split") == "train"]
    assert logged == [rate(step) for step in range(1, 5)]
    assert len(set(logged)) > 1
