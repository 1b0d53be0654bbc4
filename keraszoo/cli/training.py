"""``keraszoo train`` and ``keraszoo finetune``: argparse sub-commands of ``keraszoo`` that run the training engine.

Both are one orchestration, :func:`keraszoo.training.train.run`; they share
the optimization and runtime flags (the parent parsers of
:mod:`keraszoo.training.arguments`). ``train``'s options include every
registered variant's flags, which import the model classes (and TensorFlow):
they are added only when the command line runs one of these commands, so
``keraszoo list`` stays light.
"""

from __future__ import annotations

import json

from keraszoo.cli._shared import GLOBAL_FLAGS
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import examples

COMMANDS = ("train", "finetune")

_HELP = {
    "train": "train a model and write a save_pretrained folder (keraszoo.training)",
    "finetune": "fine-tune a pretrained model on your images (a training run from its weights)",
}

_EXAMPLES = {
    "train": examples(
        "keraszoo train --model vae --dataset mnist --epochs 30 --out runs/vae_mnist",
        "keraszoo train --model conv_ae --dataset cifar10 --data-source npz --data-dir /data --out runs/ae",
        "keraszoo train --recipe vae_mnist --out runs/vae_mnist_again    # rerun a zoo model's recipe",
        "keraszoo train --model ae --out runs/vae_mnist --overwrite      # write over another run's folder",
    ),
    "finetune": examples(
        "keraszoo finetune vae_mnist --data my_digits/ --epochs 5 --out runs/my_vae",
        "keraszoo finetune runs/vae_mnist --data images.npy --freeze-encoder --lr 1e-4 --out runs/ft",
    ),
}


def register(subparsers, common_parent, command=None):
    """Add ``train`` and ``finetune``; with their options only when ``command`` (the one to run) is one of
    them, or is ``None`` (every command's options)."""
    for name in COMMANDS:
        if command is not None and command != name:
            add_command(subparsers, common_parent, name, _HELP[name], _EXAMPLES[name])
            continue
        from keraszoo.training import arguments

        defaults = arguments.FINETUNE_DEFAULTS if name == "finetune" else None
        parents = [arguments.optimization_parent(defaults), arguments.runtime_parent()]
        p = add_command(subparsers, common_parent, name, _HELP[name], _EXAMPLES[name], parents=parents)
        if name == "train":
            arguments.add_train_arguments(p)
            p.set_defaults(func=_train)
        else:
            from keraszoo.training.finetune import add_finetune_arguments

            add_finetune_arguments(p)
            p.set_defaults(func=_finetune)


def command_argv(argv, command):
    """The arguments of ``command`` in the full ``keraszoo`` command line ``argv`` (without the global flags)."""
    rest = list(argv)
    while rest and rest[0] in GLOBAL_FLAGS:
        rest.pop(0)
    rest = rest[1:] if rest and rest[0] == command else rest
    end = rest.index("--") if "--" in rest else len(rest)
    return [a for a in rest[:end] if a not in GLOBAL_FLAGS] + rest[end:]


def _train(args):
    from keraszoo.training.arguments import resolve

    recipe, context, argv = resolve(args, command_argv(args.argv, "train"), quiet=args.quiet)
    if context.dry_run:
        key, kwargs = recipe.model_spec()
        print(json.dumps({"args": recipe.to_args(), "variant": key, "model_kwargs": kwargs, "argv": argv},
                         indent=2, sort_keys=True))
        return 0
    from keraszoo.training.train import run

    return run(recipe, context.out, work_dir=context.work_dir, data_dir=context.data_dir, verbose=context.verbose,
               cpu_replicas=context.cpu_replicas, argv=argv, rerun_of=context.recipe, overwrite=context.overwrite).status


def _finetune(args):
    from keraszoo.training.finetune import finetune

    return finetune(args, command_argv(args.argv, "finetune"), quiet=args.quiet).status
