"""The ``aiostore`` command: the root group, and :func:`main`'s error handling."""

from __future__ import annotations

import os
import sys
import traceback

import click

from .. import __version__
from .errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    describe,
    one_line,
)

__all__ = ["cli", "run"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="aiostore",
                      message="%(prog)s %(version)s")
@click.option("--progress", type=click.Choice(["auto", "always", "never"]), default=None,
              help="Progress bars on stderr: auto (when stderr is a terminal; the default, or "
                   "AIOSTORE_PROGRESS), always, never.")
def cli(progress: str | None) -> None:
    """Inspect, verify and move what aiostore stores: segment databases, tables, files and
    S3 objects.

    Exit status: 0 success, 1 a check found a problem, 2 a usage error (bad options, a
    missing or wrong path, bad URL or location, no such version), 3 another failure (the
    store unreachable, disk full, ...). Data goes to stdout; progress and errors to stderr.
    """
    if progress is not None:
        os.environ["AIOSTORE_PROGRESS"] = progress


def _register() -> None:
    from . import convert, db, objects, table

    cli.add_command(db.db)
    cli.add_command(table.table)
    for command in (objects.ls, objects.cp, objects.cat, objects.rm):
        cli.add_command(command)
    cli.add_command(convert.convert)


_register()


def _fail(code: int, message: str) -> int:
    sys.stderr.write(f"aiostore: {message}\n")
    sys.stderr.flush()
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            with cli.make_context("aiostore", args) as ctx:
                result = cli.invoke(ctx)
        finally:
            sys.stdout.flush()
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.exceptions.Abort:  # Ctrl-C while click prompts, or an EOF
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except click.UsageError as exc:
        if exc.ctx is not None and exc.format_message().startswith("Usage:"):
            sys.stderr.write(exc.ctx.get_help() + "\n")  # a group given no command
            return EXIT_USAGE
        where = exc.ctx.command_path if exc.ctx is not None else "aiostore"
        return _fail(exc.exit_code, f"{one_line(exc.format_message())} (see '{where} --help')"
                     if exc.exit_code == EXIT_USAGE else one_line(exc.format_message()))
    except click.ClickException as exc:
        return _fail(exc.exit_code, one_line(exc.format_message()))
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except BrokenPipeError:  # the reader of stdout went away (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        code, message = describe(exc)
        _fail(code, message)
        if code == EXIT_INTERNAL or os.environ.get("AIOSTORE_DEBUG"):
            traceback.print_exc()
        return code
    return result if isinstance(result, int) else EXIT_OK
