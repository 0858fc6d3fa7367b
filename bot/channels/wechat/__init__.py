"""The WeChat Official Account channel: callbacks in (``inbound``), customer-service messages
out (``notifier``), both over wechatpy's parsing and crypto and an async HTTP client (``api``)
with one access token shared by all workers (``token``). ``inbound.setup`` mounts it."""
