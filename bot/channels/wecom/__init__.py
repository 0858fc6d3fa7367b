"""WeCom (企业微信) for commissioners: the app callback (always encrypted) with commands typed in
WeCom, app messages with a case summary and a console link, and an optional group robot for a
team chat. On when ``wecom_corp_id`` is set; see :mod:`bot.channels.wecom.channel` for the wiring."""
