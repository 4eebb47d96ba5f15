"""What every CLI command shares: the settings (read once), the database, default file paths."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bot.config import Settings, load_settings, overridden_lines
from bot.secrets import LogFileError, setup_logging
from corpus.db import open_db
from jobs.model_registry import active_checkpoint_path
from jobs.retrain import refuse_while_training


@dataclass(frozen=True)
class TrainPaths:
    """Where the CLI and the retrain job put the training text, its .h5/.json and checkpoints."""

    train_txt: Path
    train_h5: Path
    train_json: Path
    checkpoint_dir: Path
    models_dir: Path

    @classmethod
    def under(cls, data_dir: Path) -> "TrainPaths":
        return cls(
            train_txt=data_dir / "train" / "corpus.txt",
            train_h5=data_dir / "train" / "corpus.h5",
            train_json=data_dir / "train" / "corpus.json",
            checkpoint_dir=data_dir / "checkpoints",
            models_dir=data_dir / "models",
        )


class AppContext:
    """`ctx.obj` of the click group. Settings are loaded on first use, so `--help` reads nothing."""

    def __init__(self, config_path: Path | None = None, settings: Settings | None = None) -> None:
        self.config_path = config_path
        if settings is not None:
            self.__dict__["settings"] = settings

    @cached_property
    def settings(self) -> Settings:
        from bot.config import ConfigError

        settings = load_settings(self.config_path)
        log = settings.log
        try:
            setup_logging(log.level, log.file, max_bytes=log.max_bytes, backup_count=log.backup_count)
        except LogFileError as exc:
            raise ConfigError(f"{settings.source}: {exc}") from None
        for line in overridden_lines(settings):
            logging.getLogger(__name__).warning("%s", line)
        return settings

    def open_db(self):
        return open_db(self.settings.database, busy_timeout=self.settings.paths.busy_timeout_seconds)

    def default_paths(self) -> TrainPaths:
        return TrainPaths.under(self.settings.data_dir)

    def active_checkpoint(self) -> Path:
        """The checkpoint the service would use: the active model version, else the bundled one."""
        db = self.open_db()
        try:
            return active_checkpoint_path(db, allow_bundled=self.settings.startup.use_bundled_model,
                                          models_dir=self.default_paths().models_dir)
        finally:
            db.close()

    def refuse_while_training(self, *outputs: Path) -> None:
        """Before a command writes `outputs`: JobError when one is the training text, .h5 or .json a
        retrain uses (<data_dir>/train) and a retrain trains from them now (jobs.retrain)."""
        paths = self.default_paths()
        shared = {p.resolve() for p in (paths.train_txt, paths.train_h5, paths.train_json)}
        if any(Path(output).resolve() in shared for output in outputs):
            refuse_while_training(paths.checkpoint_dir, paths.train_txt.parent)
