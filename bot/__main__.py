"""`python -m bot` is `buhurt`."""
from bot.cli import main

main()
