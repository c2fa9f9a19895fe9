"""Pre-training of the s3prl upstreams (the original ``run_pretrain.py``): ``s3prl pretrain -u METHOD``.

Methods: APC and VQ-APC (``apc.py``), NPC (``npc.py``); Mockingjay, TERA, Audio ALBERT and SpecAugment (``mam.py``,
masked acoustic modelling); DistilHuBERT (``distiller.py``, a student of a frozen teacher).
``methods.py`` says, per method, which features, batches, objective and checkpoint layout it uses;
``config.py`` holds the original's default configurations and reads its files; ``data.py`` lists the audio,
applies the original's length rules and buckets, and caches the features; ``runner.py`` is the command. The
loop is :func:`s3prl.train.train`.
"""
