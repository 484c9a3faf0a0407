"""Pre-training: one engine for ERNIE 2.0 continual multi-task pre-training, of which ERNIE 1.0
is one schedule. The modules, in the order data flows through them:

    preprocess   raw documents -> memory-mapped shards     python -m ernie.pretraining.preprocess
    encode       segmentation (gold / jieba + lexicon), knowledge units, token ids and marks
    shards       Document / Sentence, ShardCorpus (np.memmap), partition over ranks and workers
    id_corpus    ERNIE 1.0's id format (finished [CLS] A [SEP] B [SEP] pairs) as a corpus
    masking      ERNIE 1.0 char/word masking on seg_labels; budgeted unit masking (ERNIE 2.0 KM)
    tasks        the task registry (register_task) and the built-in tasks KM, CP, TDR, SR, SD,
                 DR, IR, NSP; a task's docstring recipe shows how to add your own
    schedule     stages with per-task budgets; which task fills which batch, from (seed, position)
    pipeline     per-task example streams, collation, MultiTaskStream (resumable from a cursor log,
                 DataLoader-ready)
    heads        token / sentence / masked-LM heads
    multitask    MultiTaskPretrainModel: shared ErnieModel with task embeddings, one head per task
    pretrain     the engine's entry point: build_run, train   python -m ernie.pretraining.pretrain --schedule ...
    ernie1       ERNIE 1.0's command line (KM at ernie1_* levels + NSP, id format or raw text)
                                                          python -m ernie.pretraining.ernie1 ...
"""
