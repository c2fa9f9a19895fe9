"""Fixtures for tests/test_translation.py from the ORIGINAL speech_translation expert (s3prl 0.4.18) running on
fairseq 0.12.2 (development aid: needs both oracles; nothing here is imported by the project).

    cp -r ~/.cache/s3prl-oracle/venv/lib/python3.11/site-packages/s3prl /tmp/st_oracle/
    printf 'class DummyDataset:\\n    pass\\n' > /tmp/st_oracle/s3prl/downstream/speech_translation/dataset.py
    ~/.cache/fairseq-oracle/venv/bin/python -m pip install --target /tmp/st_site sentencepiece editdistance
    PYTHONPATH=/tmp/st_oracle:/tmp/st_site ~/.cache/fairseq-oracle/venv/bin/python \\
        tests/oracle/make_translation_fixtures.py tests/fixtures/translation_oracle.pt

(The 0.4.18 wheel lacks ``speech_translation/dataset.py``, whose ``DummyDataset`` only feeds the original's data
loaders: the one-line stand-in above lets ``expert.py`` import; nothing it defines is used here.)

The expert is built from the original config (3 + 3 layers, label smoothing 0.1, ASR multitask weight 0.3,
sentencepiece ``char`` models made with the original's ``prepare_gen_fairseq_vocab.py`` settings) with small
widths so the weights fit in a fixture. Its seeded random weights are perturbed and saved with: the features, the
targets encoded by the original's tokenizer path, the decoder logits, the ST / ASR / total losses of
``DownstreamExpert.forward('dev', ...)`` (eval mode), the beam-search hypotheses of its fairseq
``SequenceGenerator`` (beam 20 as the original, and beam 3) as token ids and as the text the expert writes.
It also records the parameter names and shapes of the full-size original model (the config's default widths).
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from argparse import Namespace
from collections import defaultdict

import torch

torch.set_num_threads(1)
torch.manual_seed(0)

TGT = ["Hallo Welt, wie geht es dir?", "Das ist ein kleiner Test.", "Guten Morgen!", "Wir sehen uns morgen.",
       "Ein Haus am See."]
SRC = ["hello world how are you", "this is a small test", "good morning", "see you tomorrow", "a house by the lake"]
INPUT_DIM = 12
STEPS, LR = int(os.environ.get("STEPS", 50)), float(os.environ.get("LR", 3e-3))
SMALL = dict(encoder_embed_dim=16, encoder_ffn_embed_dim=24, encoder_attention_heads=2, decoder_attention_heads=2,
             conv_channels=20)


def write_data(root: str) -> None:
    import sentencepiece as sp

    with open(f"{root}/dev.tsv", "w") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
        w.writerow(["id", "audio", "n_frames", "sr", "src_text", "tgt_text"])
        for i, (s, t) in enumerate(zip(SRC, TGT)):
            w.writerow([f"utt{i}", f"utt{i}.wav", 16000, 16000, s, t])
    for key, lines in (("tgt_text", TGT), ("src_text", SRC)):
        with open(f"{root}/{key}.txt", "w") as f:
            f.write("\n".join(lines) + "\n")
        # the settings of the original prepare_data/prepare_gen_fairseq_vocab.py
        sp.SentencePieceTrainer.train(input=f"{root}/{key}.txt", model_prefix=f"{root}/spm-{key}", vocab_size=1000,
                                      model_type="char", character_coverage=1.0, unk_id=3, bos_id=0, eos_id=2,
                                      pad_id=1, minloglevel=2)
        proc = sp.SentencePieceProcessor(model_file=f"{root}/spm-{key}.model")
        pieces = [proc.IdToPiece(i) for i in range(proc.GetPieceSize())][4:]
        with open(f"{root}/spm-{key}.txt", "w") as f:
            f.write("".join(f"{p} 1\n" for p in pieces))
    with open(f"{root}/config.yaml", "w") as f:
        f.write(f"bpe_tokenizer:\n  bpe: sentencepiece\n  sentencepiece_model: {root}/spm-tgt_text.model\n"
                f"vocab_filename: spm-tgt_text.txt\naudio_root: {root}\nuse_audio_input: true\n")


def expert_config(root: str, beam: int, small: bool = True) -> dict:
    modelrc = dict(arch="s2t_transformer", max_source_positions=6000, max_target_positions=1024, encoder_layers=3,
                   decoder_layers=3, **(SMALL if small else {}))
    return dict(src_lang="en", tgt_lang="de", post_process="sentencepiece", output_prefix="output", upstream_rate=-1,
                downsample_method="drop", criterionrc=dict(criterion="label_smoothed_cross_entropy",
                                                           label_smoothing=0.1),
                taskrc=dict(data=root, config_yaml="config.yaml", seed=1, use_asr=True),
                asrrc=dict(weight=0.3, vocab_file="spm-src_text.txt",
                           bpe_tokenizer=dict(bpe="sentencepiece", sentencepiece_model="spm-src_text.model"),
                           datarc=dict(key="src_text")),
                datarc=dict(train="dev", dev="dev", test="dev", max_tokens=10000, num_workers=0),
                generatorrc=dict(beam=beam, max_len_a=0, max_len_b=60), modelrc=modelrc)


def main(out: str) -> None:
    from fairseq.data import data_utils
    from s3prl.downstream.speech_translation.expert import DownstreamExpert

    root = tempfile.mkdtemp(prefix="st_oracle_")
    write_data(root)
    full = DownstreamExpert(80, 160, expert_config(root, 20, small=False), root)
    full_shapes = {k: list(v.shape) for k, v in full.state_dict().items()}
    del full

    expert = DownstreamExpert(INPUT_DIM, 160, expert_config(root, 20), root)
    with torch.no_grad():  # every weight perturbed: a dropped or mis-mapped weight changes the outputs
        for p in expert.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    bpe = expert.task.build_bpe(expert.task.args)
    ids = [0, 2, 4]  # rows of dev.tsv used as the batch (the expert reads the ASR targets by these ids)
    targets = [expert.task.tgt_dict.encode_line(bpe.encode(TGT[i]), add_if_not_exist=False, append_eos=True).long()
               for i in ids]
    lengths = [130, 70, 100]  # 33, 18, 25 frames after subsampling: room for the CTC targets
    feats = [torch.randn(n, INPUT_DIM) for n in lengths]
    pad, eos = expert.task.tgt_dict.pad(), expert.task.tgt_dict.eos()
    input_dict = {
        "id": torch.tensor(ids), "utt_id": [f"utt{i}" for i in ids], "nsentences": len(ids),
        "ntokens": sum(len(t) for t in targets),
        "target": data_utils.collate_tokens(targets, pad, eos, left_pad=False),
        "target_lengths": torch.tensor([len(t) for t in targets]),
        "net_input": {"prev_output_tokens": data_utils.collate_tokens(targets, pad, eos, left_pad=False,
                                                                      move_eos_to_beginning=True)},
    }
    # a few updates of the original's own training step (teacher-forced ST + ASR loss) so that the beam search
    # meets peaked, state-dependent distributions and hypotheses of varied lengths, as a trained model gives
    optimizer = torch.optim.Adam(expert.parameters(), lr=LR)
    for _ in range(STEPS):
        expert.train()
        loss = expert.forward("train", [f.clone() for f in feats], dict(input_dict, net_input=dict(
            input_dict["net_input"])), defaultdict(list))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    expert.eval()
    # the expert's own weights (its state also holds the generator's copies of the model: left out)
    weights = {k: v.clone() for k, v in expert.state_dict().items() if not k.startswith("generator.")}
    record = {"state_dict": weights, "features": feats,
              "src_text": [SRC[i] for i in ids], "tgt_text": [TGT[i] for i in ids],
              "target": input_dict["target"].clone(), "prev_output_tokens":
                  input_dict["net_input"]["prev_output_tokens"].clone(), "full_shapes": full_shapes,
              "small": SMALL, "input_dim": INPUT_DIM,
              "tgt_dict": list(expert.task.tgt_dict.symbols), "asr_dict": list(expert.asr_dict.symbols)}
    with torch.no_grad():
        records = defaultdict(list)
        loss = expert.forward("dev", [f.clone() for f in feats], dict(input_dict, net_input=dict(
            input_dict["net_input"])), records)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        enc = expert.model.encoder(src_tokens=padded, src_lengths=torch.tensor(lengths))
        logits = expert.model.decoder(prev_output_tokens=input_dict["net_input"]["prev_output_tokens"],
                                      encoder_out=enc)[0]
        asr_targets = expert._create_asr_input_dict(input_dict, "dev")
    record.update(loss=float(loss), st_loss=records["st_loss"][0], asr_loss=records["asr_loss"][0],
                  hyps=records["hyps"], refs=records["refs"], asr_hyps=records["asr_hyps"],
                  asr_refs=records["asr_refs"], logits=logits, encoder_out=enc["encoder_out"][0].transpose(0, 1),
                  asr_target=asr_targets["target"], asr_target_lengths=asr_targets["target_lengths"])
    sample = {"net_input": {"src_tokens": padded, "src_lengths": torch.tensor(lengths)}}
    for beam in (20, 3):
        gen = expert.task.build_generator([expert.model], Namespace(beam=beam, max_len_a=0, max_len_b=60))
        with torch.no_grad():
            generated = gen.generate([expert.model], sample)
        record[f"beam{beam}"] = [[(float(h["score"]), h["tokens"].tolist()) for h in hyps] for hyps in generated]
    torch.save(record, out)
    print(f"wrote {out}: loss {record['loss']:.6f} (st {record['st_loss']:.4f}, asr {record['asr_loss']:.4f}); "
          f"hyps {record['hyps']}; beam-20 lengths {[len(h[0][1]) for h in record['beam20']]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                                             "translation_oracle.pt"))
