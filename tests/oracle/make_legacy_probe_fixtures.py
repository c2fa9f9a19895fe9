"""Fixture of tests/test_legacy_probes.py from the ORIGINAL ``mosei`` and ``voxceleb2_ge2e`` (s3prl-oracle venv).

    bash tests/oracle/make_legacy_probe_fixtures.sh     # installs pandas / sox / six aside, then runs this

For the same weights, features and labels it records:
  * ``mosei``: its ``DownstreamExpert.forward`` (pad, connector, ``Model``: mean over the padded batch, linear;
    cross-entropy) for 3 and 7 classes on a padded and an equal-length batch: logits (a forward hook on
    ``model``), loss, the ``acc`` / ``predicted`` / ``original`` records, and the accuracy and macro F1 that its
    ``log_records`` writes to ``log.log``; and the expert's ``__init__`` on a made-up label table for
    ``num_class`` 2, 3, 6, 7: its train / dev / test ``(wav name, label)`` lists;
  * ``voxceleb2_ge2e``: ``GE2E`` on fixed embeddings (loss and the gradients of ``w``, ``b`` and the embeddings);
    its ``DownstreamExpert.forward`` in training mode (N x M utterances: pad, mask, connector, ``Model`` with
    ``Identity`` + ``SAP`` or ``Mean``, unit length, GE2E) and in evaluation mode (pairs: cosine scores), with the
    pooled vectors (a forward hook on ``model``); and its ``utils.EER`` on made-up trial scores.
The experts are built with ``__new__`` and given only the attributes ``forward`` reads (the originals' ``__init__``
needs the whole corpus); ``Tensor.cuda`` is made a no-op for the GE2E forward (it moves the mask with ``.cuda()``).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import types
from collections import defaultdict

side, out = sys.argv[1], sys.argv[2]
sys.path.append(side)
sys.modules.setdefault("pkg_resources", types.ModuleType("pkg_resources"))  # imported, unused, by the GE2E dataset

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

torch.manual_seed(0)
from s3prl.downstream.mosei.expert import DownstreamExpert as MoseiExpert  # noqa: E402
from s3prl.downstream.mosei.model import Model as MoseiModel  # noqa: E402
from s3prl.downstream.voxceleb2_ge2e.expert import DownstreamExpert as GE2EExpert  # noqa: E402
from s3prl.downstream.voxceleb2_ge2e.model import GE2E  # noqa: E402
from s3prl.downstream.voxceleb2_ge2e.model import Model as GE2EModel  # noqa: E402
from s3prl.downstream.voxceleb2_ge2e.utils import EER  # noqa: E402

D, H = 12, 16
fixture = {}


def perturb(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))


def bare(cls):
    expert = cls.__new__(cls)
    nn.Module.__init__(expert)
    return expert


class Logger:
    def add_scalar(self, *args, **kwargs):
        pass


# ---------------- mosei ----------------
mosei = {"heads": {}, "tables": {}}
for classes in (3, 7):
    expert = bare(MoseiExpert)
    expert.connector, expert.model, expert.objective = nn.Linear(D, H), MoseiModel(H, classes), nn.CrossEntropyLoss()
    perturb(expert.connector)
    perturb(expert.model)
    state = {**{f"connector.{k}": v.clone() for k, v in expert.connector.state_dict().items()},
             **{f"model.{k}": v.clone() for k, v in expert.model.state_dict().items()}}
    entry = {"state_dict": state, "batches": {}}
    for bname, lengths in (("padded", [9, 4, 13, 1, 6]), ("equal", [7, 7, 7, 7])):
        feats = [torch.randn(n, D) for n in lengths]
        labels = [torch.tensor(int(y)).long() for y in torch.randint(0, classes, (len(lengths),))]
        captured = []
        hook = expert.model.register_forward_hook(lambda m, i, o: captured.append(o.detach().clone()))
        records = defaultdict(list)
        with tempfile.TemporaryDirectory() as tmp:
            expert.expdir, expert.logging, expert.best = tmp, os.path.join(tmp, "log.log"), defaultdict(lambda: 0)
            expert.train()
            loss = expert.forward("train", [f.clone() for f in feats], [y.clone() for y in labels], records)
            expert.eval()
            expert.log_records("dev", records, Logger(), 0)
            message = open(expert.logging).read()
        hook.remove()
        acc, f1 = map(float, re.search(r": (\S+) \(acc\), (\S+) \(f1\)", message).groups())
        entry["batches"][bname] = {"features": feats, "labels": torch.stack(labels), "logits": captured[0],
                                   "loss": loss.detach(), "acc": list(records["acc"]),
                                   "predicted": list(records["predicted"]), "accuracy": acc, "macro_f1": f1}
        print("mosei", classes, bname, float(loss), acc, f1)
    mosei["heads"][classes] = entry

# label table: row number, file, index, start, end, label2a, label2b, label6, label7, split (split 3: no fold)
rows = [("-3g5yACwYnA", 0, 1, 1, 0, 1, 0), ("-3g5yACwYnA", 1, 0, -1, 2, -3, 1), ("81406", 0, 1, 0, 5, 0, 2),
        ("08d4NTXkSxw", 3, 1, 1, 1, 3, 0), ("08d4NTXkSxw", 4, 0, -1, 4, -2, 3), ("zZ9_x", 12, 1, 1, 3, 2, 1),
        ("81406", 1, 0, -1, 0, -1, 2), ("abc-D", 2, 1, 0, 1, 0, 0)]
csv_text = ",file,index,start,end,label2a,label2b,label6,label7,split\n" + "".join(
    f"{i},{f},{k},{1.5 * i},{1.5 * i + 3.25},{a},{b},{s6},{s7},{sp}\n"
    for i, (f, k, a, b, s6, s7, sp) in enumerate(rows))
with tempfile.TemporaryDirectory() as tmp:
    label_path = os.path.join(tmp, "CMU_MOSEI_Labels.csv")
    with open(label_path, "w", encoding="latin-1") as f:
        f.write(csv_text)
    for num_class in (2, 3, 6, 7):
        expert = MoseiExpert(D, {"datarc": {"label_path": label_path, "num_class": num_class, "data_dir": tmp},
                                 "modelrc": {"input_dim": H}}, tmp)
        mosei["tables"][num_class] = {split: [(name, int(label)) for name, label in getattr(expert, f"{split}_data")]
                                      for split in ("train", "dev", "test")}
mosei["csv"] = csv_text
print("mosei tables", mosei["tables"][7])
fixture["mosei"] = mosei

# ---------------- voxceleb2_ge2e ----------------
ge2e = {"loss": [], "models": {}}
for n, m, w, b in ((4, 3, 7.3, -2.1), (3, 5, 10.0, -5.0), (2, 2, 4.0, 1.0)):
    objective = GE2E(init_w=w, init_b=b)
    emb = torch.nn.functional.normalize(torch.randn(n, m, 8), dim=-1).requires_grad_(True)
    loss = objective(emb)
    loss.backward()
    ge2e["loss"].append({"embeddings": emb.detach().clone(), "w": w, "b": b, "loss": loss.detach(),
                         "grad_w": objective.w.grad.clone(), "grad_b": objective.b.grad.clone(),
                         "grad_embeddings": emb.grad.clone()})
    print("ge2e", n, m, float(loss))

torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the expert moves its mask with .cuda()
M = 3
for agg in ("SAP", "Mean"):
    expert = bare(GE2EExpert)
    expert.connector = nn.Linear(D, H)
    expert.model = GE2EModel(input_dim=H, agg_module=agg, config={"module": "Identity",
                                                                  "hparams": {"num_hidden_layers": 1}})
    expert.objective, expert.score_fn = GE2E(init_w=6.0, init_b=-3.0), nn.CosineSimilarity(dim=-1)
    expert.train_dataset = types.SimpleNamespace(utter_number=M)
    perturb(expert.connector)
    perturb(expert.model)
    state = {**{f"connector.{k}": v.clone() for k, v in expert.connector.state_dict().items()},
             **{f"model.{k}": v.clone() for k, v in expert.model.state_dict().items()},
             **{f"objective.{k}": v.clone() for k, v in expert.objective.state_dict().items()}}
    entry = {"state_dict": state, "batches": {}}
    for bname, lengths in (("padded", [9, 4, 13, 5, 6, 11, 3, 8, 10]), ("equal", [6] * 6)):
        feats = [torch.randn(n, D) for n in lengths]
        captured = []
        hook = expert.model.register_forward_hook(lambda mod, i, o: captured.append(o.detach().clone()))
        expert.train()
        loss = expert.forward([f.clone() for f in feats], [torch.tensor(n) for n in lengths], -1)
        half = len(lengths) // 2  # evaluation: utterance k is paired with utterance half + k
        ylabels = [torch.tensor(int(k % 2)) for k in range(half)]
        records = defaultdict(list)
        expert.eval()
        with torch.no_grad():
            expert.forward([f.clone() for f in feats[:2 * half]], [torch.tensor(n) for n in lengths[:2 * half]],
                           ylabels, records)
        hook.remove()
        entry["batches"][bname] = {"features": feats, "loss": loss.detach(), "pooled": captured[0],
                                   "pooled_eval": captured[1], "scores": list(records["scores"]),
                                   "ylabels": list(records["ylabels"])}
        print("ge2e model", agg, bname, float(loss), records["scores"])
    ge2e["models"][agg] = entry

rng = np.random.RandomState(0)
labels = rng.randint(0, 2, 300)
scores = np.round(rng.randn(300) * 0.3 + 0.4 * labels, 2)  # rounded: ties, as cosine scores of a real list have
eer, threshold = EER(labels, scores)
ge2e["eer"] = {"labels": labels.tolist(), "scores": scores.tolist(), "eer": float(eer), "threshold": float(threshold)}
print("eer", eer)
fixture["ge2e"] = ge2e
torch.save(fixture, out)
