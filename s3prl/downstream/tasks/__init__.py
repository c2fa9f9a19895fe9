"""The task table: each task is a small declarative object (corpus, head, objective, hyper-parameters),
declared in the module of its kind and registered in ``TASKS``.

=====================  =======================================================  ==========================
name                   what                                                     metric (best on dev)
=====================  =======================================================  ==========================
``speech_commands``    KS: Speech Commands v0.01, 12 classes, balanced draws    accuracy (balanced acc.)
``fluent_commands``    IC: Fluent Speech Commands, action+object+location       accuracy (all three right)
``voxceleb1``          SID: VoxCeleb1 identification split, 1,251 speakers      accuracy
``emotion``            ER: IEMOCAP 4 classes, 5 folds by session (averaged)     accuracy
``sv_voxceleb1``       ASV: VoxCeleb1, x-vector + AM-softmax, official trials   EER (every checkpoint)
``fsdd_digits``        FSDD spoken digits (takes 0-4 test)                      accuracy
``fsdd_speakers``      FSDD speaker identification (6 speakers)                 accuracy
``librispeech_sid``    speaker identification on LibriSpeech-style folders      accuracy
``librispeech_asv``    speaker verification on held-out LibriSpeech speakers    EER
``demo_digits``        digits synthesized by ``s3prl demo`` (espeak-ng voices)  accuracy
``diarization``        SD: 2 speakers, Kaldi data dirs or RTTM folder, PIT     DER (lower is better)
``ami_diarization``    SD on the AMI excerpts of ``$S3PRL_DATA/ami_mini``      DER (lower is better)
``ctc_libriphone``     PR: LibriSpeech phonemes (lexicon), frame linear, CTC    PER (lower is better)
``asr``                ASR: LibriSpeech characters, 2-layer BLSTM, CTC         WER % (lower is better)
``ctc_snips``          SF: Audio SNIPS characters + slot markers, BLSTM, CTC   slot-type F1
``ctc_commonvoice``    OOD-ASR: Common Voice characters (task.vocab_file), CTC  WER (lower is better)
``enhancement_stft``   SE: VoiceBank-DEMAND, BLSTM STFT mask (NPSM MSE)         PESQ (+ STOI, SI-SDRi)
``separation_stft``    SS: Libri2Mix Kaldi-style lists, BLSTM masks, PIT        SI-SDRi (+ PESQ, STOI)
``enhancement_stft2``  SE v2 (log1p L1, sigmoid, 256): NOT SUPERB-comparable    PESQ (+ STOI, SI-SDRi)
``separation_stft2``   SS v2 (n_fft 1024, log1p, 256): NOT SUPERB-comparable    SI-SDRi
``ctc_sbcsae``         OOD-ASR: SBCSAE spontaneous English characters, CTC      WER (lower is better)
``quesst14_dtw``       QbE: QUESST14 English, per-layer DTW, training-free      MTWV (evaluate only)
``a2o-vc-vcc2020``     VC: any-to-one (VCC2020 target), Taco2-AR -> 24 kHz mel  MCD dB (lower is better)
``speech_translation``  ST: fairseq S2T tsv, sentencepiece, S2T transformer 3+3  BLEU (sacrebleu, beam 20)
``speaker_linear_utter_libri``  TERA probe: LibriSpeech speakers, linear on mean  accuracy
``speaker_linear_frame_libri``  TERA probe: LibriSpeech speakers, linear per frame  frame accuracy
``phone_linear``       TERA probe: LibriSpeech aligned phones (41), linear       frame accuracy
``phone_1hidden``      TERA probe: the same, one hidden layer (768, ReLU)       frame accuracy
``phone_linear_concat``  TERA probe: the same, linear on 9 concatenated frames  frame accuracy
``mosei``              legacy: CMU-MOSEI sentiment/emotion, linear-mean-linear  accuracy (+ macro F1)
``voxceleb2_ge2e``     legacy: VoxCeleb1+2 verification, GE2E loss, N x M batches  EER on dev trials
=====================  =======================================================  ==========================
"""

from .base import REQUIRED, TASKS, Downstream, Objective, Task, data_root, get, register
# each kind registers its tasks in TASKS, in this (listing) order; qbe is training-free (evaluate only)
from . import utterance, diarization, ctc, separation, qbe
from . import voice_conversion
from . import translation  # ST: needs the `st` extra (sacrebleu, sentencepiece) only when run
from . import probes  # the legacy probes (TERA paper), listed last
from . import legacy  # the original's legacy mosei and voxceleb2_ge2e
from .utterance import (CLASSIFICATION, VERIFICATION, classification_score, utterance_head, verification_score,
                        xvector_amsoftmax, xvector_classifier)

__all__ = ["REQUIRED", "TASKS", "Downstream", "Objective", "Task", "data_root", "get", "register", "utterance",
           "ctc", "diarization", "separation", "qbe", "voice_conversion", "translation", "probes", "legacy",
           "CLASSIFICATION", "VERIFICATION", "classification_score", "utterance_head", "verification_score",
           "xvector_amsoftmax", "xvector_classifier"]
