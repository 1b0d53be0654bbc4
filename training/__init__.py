"""Scripts of a source checkout: ``train.py`` and ``finetune.py`` run the engine in
:mod:`keraszoo.training`; ``publish_zoo.py``, ``results_table.py`` and
``train_feature_classifier.py`` are the maintainers' tools for the published zoo.
"""
