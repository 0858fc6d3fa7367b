"""What the tests share, imported one way (``from tests.helpers.<module> import …``):

- ``clock``: the fixed, movable clock every test that depends on time uses, and the real-time
  clock with an offset for the few that talk to a real socket or token bucket;
- ``chat``: the conversation driver (``await chat.say("你好")``);
- ``cases``: building and reading back cases and commissioners;
- ``cli``: running ``qibot`` as a user does, in a subprocess;
- ``services``: PostgreSQL and Redis for tests that need them (skip with the reason, or fail
  under ``TEST_REQUIRE_SERVICES=1``);
- ``fakes``: local servers speaking the WeChat, WeCom and Telegram wire formats.
"""
