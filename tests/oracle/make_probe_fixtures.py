"""Fixture of tests/test_probes.py from the ORIGINAL speaker probes (run in the s3prl-oracle venv).

    bash tests/oracle/make_probe_fixtures.sh        # installs pandas aside, then runs this

For the same head weights, features and labels it records:
  * ``speaker_linear_utter_libri``: ``Model`` (its linear layer) and ``DownstreamExpert.forward`` (mean of each
    unpadded feature, cross-entropy): logits, loss, per-utterance accuracy records;
  * ``speaker_linear_frame_libri``: its ``DownstreamExpert.forward`` (zero-padded batch, every frame scored,
    padded frames included): logits, loss, per-frame accuracy records;
  both forwards are called on a bare object holding only ``model`` and ``objective``, as the experts set them;
  * ``SpeakerDataset`` (train / dev / test, bucket size 1) on a made-up train-clean-100 table and split lists:
    the utterance ids of each split and ``speaker2idx`` (its seeded 90/10 train/dev draw, its speaker classes).

``dataset.py`` imports pandas, which the oracle venv lacks: the .sh installs it into a separate folder appended
to ``sys.path`` (the venv itself is untouched).
"""

from __future__ import annotations

import os
import sys
import tempfile
import types
from collections import defaultdict

side, out = sys.argv[1], sys.argv[2]
sys.path.append(side)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

torch.manual_seed(0)
from s3prl.downstream.speaker_linear_frame_libri.expert import DownstreamExpert as FrameExpert  # noqa: E402
from s3prl.downstream.speaker_linear_utter_libri.dataset import SpeakerDataset  # noqa: E402
from s3prl.downstream.speaker_linear_utter_libri.expert import DownstreamExpert as UtterExpert  # noqa: E402
from s3prl.downstream.speaker_linear_utter_libri.model import Model  # noqa: E402

D, C = 12, 7
fixture = {}
model = Model(input_dim=D, output_class_num=C)
with torch.no_grad():
    for p in model.parameters():
        p.add_(0.3 * torch.randn_like(p))
fixture["state_dict"] = {k: v.clone() for k, v in model.state_dict().items()}
lengths = [9, 4, 13, 1, 6]
features = [torch.randn(n, D) for n in lengths]
labels = torch.tensor([3, 0, 6, 2, 3])
fixture.update(features=features, labels=labels.clone())
holder = types.SimpleNamespace(model=model, objective=nn.CrossEntropyLoss())
for name, expert, batch in (("utter", UtterExpert, features), ("frame", FrameExpert, features),
                            ("frame_equal", FrameExpert, [f[:4] if len(f) >= 4 else None for f in features])):
    batch = [f for f in batch if f is not None]
    use_labels = labels[[i for i, f in enumerate(features) if len(f) >= 4]] if name == "frame_equal" else labels
    records = defaultdict(list)
    loss = expert.forward(holder, "train", [f.clone() for f in batch], use_labels.clone(), records)
    if name == "utter":
        logits = model(torch.stack([f.mean(dim=0) for f in batch]))
    else:
        logits = model(torch.nn.utils.rnn.pad_sequence(batch, batch_first=True))
    fixture[name] = {"loss": loss.detach(), "logits": logits.detach(), "acc": list(records["acc"]),
                     "lengths": [len(f) for f in batch], "labels": use_labels.clone()}
    print(name, float(loss), len(records["acc"]))

# the split lists: speakers of a made-up train-clean-100 (string-sorted ids; "2" has one utterance only)
utterances = {"103": 6, "1034": 5, "19": 7, "2": 1, "250": 4, "7": 8, "89": 5}
uids = [f"{s}-{100 + k % 2}-{k:04d}" for s, n in utterances.items() for k in range(n)]
train = [u for i, u in enumerate(uids) if i % 4 != 0 and not u.startswith("2-")]
test = [u for i, u in enumerate(uids) if i % 4 == 0 and not u.startswith("2-")]
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "train-clean-100.csv"), "w") as f:
        f.write("file_path,length,label\n")
        for i, u in enumerate(uids):
            s, c, _ = u.split("-")
            f.write(f"train-clean-100/{s}/{c}/{u}.flac,{1000 + 37 * i},x\n")
    with open(os.path.join(tmp, "train_split.txt"), "w") as f:
        f.write("".join(u + "\n" for u in train))
    with open(os.path.join(tmp, "test_split.txt"), "w") as f:
        f.write("".join(u + "\n" for u in test))
    splits = {}
    for split in ("train", "dev", "test"):
        ds = SpeakerDataset(split, 1, libri_root=tmp, split_file=tmp, bucket_file=tmp, train_dev_seed=1337)
        splits[split] = sorted(x[0].split("/")[-1].split(".")[0] for x in ds.X)
        speaker2idx = ds.speaker2idx
