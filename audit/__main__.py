"""`python -m audit` and the `audit` console script: the typer CLI of `audit.cli`.

`audit ingest` starts hashing its first input file before anything else is imported
(`audit.ingest.filescan.start_early`): start-up leaves a core idle that the hash can use.
"""

import sys


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "ingest":
        from audit.ingest.filescan import start_early

        start_early(sys.argv[2:])
    from audit.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
