"""Corpus readers for the SUPERB tasks, the legacy probes and small offline stand-ins.

Each reader is a pure function of a corpus folder and a few options that returns
``{"train": [...], "dev": [...], "test": [...]}`` lists of :class:`s3prl.downstream.data.Example`,
in a deterministic order, without decoding audio. A folder that does not have the expected layout
raises :class:`CorpusLayoutError` naming the missing file or folder and showing the layout.

==========================  ==========================================  =====================================
module                      task                                        reader(s)
==========================  ==========================================  =====================================
``speech_commands``         KS: Speech Commands v0.01, 12 classes       ``load``, ``class_weights``
``fluent_commands``         IC: Fluent Speech Commands, 3 slots          ``load``, ``slot_vocabularies``
``voxceleb1``               SID and ASV on VoxCeleb1                    ``load_sid``, ``load_asv``, ``read_trials``
``iemocap``                 ER: IEMOCAP, 4 classes, 5 folds              ``load(root, fold)``
``fsdd``                    digits / speakers (offline stand-in)        ``load(root, task)``
``librispeech_speakers``    SID / ASV on LibriSpeech-style folders       ``load``, ``load_asv``, ``make_trials``
``diarization``             SD: Kaldi data dirs or RTTM (+UEM) folders   ``load``
``librispeech_text``       PR / ASR: LibriSpeech with transcripts       ``load``, ``read_subset``
``snips``                   SF: Audio SNIPS                              ``load``
``common_voice``            OOD-ASR: Common Voice clips + tsv lists      ``load``, ``read_list``
``sbcsae``                  OOD-ASR: SBCSAE clips + tsv lists            ``load``, ``read_list``, ``normalize``
``quesst14``                QbE: QUESST14 lists + scoring ground truth   ``load``, ``ground_truth``, ``write_stdlist``
``voicebank``               SE: VoiceBank-DEMAND noisy / clean pairs     ``load``
``librimix``                SS: Libri2Mix Kaldi-style lists              ``load``
``libri_speaker_probe``     legacy speaker probes: LibriSpeech + lists   ``load``
``libri_phone_probe``       legacy phone probes: frame alignments        ``load``, ``read_alignments``
``s2t_tsv``                 ST: fairseq speech-to-text tsv (+config)     ``load``, ``read_split``, ``read_config``
``vcc2020``                 VC: VCC2020 task 1 speakers + lists          ``load_vcc2020``, ``read_list``
``mosei``                   legacy: CMU-MOSEI segments + label table     ``load``, ``read_labels``
``voxceleb_ge2e``           legacy GE2E: VoxCeleb1+2 speakers + trials   ``load_with_trials``, ``read_trial_lines``
==========================  ==========================================  =====================================
"""

from . import (common_voice, diarization, fluent_commands, fsdd, iemocap, libri_phone_probe, libri_speaker_probe,
               librimix, librispeech_speakers, librispeech_text, mosei, quesst14, s2t_tsv, sbcsae, snips,
               speech_commands, vcc2020, voicebank, voxceleb1, voxceleb_ge2e)
from ._common import CorpusLayoutError

__all__ = ["CorpusLayoutError", "common_voice", "diarization", "fluent_commands", "fsdd", "iemocap",
           "libri_phone_probe", "libri_speaker_probe", "librimix", "librispeech_speakers", "librispeech_text",
           "mosei", "quesst14", "s2t_tsv", "sbcsae", "snips", "speech_commands", "vcc2020", "voicebank",
           "voxceleb1", "voxceleb_ge2e"]
