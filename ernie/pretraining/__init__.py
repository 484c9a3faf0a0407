"""Pre-training: ERNIE 1.0 (``ernie1``) and ERNIE 2.0 continual multi-task pre-training.

ERNIE 2.0 pieces, in the order data flows through them:

    preprocess   raw documents -> memory-mapped shards     python -m ernie.pretraining.preprocess
    encode       segmentation (gold / jieba + lexicon), knowledge units, token ids and marks
    shards       Document / Sentence, ShardCorpus (np.memmap), partition over ranks and workers
    tasks        the task registry (register_task) and the built-in tasks KM, CP, TDR, SR, SD,
                 DR, IR, NSP
    schedule     stages with per-task budgets; which task fills which batch, from (seed, position)
    pipeline     per-task example streams, collation, MultiTaskStream (resumable from a cursor log,
                 DataLoader-ready)
    heads        token / sentence / masked-LM heads
    multitask    MultiTaskPretrainModel: shared ErnieModel with task embeddings, one head per task
    pretrain     the entry point                          python -m ernie.pretraining.pretrain --schedule ...

ERNIE 1.0: ``masking`` (char/word masking on seg_labels, plus the budgeted unit masking used
by KM), ``ernie1_data`` (the id format) and ``ernie1`` (its trainer and command line).
"""