fixture["speaker_splits"] = {"uids": uids, "train_list": train, "test_list": test, "result": splits,
                     "speaker2idx": dict(speaker2idx)}
print({k: len(v) for k, v in splits.items()}, speaker2idx)

# phone probes: the three original experts' forward (pad, _match_length, model, cross-entropy) on two batches
from s3prl.downstream.phone_1hidden.model import Model as OneHidden  # noqa: E402
from s3prl.downstream.phone_linear.dataset import PhoneDataset  # noqa: E402
from s3prl.downstream.phone_linear.expert import DownstreamExpert as PhoneExpert  # noqa: E402
from s3prl.downstream.phone_linear.model import Model as PhoneLinear  # noqa: E402
from s3prl.downstream.phone_linear_concat.model import Model as Concat  # noqa: E402

PC = 41
models = {"phone_linear": PhoneLinear(input_dim=D, output_class_num=PC),
          "phone_1hidden": OneHidden(input_dim=D, output_class_num=PC, hidden_size=32, dropout=0.0),
          "phone_linear_concat": Concat(input_dim=D, output_class_num=PC, concat_n_frames=9),
          "phone_linear_concat3": Concat(input_dim=D, output_class_num=PC, concat_n_frames=3)}
batches = {"same_rate": ([10, 7, 12], [10, 8, 11]), "half_rate": ([5, 4, 6], [10, 9, 13])}
phone = {"batches": {}, "models": {}}
for bname, (flens, llens) in batches.items():
    feats = [torch.randn(n, D) for n in flens]
    labs = [torch.randint(0, PC, (n,)) for n in llens]
    phone["batches"][bname] = {"features": feats, "labels": labs}
for mname, m in models.items():
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    m.eval()
    expert = PhoneExpert.__new__(PhoneExpert)
    nn.Module.__init__(expert)
    expert.model, expert.objective = m, nn.CrossEntropyLoss()
    entry = {"state_dict": {k: v.clone() for k, v in m.state_dict().items()}, "results": {}}
    for bname, b in phone["batches"].items():
        records = defaultdict(list)
        loss = expert.forward("train", [f.clone() for f in b["features"]], [y.clone() for y in b["labels"]], records)
        padded = torch.nn.utils.rnn.pad_sequence(b["features"], batch_first=True)
        target = torch.nn.utils.rnn.pad_sequence(b["labels"], batch_first=True, padding_value=-100)
        matched, _ = expert._match_length(padded, target)
        entry["results"][bname] = {"loss": loss.detach(), "logits": m(matched).detach(),
                                   "acc": list(records["acc"]), "sample_wise": list(records["sample_wise_metric"])}
        print(mname, bname, float(loss.detach()))
    phone["models"][mname] = entry
fixture["phone"] = phone

# the phone dataset's splits on a made-up alignment file
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "train-clean-100.csv"), "w") as f:
        f.write("file_path,length,label\n")
        for i, u in enumerate(uids):
            s, c, _ = u.split("-")
            f.write(f"train-clean-100/{s}/{c}/{u}.flac,{1000 + 37 * i},x\n")
    with open(os.path.join(tmp, "converted_aligned_phones.txt"), "w") as f:
        for i, u in enumerate(uids):
            f.write(u + " " + " ".join(str((i * 7 + k) % PC) for k in range(5 + i % 3)) + "\n")
    with open(os.path.join(tmp, "train_split.txt"), "w") as f:
        f.write("".join(u + "\n" for u in uids[:-6]))
    with open(os.path.join(tmp, "test_split.txt"), "w") as f:
        f.write("".join(u + "\n" for u in uids[-6:]))
    phone_splits = {}
    for split in ("train", "dev", "test"):
        ds = PhoneDataset(split, 1, libri_root=tmp, phone_path=tmp, bucket_file=tmp, train_dev_seed=1337)
        phone_splits[split] = {x[0].split("/")[-1].split(".")[0]: ds.Y[x[0].split("/")[-1].split(".")[0]]
                               for x in ds.X}
    alignment = open(os.path.join(tmp, "converted_aligned_phones.txt")).read()
fixture["phone_splits"] = {"uids": uids, "train_list": uids[:-6], "test_list": uids[-6:], "alignment": alignment,
                           "result": phone_splits}
print({k: len(v) for k, v in phone_splits.items()})
torch.save(fixture, out)
