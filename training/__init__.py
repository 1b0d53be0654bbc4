"""The bundled training scripts: ``train.py`` (train any variant) and
``finetune.py`` (fine-tune a pretrained model on your data).

Both expose ``build_parser()`` and ``main(argv=None) -> int`` so that
``keraszoo train`` / ``keraszoo finetune`` and the tests can call them.
"""
