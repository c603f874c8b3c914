"""`python -m tests.fuzz TARGET SECONDS CORPUS_DIR [LIBFUZZER FLAGS]`: fuzz one target with
atheris (libFuzzer) for SECONDS at most, starting from its seeds (written to CORPUS_DIR).
Exit 0: no crash; else libFuzzer's own exit code, with the input that crashed written next
to the corpus."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["gateway", "adapters", "signing", "schemas"]):
    from tests.fuzz import targets


def main(argv: list[str]) -> None:
    name, seconds, corpus, extra = argv[1], int(argv[2]), Path(argv[3]), argv[4:]
    target = targets.TARGETS[name]
    targets.WORKDIR = corpus.parent
    corpus.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(target.seeds()):
        (corpus / f"seed-{n}").write_bytes(seed)

    def one(data: bytes) -> None:
        with contextlib.suppress(targets.EXPECTED):
            target.run(data)

    atheris.Setup(
        [
            argv[0],
            f"-max_total_time={seconds}",
            "-timeout=2",  # one input taking longer is a finding (T5: 0 timeouts)
            "-rss_limit_mb=2048",
            "-max_len=65536",
            f"-artifact_prefix={corpus.parent}/crash-{name}-",
            "-print_final_stats=1",
            *extra,
            str(corpus),
        ],
        one,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
