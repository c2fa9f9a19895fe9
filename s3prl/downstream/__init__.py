"""SUPERB downstream tasks: corpora, heads, metrics, the task table, the feature cache and the runner.

A task is a small declarative object (``tasks.TASKS``): how to read its corpus, which head, loss and metric,
and the original's default hyper-parameters. ``runner`` puts an upstream, a ``Featurizer`` and the task's
head together and hands them to the one training loop in ``s3prl.train``.
"""
