"""The WeChat Official Account channel: callbacks in (``inbound``), customer-service messages
out (``notifier``), both over wechatpy's parsing and crypto and an async HTTP client (``api``)
with one access token shared by all workers (``token``). ``channel.WeChat`` plugs it in
(:mod:`bot.channels.base`); its settings section is ``settings``."""
