"""Distillation of a fine-tuned ERNIE teacher into small students (ERNIE Slim / ERNIE-tiny).

Modules: ``augment`` (the three noises, ``python -m distill.augment``), ``data`` (student word
tokenizer and vocabulary, teacher-labelled files), ``subword`` (the Transformer student's
SentencePiece vocabulary), ``students`` (the ``STUDENTS`` registry: bow, cnn, lstm, ernie_tiny),
``losses``, ``layer_distill``, ``teacher`` (online client, in-process teacher), ``model`` (the
Propeller Model students train as), ``run`` (the command behind ``distill_chnsentocorp*.py``),
``export`` (used by ``python -m inference.export``). See distill/README.md.
"""
