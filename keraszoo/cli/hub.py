"""``keraszoo push``: upload a save_pretrained folder to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import say


def register(subparsers, common_parent):
    p = add_command(subparsers, common_parent, "push", "upload a save_pretrained folder to the Hugging Face Hub",
                    examples("keraszoo push runs/vae_mnist my-org/vae-mnist",
                             "keraszoo push runs/vae_mnist my-org/vae-mnist --private --message 'epoch 50'"))
    p.add_argument("directory", metavar="DIR", help="folder written by keraszoo.save_pretrained / keraszoo train")
    p.add_argument("repo_id", metavar="REPO_ID", help="Hub repository, org/name (created if needed)")
    p.add_argument("--token", default=None, help="Hub token (default: the logged-in token or $HF_TOKEN)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload keraszoo model", help="commit message")
    p.add_argument("--branch", default=None, help="branch to commit to (default: main)")
    p.set_defaults(func=cmd_push)


def cmd_push(args):
    from keraszoo.weights.publish import push_to_hub

    if not Path(args.directory).expanduser().is_dir():
        raise CommandError(f"{args.directory!r} is not a directory; expected a folder written by "
                           "keraszoo.save_pretrained() (or 'keraszoo train --out').")
    say(args, f"Pushing {args.directory} to {args.repo_id} ...")
    commit = push_to_hub(str(Path(args.directory).expanduser()), args.repo_id, token=args.token,
                         private=args.private, commit_message=args.message, revision=args.branch)
    if args.quiet:
        print(commit)
    else:
        print(f"Pushed {args.directory} to {args.repo_id} at commit {commit}\n"
              f"Load it with: keraszoo.load('hf://{args.repo_id}@{commit}')")
    return 0
