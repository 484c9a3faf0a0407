"""Fine-tuning ERNIE on Propeller: classification (and regression), ranking, NER and MRC.

    data.py        split files, TSV columns by header name, the bad-line policy, batching
    common.py      model config resolution, tokenizer, weight loading, ErnieTaskModel
    classifier.py  ClassificationTask / ClassifierModel (accuracy, F1, Matthews; MSE, Pearson)
    ranker.py      RankingTask / RankerModel (MRR, F1)
    ner.py         NerTask / NerModel (chunk F1)
    mrc.py         MrcTask / MrcModel (SQuAD JSON, doc stride, n-best decoding, EM and F1)
    metrics.py     Matthews, Pearson, Spearman, chunk precision/recall
    runner.py      the shared command line (flags resolved once into TaskOptions): train_and_eval
                   with best-model exports, --do_predict
    demo_tasks.py  ranking and MRC sets built from the demo corpus
    baselines.py   what to beat: majority class, char-n-gram logistic regression, lexicon longest match

The command lines are ``example/finetune_{classifier,ranker,ner,mrc}.py``; the per-dataset
scripts ``script/zh_task/*/run_*.sh`` and ``script/en_glue/*/*/task.sh`` call them.
"""
