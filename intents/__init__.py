"""Understanding messages: normalisation, intent and domain classification, extraction.

Importing the package makes :class:`intents.jieba_dict.ShardedTokenizer` the shared jieba
tokenizer of :mod:`intents.normalize` (same cuts, dictionary read by first character: a process
that cuts one question no longer reads jieba's whole dictionary, ~0.6 s).
"""

from intents import jieba_dict as _jieba_dict

_jieba_dict.install()
