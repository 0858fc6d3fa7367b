"""Knowledge base of qibot: validated Q&A content and its retrieval (pure: no service imports).

Modules, one job each:
    entries      the ``Entry`` model and strict loading of ``data/entries/*.yaml``
    lint         content rules (``qibot kb check``)
    codes        standard / regulation codes as exact single tokens
    synonyms     alias groups from ``data/synonyms.yaml``
    analysis     text → retrieval terms (normalise, codes, jieba, synonyms)
    bm25         sparse BM25F index
    features     query–candidate match features
    calibration  fitted softmax over candidates and "none", outcome thresholds
    retriever    ``KnowledgeBase``: load, search, get
    fit          offline fitting of the calibration (``python -m knowledge.fit``)
"""
