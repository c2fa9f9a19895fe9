"""Scoring functions shared by the tasks and ``s3prl score``: one module per metric family
(error rates, slot F1, DER, TWV/MTWV, SI-SDR and PESQ/STOI, ...). Each takes plain Python data and returns plain
numbers."""
