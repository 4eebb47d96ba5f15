"""VK on the bot side: publishing to a community wall and reading its likes (bot/vk/wall.py).
The data side (scraping walls into the corpus) is corpus/vk.py."""
