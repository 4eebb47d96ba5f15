"""The real VK wall client (bot/vk/wall.py) publishing to a fake community wall (tests/fakes/fake_vk.py)."""
from __future__ import annotations

from bot.config_sections import VkSettings
from bot.secrets import Secret
from bot.vk.wall import vk_wall_publishing
from tests.fakes.fake_vk import WALL_TOKEN, FakeVk, FakeWall


def setup(token=WALL_TOKEN, group_id=42):
    """(the wall with 20 posts, the fake VK API, the wall publishing through the real client)"""
    wall = FakeWall(42, "bugurt_test")
    wall.generate(20)
    fake = FakeVk(wall)
    settings = VkSettings(token=Secret(token), publish_group_id=group_id, requests_per_second=1000.0)
    return wall, fake, vk_wall_publishing(settings, session=fake.session())
